/**
 * Child processes for the benchmarks: Switchboard's own CLI (compiled `dist/`, as production runs it) and the
 * bench's helper scripts (through tsx), each tracked so that nothing outlives the benchmark: everything is
 * SIGKILLed on exit, on an uncaught error and on Ctrl-C, and the temporary directories are removed.
 *
 * Also: CPU and RSS of a process from /proc, sampled over a window.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rssMiB } from '../../harness/memory.ts';
import { ROOT, spawnChild, type Child } from '../../harness/child.ts';
import { tempDir as plainTempDir } from '../../harness/tmp.ts';

export { ROOT };
/** The CLI the benchmarks run; `BENCH_CLI=<path to main.js>` runs another build (an A/B against a copy of main's). */
export const CLI_DIST = process.env.BENCH_CLI ?? join(ROOT, 'dist/src/cli/main.js');

/** A benchmark child: the harness's child process, killed at exit with every other one. */
export type Proc = Child;

const live = new Set<Proc>();
const dirs = new Map<string, () => void>();
let hooks = false;

function killAllSync(): void {
  for (const p of live) {
    try {
      p.proc.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
  for (const remove of dirs.values()) remove();
  dirs.clear();
}

function installHooks(): void {
  if (hooks) return;
  hooks = true;
  process.once('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: stopping every benchmark process\n`);
      killAllSync();
      process.exit(130);
    });
  }
}

/** A temporary directory removed at exit (or earlier by the returned function). */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  installHooks();
  const dir = plainTempDir(prefix);
  dirs.set(dir.path, dir.remove);
  return {
    path: dir.path,
    remove: () => {
      dir.remove();
      dirs.delete(dir.path);
    },
  };
}

/** SIGKILL every tracked process now (the end of a figure, or an error). */
export async function killAll(): Promise<void> {
  const all = [...live];
  for (const p of all) p.signal('SIGKILL');
  await Promise.all(all.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 3_000))])));
}

function track(name: string, command: string, args: string[], env: Record<string, string>): Proc {
  installHooks();
  const p = spawnChild(name, command, args, {
    env: { SWITCHBOARD_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn', ...env },
    echoStderr: Boolean(process.env.BENCH_SHOW_STDERR),
    waitTimeoutMs: 30_000,
    maxLines: 10_000,
  });
  live.add(p);
  void p.exited.then(() => live.delete(p));
  return p;
}

/** `node dist/src/cli/main.js <args>`: Switchboard exactly as it runs in production. */
export function spawnCli(
  name: string,
  args: string[],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Proc {
  return track(name, process.execPath, [...nodeArgs, CLI_DIST, ...args], env);
}

/** A bench helper script (TypeScript, through tsx). */
export function spawnScript(name: string, script: string, args: string[], env: Record<string, string> = {}): Proc {
  return track(name, process.execPath, ['--import', 'tsx', script, ...args], env);
}

/** `npm run build` (tsc to dist/); throws with the compiler's output on failure. */
export function build(): void {
  const res = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  if (res.status !== 0)
    throw new Error(`npm run build failed:\n${(res.stdout ?? '') + (res.stderr ?? '')}`.slice(-4_000));
}

// ---------------------------------------------------------------------------------------------------------
// CPU and memory of a process, from /proc

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x64

/** utime + stime in seconds, or undefined when the process is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: split after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 and 15 of stat(5)
  } catch {
    return undefined;
  }
}

export { rssMiB };

export interface UsageSummary {
  /** Average CPU over the window, in % of one core. */
  cpuPercent: number;
  /** Highest 1-second CPU over the window, in % of one core. */
  cpuPeakPercent: number;
  rssMiB: number;
  rssPeakMiB: number;
}

/**
 * Samples CPU and RSS of named processes every second until stopped. CPU is the tick delta over wall time
 * (100% = one core busy); RSS the last and the highest VmRSS seen.
 */
export class UsageSampler {
  readonly #pids: Map<string, number>;
  readonly #first = new Map<string, number>();
  readonly #last = new Map<string, number>();
  readonly #peakCpu = new Map<string, number>();
  readonly #rss = new Map<string, number>();
  readonly #peakRss = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  readonly #t0 = performance.now();
  #tLast = performance.now();

  constructor(pids: Record<string, number>, everyMs = 1_000) {
    this.#pids = new Map(Object.entries(pids));
    for (const [name, pid] of this.#pids) {
      const c = cpuSeconds(pid) ?? 0;
      this.#first.set(name, c);
      this.#last.set(name, c);
    }
    this.#timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    const now = performance.now();
    const dt = (now - this.#tLast) / 1000;
    this.#tLast = now;
    for (const [name, pid] of this.#pids) {
      const c = cpuSeconds(pid);
      const r = rssMiB(pid);
      if (c !== undefined && dt > 0.2) {
        const pct = ((c - this.#last.get(name)!) / dt) * 100;
        this.#peakCpu.set(name, Math.max(this.#peakCpu.get(name) ?? 0, pct));
        this.#last.set(name, c);
      }
      if (r !== undefined) {
        this.#rss.set(name, r);
        this.#peakRss.set(name, Math.max(this.#peakRss.get(name) ?? 0, r));
      }
    }
  }

  stop(): Record<string, UsageSummary> {
    clearInterval(this.#timer);
    this.sample();
    const wall = (this.#tLast - this.#t0) / 1000;
    const out: Record<string, UsageSummary> = {};
    for (const name of this.#pids.keys()) {
      out[name] = {
        cpuPercent: wall > 0 ? ((this.#last.get(name)! - this.#first.get(name)!) / wall) * 100 : 0,
        cpuPeakPercent: this.#peakCpu.get(name) ?? 0,
        rssMiB: this.#rss.get(name) ?? 0,
        rssPeakMiB: this.#peakRss.get(name) ?? 0,
      };
    }
    return out;
  }
}

/**
 * Child processes for the benchmarks: Switchboard's own CLI (compiled `dist/`, as production runs it) and the
 * bench's helper scripts (through tsx), each tracked so that nothing outlives the benchmark: everything is
 * SIGKILLed on exit, on an uncaught error and on Ctrl-C, and the temporary directories are removed.
 *
 * Also: CPU and RSS of a process from /proc, sampled over a window.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_DIST = join(ROOT, 'dist/src/cli/main.js');

export interface Proc {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly name: string;
  /** Every stdout line so far (bounded: the oldest are dropped past 10,000). */
  readonly lines: string[];
  /** First stdout line (past or future) matching `re`; rejects at the deadline or when the process exits. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Called for every stdout line from now on. */
  onLine(fn: (line: string) => void): void;
  signal(sig: NodeJS.Signals): void;
  readonly exited: Promise<number | string>;
  alive(): boolean;
  /** SIGCONT + SIGTERM, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
  stderrTail(): string;
  /** Write a line to its stdin (helper scripts take commands this way). */
  send(line: string): void;
}

const live = new Set<Proc>();
const dirs = new Set<string>();
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
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
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
  const path = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(path);
  return {
    path,
    remove: () => {
      rmSync(path, { recursive: true, force: true });
      dirs.delete(path);
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
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, SWITCHBOARD_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const listeners: Array<(line: string) => void> = [];
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  let err = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => {
    err = (err + d).slice(-20_000);
    if (process.env.BENCH_SHOW_STDERR) process.stderr.write(`[${name}] ${d}`);
  });
  proc.stdin.on('error', () => undefined);
  createInterface({ input: proc.stdout }).on('line', (line) => {
    lines.push(line);
    if (lines.length > 10_000) lines.splice(0, 1_000);
    for (const fn of listeners) fn(line);
    for (const w of [...waiters]) {
      const m = line.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, sig) => {
      done = true;
      live.delete(p);
      resolve(code ?? sig ?? 'unknown');
    });
    proc.once('error', (e) => {
      done = true;
      live.delete(p);
      err += `\nspawn error: ${e.message}`;
      resolve('spawn-error');
    });
  });
  const p: Proc = {
    proc,
    pid: proc.pid ?? -1,
    name,
    lines,
    exited,
    alive: () => !done,
    stderrTail: () => err.slice(-3_000),
    onLine: (fn) => void listeners.push(fn),
    send: (line) => {
      if (!done) proc.stdin.write(`${line}\n`);
    },
    waitForLine(re, timeoutMs = 30_000) {
      for (const line of lines) {
        const m = line.match(re);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${code}) before printing ${re}; stderr: ${err.slice(-2000)}`));
        });
      });
    },
    signal(sig) {
      if (!done) proc.kill(sig);
    },
    async stop(graceMs = 5_000) {
      if (done) return exited;
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  live.add(p);
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

/** Resident set size in MiB (VmRSS), or undefined when the process is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

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

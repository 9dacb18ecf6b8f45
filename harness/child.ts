/**
 * A child process whose stdout is read line by line: wait for a line (with a deadline), signal it for real, stop
 * it (SIGTERM, then SIGKILL). Tests (`harness/process.ts`) and benchmarks (`bench/lib/procs.ts`) both build on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root: children run from here. */
export const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly name: string;
  /** Every stdout line so far (the oldest are dropped past `maxLines`). */
  readonly lines: string[];
  /** Resolves with the first stdout line matching `re` (past or future); rejects at the deadline or on exit. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Called for every stdout line from now on. */
  onLine(fn: (line: string) => void): void;
  signal(sig: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  alive(): boolean;
  /** SIGCONT + SIGTERM, then SIGKILL if still running after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
  /** The end of what it wrote on stderr. */
  stderrTail(): string;
  /** A line on its stdin (fixtures take commands this way). */
  send(line: string): void;
}

export interface ChildOptions {
  env?: Record<string, string>;
  /** Copy its stderr to ours, each chunk prefixed with the name. */
  echoStderr?: boolean;
  /** Default deadline of `waitForLine`. */
  waitTimeoutMs?: number;
  /** Lines kept in `lines` (a long benchmark child would otherwise grow without bound). */
  maxLines?: number;
}

const STDERR_KEPT = 100_000;

/**
 * Every child still running. A test that fails while starting a cluster (a role that never printed its line) has
 * not handed that child to its cleanup yet: it is killed when this process exits instead of living on.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

export function spawnChild(name: string, command: string, args: string[], opts: ChildOptions = {}): Child {
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const maxLines = opts.maxLines ?? Infinity;
  const lines: string[] = [];
  const listeners: Array<(line: string) => void> = [];
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  let err = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => {
    err += d;
    if (err.length > 2 * STDERR_KEPT) err = err.slice(-STDERR_KEPT);
    if (opts.echoStderr) process.stderr.write(`[${name}] ${d}`);
  });
  proc.stdin.on('error', () => undefined);
  createInterface({ input: proc.stdout }).on('line', (line) => {
    lines.push(line);
    if (lines.length > maxLines) lines.splice(0, Math.ceil(maxLines / 10));
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
      resolve(code ?? sig ?? 'unknown');
    });
    proc.once('error', (e) => {
      done = true;
      err += `\nspawn error: ${e.message}`;
      resolve('spawn-error');
    });
  });
  const tail = (): string => err.slice(-3_000);
  return {
    proc,
    pid: proc.pid ?? -1,
    name,
    lines,
    exited,
    alive: () => !done,
    stderrTail: tail,
    onLine: (fn) => void listeners.push(fn),
    send: (line) => {
      if (!done) proc.stdin.write(`${line}\n`);
    },
    waitForLine(re, timeoutMs = opts.waitTimeoutMs ?? 20_000) {
      for (const line of lines) {
        const m = line.match(re);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms; stderr:\n${tail()}`)),
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
          reject(new Error(`${name} exited (${code}) before printing ${re}; stderr:\n${tail()}`));
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
}

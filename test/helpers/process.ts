/** Real child processes for end-to-end and fault tests: spawn, read their lines, wait for one, kill for real. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface Child {
  proc: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first stdout line matching `re` (past or future), or rejects at the deadline. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  signal(sig: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL if still running after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
  stderr(): string;
}

/**
 * Every child still running. A test that fails while starting a cluster (a role that never printed its line) has
 * not handed that child to its cleanup yet: it is killed when the test process exits instead of living on.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

export function spawnTs(script: string, args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, SWITCHBOARD_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  let err = '';
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
    if (process.env.TEST_SHOW_STDERR) process.stderr.write(d);
  });
  createInterface({ input: proc.stdout }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      const m = line.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown'));
  });
  const child: Child = {
    proc,
    lines,
    exited,
    stderr: () => err,
    waitForLine(re, timeoutMs = 20_000) {
      for (const line of lines) {
        const m = line.match(re);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; stderr:\n${err.slice(-3000)}`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`process exited before printing ${re}; stderr:\n${err.slice(-3000)}`));
        });
      });
    },
    signal(sig) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    },
    async stop(graceMs = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return child;
}

/** Starts `switchboard <role> ...` as its own process, exactly as the CLI runs it. */
export function spawnRole(
  role: 'leader' | 'worker' | 'gateway' | 'start',
  args: string[],
  env: Record<string, string> = {},
): Child {
  return spawnTs(CLI, [role, ...args], env);
}

export async function startLeaderProcess(
  dataDir: string,
  bind = 'tcp://127.0.0.1:*',
): Promise<{ child: Child; control: string; events: string }> {
  const child = spawnRole('leader', ['--data-dir', dataDir, '--bind', bind]);
  const m = await child.waitForLine(/^switchboard leader: control=(\S+) events=(\S+)/);
  return { child, control: m[1], events: m[2] };
}

export async function startWorkerProcess(leader: string, extra: string[] = []): Promise<{ child: Child; id: string }> {
  const child = spawnRole('worker', ['--leader', leader, ...extra]);
  const m = await child.waitForLine(/^switchboard worker: id=(\S+)/);
  return { child, id: m[1] };
}

export async function startGatewayProcess(
  leader: string,
  extra: string[] = [],
): Promise<{ child: Child; url: string }> {
  const child = spawnRole('gateway', ['--leader', leader, '--http-port', '0', ...extra]);
  const m = await child.waitForLine(/^switchboard gateway: url=(\S+)/);
  return { child, url: m[1] };
}

export const PROVIDER_FIXTURE = fileURLToPath(new URL('../fixtures/provider.ts', import.meta.url));

/** A heartbeating provider process; `ids` are the provider ids it beats for. */
export async function startProviderProcess(
  ids: string[],
  opts: { bind?: string; intervalMs?: number } = {},
): Promise<{ child: Child; endpoint: string }> {
  const child = spawnTs(PROVIDER_FIXTURE, [
    '--bind',
    opts.bind ?? 'tcp://127.0.0.1:*',
    '--interval',
    String(opts.intervalMs ?? 100),
    ...ids,
  ]);
  const m = await child.waitForLine(/^ENDPOINT (\S+)/);
  return { child, endpoint: m[1] };
}

export { once };

import { createServer } from 'node:net';

/** A TCP port free right now on 127.0.0.1 (for roles that must come back on the same port after a restart). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

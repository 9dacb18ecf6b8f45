/**
 * Start a throw-away etcd for the benchmarks.
 *
 * etcd is the peer we compare Switchboard with. The benchmark must run on a fresh machine, so this module
 * installs Debian's `etcd-server` when the binary is missing, then runs etcd as a child process on
 * 127.0.0.1 only, on free ephemeral ports, with a temporary data directory. When etcd cannot be had (no root,
 * no apt, install failed, start failed) it says why instead of throwing, so the benchmark can print
 * "etcd not available" and still report Switchboard's own figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running etcd started by {@link startEtcd}. */
export interface EtcdHandle {
  /** Base URL of the client API and HTTP/JSON gateway, e.g. `http://127.0.0.1:40123`. */
  readonly clientUrl: string;
  /** Peer URL (single-member cluster; nothing connects to it). */
  readonly peerUrl: string;
  /** Server version as reported by `GET /version`, e.g. `3.4.23`. */
  readonly version: string;
  /** Path of the etcd binary that runs. */
  readonly binary: string;
  /** Process id of the etcd child. */
  readonly pid: number;
  /** Temporary data directory, removed by {@link EtcdHandle.close}. */
  readonly dataDir: string;
  /** Stop etcd (SIGTERM, then SIGKILL after a grace period) and remove its data directory. Idempotent. */
  close(): Promise<void>;
}

/** Why etcd is not available. */
export interface EtcdUnavailable {
  readonly available: false;
  readonly reason: string;
}

/** Result of {@link tryStartEtcd}. */
export type EtcdStartResult = { readonly available: true; readonly etcd: EtcdHandle } | EtcdUnavailable;

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions {
  /** Install `etcd-server` with apt-get when the binary is missing (default true). */
  install?: boolean;
  /** Bound on the whole apt-get step, in ms (default 240 000). */
  installTimeoutMs?: number;
  /** Bound on waiting for etcd to answer `/health`, in ms (default 20 000). */
  startTimeoutMs?: number;
  /**
   * Pass `--unsafe-no-fsync` (default false). Off by default so etcd is measured as it runs in production,
   * with an fsync per write; turn on only to see how much of a figure is the disk.
   */
  unsafeNoFsync?: boolean;
  /** Extra etcd command-line flags (appended last, so they win). */
  extraArgs?: string[];
  /** Where etcd's own stderr goes: collected (default, shown in the reason on failure) or inherited. */
  logs?: 'collect' | 'inherit';
}

let lastReason: string | undefined;

/** Why the last {@link startEtcd} returned null (undefined when it succeeded or has not run). */
export function etcdUnavailableReason(): string | undefined {
  return lastReason;
}

/**
 * Start a private etcd bound to 127.0.0.1 on free ports, installing Debian's `etcd-server` if needed.
 *
 * @returns the handle, or null when etcd cannot be had; {@link etcdUnavailableReason} then tells why.
 *   Callers should print "etcd not available" (with the reason) and go on without etcd.
 */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdHandle | null> {
  const result = await tryStartEtcd(opts);
  if (result.available) {
    lastReason = undefined;
    return result.etcd;
  }
  lastReason = result.reason;
  return null;
}

/**
 * Same as {@link startEtcd}, but returns `{ available: false, reason }` instead of null.
 * Never throws for an environment problem; the reason is meant to be printed.
 */
export async function tryStartEtcd(opts: StartEtcdOptions = {}): Promise<EtcdStartResult> {
  const installed = await ensureEtcdInstalled(opts);
  if (!installed.ok) return { available: false, reason: installed.reason };
  // The free-port probe closes its socket before etcd binds, so another process could take the port in
  // between; a retry with fresh ports makes that race harmless.
  let lastError = 'unknown error';
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const etcd = await launch(installed.binary, opts);
      return { available: true, etcd };
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
  }
  return { available: false, reason: `etcd did not start: ${lastError}` };
}

/** Outcome of {@link ensureEtcdInstalled}. */
export type EtcdInstallResult = { ok: true; binary: string } | { ok: false; reason: string };

/**
 * Find the etcd binary, installing Debian's `etcd-server` non-interactively when it is missing.
 *
 * The Debian package would normally start a system-wide etcd on localhost:2379. We do not want a second,
 * long-lived etcd (it would share the machine and the default port), so while apt runs we make sure a
 * `policy-rc.d` that denies service starts is in place (Docker images already ship one; we add ours only if
 * none exists and remove it afterwards). Both `invoke-rc.d` and `deb-systemd-invoke` honour it. If systemd
 * is running anyway we also `systemctl disable --now etcd` after the install, for the package we installed.
 */
export async function ensureEtcdInstalled(opts: StartEtcdOptions = {}): Promise<EtcdInstallResult> {
  const found = findEtcdBinary();
  if (found) return { ok: true, binary: found };
  if (opts.install === false) return { ok: false, reason: 'etcd binary not found and install disabled' };
  if (process.platform !== 'linux')
    return { ok: false, reason: `etcd binary not found (platform ${process.platform})` };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { ok: false, reason: 'etcd binary not found and not root, so cannot apt-get install etcd-server' };
  }
  if (!existsSync('/usr/bin/apt-get')) return { ok: false, reason: 'etcd binary not found and no apt-get' };

  const deadline = Date.now() + (opts.installTimeoutMs ?? 240_000);
  const policyPath = '/usr/sbin/policy-rc.d';
  let ourPolicy = false;
  try {
    if (!existsSync(policyPath)) {
      await writeFile(
        policyPath,
        '#!/bin/sh\n# Temporary: written by Switchboard bench to keep etcd-server from starting.\nexit 101\n',
        {
          mode: 0o755,
        },
      );
      ourPolicy = true;
    }
    const args = [
      '-y',
      '-q',
      '--no-install-recommends',
      '-o',
      'Dpkg::Options::=--force-confdef',
      '-o',
      'Dpkg::Options::=--force-confold',
      'install',
      'etcd-server',
    ];
    let res = await run('apt-get', args, deadline - Date.now());
    // A fresh machine may have no package lists yet (or stale ones that 404): refresh once and retry.
    if (
      res.code !== 0 &&
      /Unable to locate package|has no installation candidate|404\s+Not Found|Failed to fetch/i.test(res.output)
    ) {
      const upd = await run('apt-get', ['-q', 'update'], deadline - Date.now());
      if (upd.code !== 0) return { ok: false, reason: `apt-get update failed: ${tail(upd.output)}` };
      res = await run('apt-get', args, deadline - Date.now());
    }
    if (res.code !== 0) return { ok: false, reason: `apt-get install etcd-server failed: ${tail(res.output)}` };
    if (existsSync('/run/systemd/system')) {
      await run('systemctl', ['disable', '--now', 'etcd'], Math.max(1_000, Math.min(15_000, deadline - Date.now())));
    }
  } catch (err) {
    return { ok: false, reason: `installing etcd-server failed: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    if (ourPolicy) await unlink(policyPath).catch(() => undefined);
  }
  const binary = findEtcdBinary();
  return binary ? { ok: true, binary } : { ok: false, reason: 'etcd-server installed but no etcd binary found' };
}

/** Look for etcd on PATH and in Debian's location. */
function findEtcdBinary(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    const p = join(dir, 'etcd');
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * A free TCP port on 127.0.0.1: bind port 0, read the port the kernel chose, close.
 * Racy by nature (the port is free only until someone else binds it); callers retry on a bind failure.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not read a free port'))));
    });
  });
}

/**
 * etcds still running, with their data dirs. If the bench exits without close() (an uncaught error, Ctrl-C),
 * they are SIGKILLed and their dirs removed synchronously, so no etcd outlives the benchmark.
 */
const live = new Map<ChildProcess, string>();
let hooksInstalled = false;
function cleanupSync(): void {
  for (const [child, dir] of live) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  live.clear();
}
function trackChild(child: ChildProcess, dataDir: string): void {
  live.set(child, dataDir);
  child.once('exit', () => live.delete(child));
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', cleanupSync);
  // Node's default on SIGINT/SIGTERM exits without running 'exit' handlers. Clean up, then, if nobody else
  // handles the signal, re-raise it so the process still dies of it as it would have.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupSync();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.once(sig, onSignal);
  }
}

async function launch(binary: string, opts: StartEtcdOptions): Promise<EtcdHandle> {
  const [clientPort, peerPort] = await twoDistinctPorts();
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'switchboard-bench-etcd-'));
  const args = [
    '--name',
    'bench',
    '--data-dir',
    dataDir,
    // Client and peer listeners on 127.0.0.1 only; the defaults would be localhost:2379/2380.
    '--listen-client-urls',
    clientUrl,
    '--advertise-client-urls',
    clientUrl,
    '--listen-peer-urls',
    peerUrl,
    '--initial-advertise-peer-urls',
    peerUrl,
    '--initial-cluster',
    `bench=${peerUrl}`,
    '--initial-cluster-state',
    'new',
    '--initial-cluster-token',
    `bench-${process.pid}-${clientPort}`,
    '--logger',
    'zap',
    '--log-level',
    'warn',
    ...(opts.unsafeNoFsync ? ['--unsafe-no-fsync'] : []),
    ...(opts.extraArgs ?? []),
  ];
  // ETCD_* variables would override our flags (or make etcd refuse: "conflicting environment variable").
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;

  const child = spawn(binary, args, {
    env,
    stdio: ['ignore', 'ignore', opts.logs === 'inherit' ? 'inherit' : 'pipe'],
  });
  trackChild(child, dataDir);
  let logTail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    logTail = (logTail + chunk).slice(-4_000);
  });
  let exited: string | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? `code ${code}`}`;
      resolve();
    });
    child.once('error', (err) => {
      exited = `spawn error: ${err.message}`;
      resolve();
    });
  });

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (exited === undefined) {
      child.kill('SIGTERM');
      const graceful = await Promise.race([exitPromise.then(() => true), sleep(3_000).then(() => false)]);
      if (!graceful) {
        child.kill('SIGKILL');
        await Promise.race([exitPromise, sleep(2_000)]);
      }
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const version = await waitHealthy(clientUrl, opts.startTimeoutMs ?? 20_000, () => exited);
    return { clientUrl, peerUrl, version, binary, pid: child.pid ?? -1, dataDir, close };
  } catch (err) {
    await close();
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`${msg}${logTail ? `; etcd log: ${tail(logTail)}` : ''}`);
  }
}

async function twoDistinctPorts(): Promise<[number, number]> {
  const a = await freePort();
  for (let i = 0; i < 10; i++) {
    const b = await freePort();
    if (b !== a) return [a, b];
  }
  throw new Error('could not find two free ports');
}

/** Poll `/health` until etcd says it is healthy, then read `/version`. Bounded by timeoutMs. */
export async function waitHealthy(
  clientUrl: string,
  timeoutMs: number,
  exited: () => string | undefined,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const why = exited();
    if (why) throw new Error(`etcd ${why} before becoming healthy`);
    try {
      const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      const body = (await res.json()) as { health?: string };
      if (res.ok && body.health === 'true') {
        const v = (await (await fetch(`${clientUrl}/version`, { signal: AbortSignal.timeout(2_000) })).json()) as {
          etcdserver?: string;
        };
        return v.etcdserver ?? 'unknown';
      }
      last = `health ${res.status} ${JSON.stringify(body)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(50);
  }
  throw new Error(`etcd not healthy after ${timeoutMs} ms (${last})`);
}

/** Run a command with a hard time bound; output is collected (apt is chatty, only the tail is kept). */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    if (timeoutMs <= 0) {
      resolve({ code: -1, output: `timed out before running ${cmd}` });
      return;
    }
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'a' },
    });
    let output = '';
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      output += `\n${cmd} timed out after ${timeoutMs} ms`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, output: `${output}\n${err.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output });
    });
  });
}

function tail(text: string, lines = 4): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

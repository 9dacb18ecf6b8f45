/**
 * A private etcd cluster for tests: N members (3 by default) of Debian's `etcd` on loopback ephemeral ports, each
 * with its own data dir, started as real processes that a test can kill, stop, pause and start again.
 *
 * Every member gets the same `--initial-cluster-token` (different tokens give "cluster ID mismatch" forever) and
 * `--initial-cluster-state new`; a restarted member finds its data dir and rejoins with it. Installing the binary
 * and waiting for `/health` are shared with the benchmark's single etcd (bench/lib/etcd.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureEtcdInstalled, freePort, waitHealthy } from '../../bench/lib/etcd.ts';
import { waitFor } from './wait.ts';

export interface EtcdMember {
  readonly name: string;
  /** `http://127.0.0.1:port` */
  readonly clientUrl: string;
  readonly peerUrl: string;
  /** `127.0.0.1:port`, as the etcd client takes it. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** The running process, or undefined while the member is down. */
  readonly proc: ChildProcess | undefined;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** `etcd://127.0.0.1:a,127.0.0.1:b,127.0.0.1:c`: the form `--store` takes. */
  readonly url: string;
  /** `host:port` of every member. */
  readonly endpoints: string[];
  /** Sends `signal` (default SIGKILL) to member `i` and waits for it to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP / SIGCONT: a member that is alive to TCP but answers nothing. */
  pause(i: number): void;
  resume(i: number): void;
  /** Starts member `i` again on its ports and data dir, and waits until it reports healthy. */
  start(i: number): Promise<void>;
  /** Resolves once member `i` (default: every running member) answers `/health` true (it sees a leader). */
  waitHealthy(i?: number, timeoutMs?: number): Promise<void>;
  /** Index of the member that is etcd's raft leader right now (asked to a running member), or -1. */
  raftLeader(): Promise<number>;
  /** The tail of member `i`'s own log (stderr), for failure messages. */
  log(i: number): string;
  /** Kills every member and removes the data dirs. Idempotent. */
  close(): Promise<void>;
}

export interface EtcdClusterOptions {
  /** Members (default 3). */
  size?: number;
  /** Extra flags for every member (appended last, so they win). */
  extraArgs?: string[];
  /** Bound on the whole start, ms (default 30 000). */
  startTimeoutMs?: number;
}

/** Starts a private etcd cluster; throws (with etcd's own words) when the binary is missing or a member fails. */
export async function startEtcdCluster(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const installed = await ensureEtcdInstalled();
  if (!installed.ok) throw new Error(`etcd not available: ${installed.reason}`);
  const size = opts.size ?? 3;
  const ports = await distinctPorts(size * 2);
  const token = `switchboard-test-${process.pid}-${ports[0]}`;
  const members = Array.from({ length: size }, (_, i) => ({
    name: `m${i}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    endpoint: `127.0.0.1:${ports[2 * i]}`,
    dataDir: mkdtempSync(join(tmpdir(), `switchboard-etcd-m${i}-`)),
    proc: undefined as ChildProcess | undefined,
    logTail: '',
    exited: undefined as Promise<void> | undefined,
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  // ETCD_* variables would override our flags, or make etcd refuse ("conflicting environment variable").
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;

  const launch = (i: number): void => {
    const m = members[i];
    const proc = spawn(
      installed.binary,
      [
        ...['--name', m.name, '--data-dir', m.dataDir],
        ...['--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl],
        ...['--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl],
        ...['--initial-cluster', initialCluster, '--initial-cluster-state', 'new'],
        ...['--initial-cluster-token', token, '--logger', 'zap', '--log-level', 'warn'],
        ...(opts.extraArgs ?? []),
      ],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    m.proc = proc;
    m.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    void m.exited.then(() => {
      if (m.proc === proc) m.proc = undefined;
    });
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk: string) => (m.logTail = (m.logTail + chunk).slice(-8_000)));
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
  };

  const healthy = async (i: number, timeoutMs: number): Promise<void> => {
    const m = members[i];
    try {
      await waitHealthy(m.clientUrl, timeoutMs, () => (m.proc ? undefined : 'exited'));
    } catch (err) {
      throw new Error(`etcd member ${m.name}: ${(err as Error).message}; its log: ${m.logTail.slice(-2000)}`);
    }
  };

  let closed = false;
  const cluster: EtcdCluster = {
    members,
    url: `etcd://${members.map((m) => m.endpoint).join(',')}`,
    endpoints: members.map((m) => m.endpoint),
    async kill(i, signal = 'SIGKILL') {
      const m = members[i];
      if (!m.proc) return;
      m.proc.kill('SIGCONT');
      m.proc.kill(signal);
      await m.exited;
    },
    pause(i) {
      members[i].proc?.kill('SIGSTOP');
    },
    resume(i) {
      members[i].proc?.kill('SIGCONT');
    },
    async start(i) {
      if (members[i].proc) return;
      launch(i);
      await healthy(i, opts.startTimeoutMs ?? 30_000);
    },
    async waitHealthy(i, timeoutMs = 30_000) {
      const which = i === undefined ? members.map((_, j) => j).filter((j) => members[j].proc) : [i];
      await Promise.all(which.map((j) => healthy(j, timeoutMs)));
    },
    async raftLeader() {
      const ids: string[] = [];
      let leader: string | undefined;
      for (const m of members) {
        if (!m.proc) {
          ids.push('');
          continue;
        }
        const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}' });
        const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
        ids.push(body.header?.member_id ?? '');
        leader ??= body.leader;
      }
      return leader === undefined ? -1 : ids.indexOf(leader);
    },
    log: (i) => members[i].logTail,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(members.map((_, i) => cluster.kill(i)));
      for (const m of members) rmSync(m.dataDir, { recursive: true, force: true });
    },
  };

  try {
    members.forEach((_, i) => launch(i));
    await cluster.waitHealthy(undefined, opts.startTimeoutMs ?? 30_000);
    // /health is true once this member sees a leader; wait until all agree on one cluster before handing it out.
    await waitFor(async () => (await memberCount(members[0].clientUrl)) === size, { what: 'etcd membership' });
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

async function memberCount(clientUrl: string): Promise<number> {
  const res = await fetch(`${clientUrl}/v3/cluster/member/list`, { method: 'POST', body: '{}' });
  const body = (await res.json()) as { members?: unknown[] };
  return body.members?.length ?? 0;
}

async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Members still running when the test process exits (a failed test, a timeout) are killed, never left behind. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

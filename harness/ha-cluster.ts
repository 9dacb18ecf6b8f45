/**
 * A highly available Switchboard made of real processes, for the HA fault tests and the failover benchmark: a
 * private 3-member etcd, N leaders `--store etcd://…` (one active, the others standbys), workers and gateways
 * given the whole leader list, and heartbeating provider processes.
 *
 * Everything goes through the HA contract only: the active leader is the one whose control endpoint answers a
 * ping (standbys bind nothing), and a leader's role changes are read from its log lines (`elected`,
 * `stepped down`, `standby`). The internal plane speaks CURVE unless SWITCHBOARD_TEST_CURVE=0 (harness/curve.ts):
 * every leader holds the same pair, so workers and gateways trust whichever is active.
 */
import { startEtcdCluster, type EtcdCluster } from '../test/helpers/etcd-cluster.ts';
import { clusterCurve, type ClusterCurve } from './curve.ts';
import { http } from './http.ts';
import { leaderSnapshot, pingLeader, type LeaderSnapshot } from './leader-probe.ts';
import {
  freePort,
  spawnRole,
  startGatewayProcess,
  startProviderProcess,
  startWorkerProcess,
  type Child,
} from './process.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

export interface HaLeader {
  readonly index: number;
  readonly control: string;
  readonly events: string;
  child: Child | undefined;
  /** Log messages of the current process that tell its role (`elected`, `stepped down`, `standby`), in order. */
  roleLog: Array<{ msg: string; at: number; term?: unknown; reason?: unknown }>;
}

export interface HaClusterOptions {
  leaders?: number;
  workers?: number;
  gateways?: number;
  /** `--session-ttl` of every leader (seconds); the leader's default when absent. */
  sessionTtl?: number;
  gatewayArgs?: string[];
  workerArgs?: string[];
  /** An etcd cluster to use (a test file may share one); a private one is started (and closed) otherwise. */
  etcd?: EtcdCluster;
  /** Key prefix in etcd, unique per cluster by default. */
  prefix?: string;
}

export interface HaCluster {
  readonly etcd: EtcdCluster;
  readonly prefix: string;
  readonly leaders: HaLeader[];
  /** `tcp://…:C1,tcp://…:C2,…`: what workers and gateways get as `--leader`. */
  readonly leaderList: string;
  readonly workers: Array<{ child: Child; id: string }>;
  readonly gateways: Array<{ child: Child; url: string }>;
  /** The cluster's CURVE keys (`on: false` with SWITCHBOARD_TEST_CURVE=0). */
  readonly curve: ClusterCurve;
  /** Starts leader `i` (again) on its own endpoints; resolves once it says it is elected or a standby. */
  startLeader(i: number): Promise<HaLeader>;
  /** Index of the leader that answers on its control endpoint; waits (up to `timeoutMs`) for exactly one. */
  activeLeader(timeoutMs?: number): Promise<number>;
  /** The active leader's own snapshot, asked over its control socket as a gateway would. */
  leaderSnapshot(timeoutMs?: number): Promise<LeaderSnapshot>;
  /** Heartbeating provider processes for `groups` of ids, registered through `gateway` with zmq checks. */
  startProviders(
    service: string,
    groups: string[][],
    opts?: { gateway?: string; intervalMs?: number; misses?: number; basePort?: number },
  ): Promise<Array<{ child: Child; endpoint: string; ids: string[] }>>;
  /** Waits until every gateway answers /readyz 200. */
  gatewaysReady(timeoutMs?: number): Promise<void>;
  track(child: Child): Child;
  /** Stops every process (and the etcd cluster if this harness started it). Idempotent. */
  close(): Promise<void>;
}

const ROLE_MESSAGES = new Set(['elected', 'stepped down', 'standby']);

export async function startHaCluster(opts: HaClusterOptions = {}): Promise<HaCluster> {
  const ownEtcd = !opts.etcd;
  const etcd = opts.etcd ?? (await startEtcdCluster());
  const prefix = opts.prefix ?? `/switchboard-ha-${process.pid}-${Math.random().toString(36).slice(2, 8)}/`;
  const children: Child[] = [];
  const track = (c: Child): Child => {
    children.push(c);
    return c;
  };
  const leaders: HaLeader[] = [];
  for (let i = 0; i < (opts.leaders ?? 3); i++) {
    leaders.push({
      index: i,
      control: `tcp://127.0.0.1:${await freePort()}`,
      events: `tcp://127.0.0.1:${await freePort()}`,
      child: undefined,
      roleLog: [],
    });
  }
  const leaderList = leaders.map((l) => l.control).join(',');
  const keys = tempDir('switchboard-ha-keys-');
  const curve = clusterCurve(keys.path);
  let closing: Promise<void> | undefined;

  const ha: HaCluster = {
    etcd,
    prefix,
    leaders,
    leaderList,
    workers: [],
    gateways: [],
    curve,
    track,
    async startLeader(i) {
      const leader = leaders[i];
      if (leader.child?.alive()) throw new Error(`leader ${i} is running already`);
      leader.roleLog = [];
      const child = spawnRole(
        'leader',
        [
          '--store',
          etcd.url,
          '--store-prefix',
          prefix,
          ...(opts.sessionTtl ? ['--session-ttl', String(opts.sessionTtl)] : []),
          '--bind',
          leader.control,
          '--publish',
          leader.events,
          // Its /metrics (`switchboard leader metrics: url=…` on stdout), for what an operator would look at.
          ...['--metrics-port', '0'],
          ...curve.leaderArgs,
        ],
        // Its role changes are read from its info-level log lines.
        { SWITCHBOARD_LOG_LEVEL: 'info' },
      );
      leader.child = track(child);
      watchRole(child, leader);
      await waitFor(() => leader.roleLog.length > 0 || !child.alive(), {
        timeoutMs: 30_000,
        what: `leader ${i} elected or standby`,
      });
      if (!child.alive()) throw new Error(`leader ${i} exited while starting; stderr:\n${child.stderrTail()}`);
      return leader;
    },
    async activeLeader(timeoutMs = 15_000) {
      return waitFor(
        async () => {
          const answers = await Promise.all(
            leaders.map((l) => (l.child?.alive() ? pingLeader(l.control, curve.probeOptions) : Promise.resolve(false))),
          );
          const active = answers.flatMap((ok, i) => (ok ? [i] : []));
          return active.length === 1 ? active[0] : undefined;
        },
        { timeoutMs, intervalMs: 50, what: 'exactly one active leader' },
      );
    },
    async leaderSnapshot(timeoutMs = 15_000) {
      const i = await ha.activeLeader(timeoutMs);
      return leaderSnapshot(leaders[i].control, curve.probeOptions);
    },
    async startProviders(service, groups, p = {}) {
      const url = p.gateway ?? ha.gateways[0].url;
      const out = [];
      for (const [g, ids] of groups.entries()) {
        const provider = await startProviderProcess(ids, { intervalMs: 50 });
        track(provider.child);
        for (const [i, id] of ids.entries()) {
          const res = await http('PUT', `${url}/v1/providers/${id}`, {
            service,
            host: '127.0.0.1',
            port: (p.basePort ?? 20000) + g * 100 + i,
            protocol: 'rpc-server',
            check: { type: 'zmq', endpoint: provider.endpoint, intervalMs: p.intervalMs ?? 300, misses: p.misses ?? 3 },
          });
          if (res.status !== 200 && res.status !== 201) throw new Error(`register ${id}: ${res.status}`);
        }
        out.push({ ...provider, ids });
      }
      return out;
    },
    async gatewaysReady(timeoutMs = 20_000) {
      for (const g of ha.gateways)
        await waitFor(async () => (await http('GET', `${g.url}/readyz`)).status === 200, {
          timeoutMs,
          what: `${g.url} ready`,
        });
    },
    close() {
      closing ??= (async () => {
        await Promise.all(children.map((c) => c.stop(2000)));
        if (ownEtcd) await etcd.close();
        keys.remove();
      })();
      return closing;
    },
  };

  try {
    // The first leader alone, so it is the one elected; then the standbys.
    await ha.startLeader(0);
    await ha.activeLeader(30_000);
    // One process at a time: each loads Node and tsx, and side by side on a loaded machine they miss their deadlines.
    for (let i = 1; i < leaders.length; i++) await ha.startLeader(i);
    for (let i = 0; i < (opts.workers ?? 2); i++) {
      const w = await startWorkerProcess(leaderList, [...curve.workerArgs, ...(opts.workerArgs ?? [])]);
      track(w.child);
      ha.workers.push(w);
    }
    for (let i = 0; i < (opts.gateways ?? 2); i++) {
      const g = await startGatewayProcess(leaderList, [...curve.gatewayArgs, ...(opts.gatewayArgs ?? [])]);
      track(g.child);
      ha.gateways.push(g);
    }
    await ha.gatewaysReady();
  } catch (err) {
    await ha.close();
    throw err;
  }
  return ha;
}

/** Reads the leader's pino lines on stderr and keeps the ones that say its role changed. */
function watchRole(child: Child, leader: HaLeader): void {
  let partial = '';
  child.proc.stderr?.on('data', (chunk: string | Buffer) => {
    if (leader.child !== child) return;
    const text = partial + chunk.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { msg?: string; term?: unknown; reason?: unknown };
        if (entry.msg && ROLE_MESSAGES.has(entry.msg))
          leader.roleLog.push({ msg: entry.msg, at: Date.now(), term: entry.term, reason: entry.reason });
      } catch {
        // not a log line of ours
      }
    }
  });
}

/**
 * A Switchboard made of real processes for fault tests: a leader on a fixed port (so it can come back where
 * everyone looks for it), workers, gateways, heartbeating provider processes, and a recorder that watches
 * through the Node client. The internal plane speaks CURVE unless SWITCHBOARD_TEST_CURVE=0 (harness/curve.ts).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Provider } from '../../src/bridge/index.ts';
import type { SwitchboardClient } from '../../src/client/index.ts';
import { type WatchUpdate, type Watch } from '../../src/client/index.ts';
import { clusterCurve, type ClusterCurve } from '../../harness/curve.ts';
import { http } from '../../harness/http.ts';
import { leaderSnapshot, pingLeader, type LeaderSnapshot } from '../../harness/leader-probe.ts';
import {
  freePort,
  startGatewayProcess,
  startLeaderProcess,
  startProviderProcess,
  startWorkerProcess,
  type Child,
} from '../../harness/process.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';

export interface FaultCluster {
  bind: string;
  dataDir: string;
  leader: Child;
  workers: Array<{ child: Child; id: string }>;
  gateways: Array<{ child: Child; url: string }>;
  /** The cluster's CURVE keys (`on: false` with SWITCHBOARD_TEST_CURVE=0). */
  curve: ClusterCurve;
  startLeader(): Promise<void>;
  startWorker(): Promise<{ child: Child; id: string }>;
  /** The leader's own snapshot, asked over its control socket as a gateway would. */
  leaderSnapshot(): Promise<LeaderSnapshot>;
  cluster(
    url?: string,
  ): Promise<{ workers: Array<{ id: string; tasks: number }>; unassigned: number; rev: number; epoch: string }>;
  track(child: Child): Child;
}

export async function startFaultCluster(
  t: TestContext,
  opts: { workers?: number; gateways?: number; gatewayArgs?: string[]; leaderArgs?: string[] } = {},
): Promise<FaultCluster> {
  const dir = tempDir('switchboard-fault-');
  const children: Child[] = [];
  t.after(async () => {
    await Promise.all(children.map((c) => c.stop(2000)));
    dir.remove();
  });
  const track = (c: Child): Child => {
    children.push(c);
    return c;
  };
  const bind = `tcp://127.0.0.1:${await freePort()}`;
  const publish = `tcp://127.0.0.1:${await freePort()}`;
  // The keys live beside the store, not in it: the store directory is the leader's.
  const curve = clusterCurve(dir.path);
  const dataDir = join(dir.path, 'data');
  const fc: FaultCluster = {
    bind,
    dataDir,
    leader: undefined as unknown as Child,
    workers: [],
    gateways: [],
    curve,
    track,
    async startLeader() {
      const leader = await startLeaderProcess(dataDir, bind, publish, [
        ...curve.leaderArgs,
        ...(opts.leaderArgs ?? []),
      ]);
      fc.leader = track(leader.child);
    },
    async startWorker() {
      const w = await startWorkerProcess(bind, curve.workerArgs);
      track(w.child);
      return w;
    },
    leaderSnapshot: () => leaderSnapshot(bind, curve.probeOptions),
    async cluster(url = fc.gateways[0].url) {
      const res = await http('GET', `${url}/v1/admin/cluster`);
      if (res.status !== 200) throw new Error(`cluster status ${res.status}`);
      return res.body;
    },
  };
  await fc.startLeader();
  for (let i = 0; i < (opts.workers ?? 2); i++) fc.workers.push(await fc.startWorker());
  for (let i = 0; i < (opts.gateways ?? 2); i++) {
    const g = await startGatewayProcess(bind, [...curve.gatewayArgs, ...(opts.gatewayArgs ?? [])]);
    track(g.child);
    fc.gateways.push(g);
  }
  for (const g of fc.gateways)
    await waitFor(async () => (await http('GET', `${g.url}/readyz`)).status === 200, { what: `${g.url} ready` });
  await waitFor(async () => (await fc.cluster()).workers.length === fc.workers.length, { what: 'workers registered' });
  return fc;
}

/** Provider processes beating for `groups` of ids, registered with zmq checks. */
export async function startProviders(
  fc: FaultCluster,
  client: SwitchboardClient,
  service: string,
  groups: string[][],
  check: { intervalMs: number; misses: number } = { intervalMs: 300, misses: 3 },
): Promise<Array<{ child: Child; endpoint: string; ids: string[] }>> {
  const out = [];
  for (const ids of groups) {
    const p = await startProviderProcess(ids, { intervalMs: 50 });
    fc.track(p.child);
    for (const [i, id] of ids.entries()) {
      await client.register(
        {
          service,
          host: '127.0.0.1',
          port: 20000 + out.length * 100 + i,
          protocol: 'rpc-server',
          check: { type: 'zmq', endpoint: p.endpoint, ...check },
        },
        id,
      );
    }
    out.push({ ...p, ids });
  }
  return out;
}

/** Everything a watch saw, in order. */
export function record(watch: Watch): WatchUpdate[] {
  const seen: WatchUpdate[] = [];
  watch.on((u) => seen.push(u));
  return seen;
}

export function statesOf(providers: Provider[]): Record<string, string> {
  return Object.fromEntries(providers.map((p) => [p.id, p.state]).sort());
}

export async function allInState(
  client: SwitchboardClient,
  service: string,
  ids: string[],
  state: string,
  timeoutMs = 15_000,
): Promise<void> {
  await waitFor(
    async () => {
      const all = await client.lookup(service, { state: 'all' });
      return ids.every((id) => all.find((p) => p.id === id)?.state === state);
    },
    { timeoutMs, what: `${ids.length} providers ${state}` },
  );
}

/**
 * With CURVE on: the leader at `control` answers the cluster's keys and neither a plain client nor an unlisted key
 * (each gets no answer within half a second). Nothing to check on a plain cluster.
 */
export async function assertLeaderAdmitsOnlyListedKeys(control: string, curve: ClusterCurve): Promise<void> {
  if (!curve.on) return;
  assert.equal(await pingLeader(control, curve.probeOptions, 5000), true, 'a listed key is answered');
  for (const stranger of curve.strangers)
    assert.equal(await pingLeader(control, stranger.options, 500), false, `${stranger.what} gets no answer`);
}

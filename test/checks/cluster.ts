/**
 * The in-process Switchboard (harness/cluster.ts) as the health-check tests want it: one worker, and short
 * intervals (leader sweep, worker pings, ZMTP heartbeats) that keep the tests fast.
 */
import type { Provider } from '../../src/bridge/index.ts';
import type { GatewayHandle } from '../../src/gateway/index.ts';
import type { LeaderConfigInput, LeaderHandle } from '../../src/leader/index.ts';
import type { WorkerConfigInput, WorkerHandle } from '../../src/worker/index.ts';
import { startCluster as startWholeCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';

export interface Cluster {
  url: string;
  leader: LeaderHandle;
  worker: WorkerHandle;
  gateway: GatewayHandle;
  close(): Promise<void>;
}

export async function startCluster(
  opts: { leader?: LeaderConfigInput; worker?: WorkerConfigInput } = {},
): Promise<Cluster> {
  const c = await startWholeCluster({
    workers: 1,
    leader: { sweepIntervalMs: 50, ...opts.leader },
    worker: { pingIntervalMs: 100, zmtpHeartbeatIntervalMs: 100, zmtpHeartbeatTimeoutMs: 300, ...opts.worker },
  });
  return { url: c.url, leader: c.leader, worker: c.workers[0], gateway: c.gateway, close: () => c.close() };
}

export async function register(url: string, id: string, body: object): Promise<Provider> {
  const res = await http('PUT', `${url}/v1/providers/${id}`, body);
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`register ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Provider;
}

export async function provider(url: string, id: string): Promise<Provider | undefined> {
  const res = await http<Provider>('GET', `${url}/v1/providers/${id}`);
  return res.status === 200 ? res.body : undefined;
}

/** Waits until the provider is in `state`; returns the record. */
export function waitState(url: string, id: string, state: Provider['state'], timeoutMs = 5000): Promise<Provider> {
  return waitFor(
    async () => {
      const p = await provider(url, id);
      return p?.state === state ? p : undefined;
    },
    { timeoutMs, what: `${id} ${state}`, intervalMs: 10 },
  );
}

/** Every change the leader published for one provider, in revision order (the leader's own event history). */
export function changes(c: Cluster, id: string): Array<{ change: string; state: string; at: number; rev: number }> {
  const events = c.leader.history(0) ?? [];
  return events
    .filter((e) => e.provider.id === id)
    .map((e) => ({ change: e.change, state: e.provider.state, at: e.at, rev: e.rev }));
}

/** Asserts `probe` stays true for `ms` (a polled invariant: fails at the first moment it breaks). */
export async function holds(probe: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!(await probe())) throw new Error(`expected to hold for ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

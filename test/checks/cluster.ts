/**
 * An in-process Switchboard for the health-check tests: leader, one worker and a gateway, talking over real
 * ZeroMQ sockets on loopback and serving real HTTP. Short intervals keep the tests fast.
 */
import { createLogger, type Provider } from '../../src/bridge/index.ts';
import { start as startGateway, type GatewayHandle } from '../../src/gateway/index.ts';
import { start as startLeader, type LeaderConfigInput, type LeaderHandle } from '../../src/leader/index.ts';
import { start as startWorker, type WorkerConfigInput, type WorkerHandle } from '../../src/worker/index.ts';
import { http } from '../helpers/http.ts';
import { tempDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';

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
  const dir = tempDir('switchboard-checks-');
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const leader = await startLeader(
    { dataDir: dir.path, bind: 'tcp://127.0.0.1:*', sweepIntervalMs: 50, reassignGraceMs: 0, ...opts.leader },
    { log },
  );
  const worker = await startWorker(
    {
      leader: leader.control,
      pingIntervalMs: 100,
      zmtpHeartbeatIntervalMs: 100,
      zmtpHeartbeatTimeoutMs: 300,
      ...opts.worker,
    },
    { log },
  );
  const gateway = await startGateway({ leader: leader.control, httpPort: 0 }, { log });
  await waitFor(async () => (await http('GET', `${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
  return {
    url: gateway.url,
    leader,
    worker,
    gateway,
    async close() {
      await gateway.close();
      await worker.close();
      await leader.close();
      dir.remove();
    },
  };
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

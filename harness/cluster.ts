/**
 * A whole Switchboard in this process (leader, workers, gateway), talking over real ZeroMQ sockets on loopback
 * and real HTTP. For tests that need no process to die; fault tests use harness/process.ts instead.
 */
import { createLogger } from '../src/bridge/index.ts';
import { start as startLeader, type LeaderHandle, type LeaderConfigInput } from '../src/leader/index.ts';
import { start as startWorker, type WorkerHandle, type WorkerConfigInput } from '../src/worker/index.ts';
import { start as startGateway, type GatewayHandle, type GatewayConfigInput } from '../src/gateway/index.ts';
import { http } from './http.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

export interface Cluster {
  leader: LeaderHandle;
  workers: WorkerHandle[];
  gateway: GatewayHandle;
  url: string;
  dataDir: string;
  close(): Promise<void>;
}

export async function startCluster(
  opts: { workers?: number; leader?: LeaderConfigInput; worker?: WorkerConfigInput; gateway?: GatewayConfigInput } = {},
): Promise<Cluster> {
  const dir = tempDir();
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'error' });
  const leader = await startLeader(
    { dataDir: dir.path, bind: 'tcp://127.0.0.1:*', reassignGraceMs: 0, ...opts.leader },
    { log },
  );
  const workers: WorkerHandle[] = [];
  for (let i = 0; i < (opts.workers ?? 1); i++)
    workers.push(await startWorker({ leader: leader.control, ...opts.worker }, { log }));
  const gateway = await startGateway({ leader: leader.control, httpPort: 0, ...opts.gateway }, { log });
  const cluster: Cluster = {
    leader,
    workers,
    gateway,
    url: gateway.url,
    dataDir: dir.path,
    async close() {
      await gateway.close();
      for (const w of workers) await w.close();
      await leader.close();
      dir.remove();
    },
  };
  await waitFor(async () => (await http('GET', `${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
  await waitFor(() => leader.status().workers === workers.length, { what: 'workers registered' });
  return cluster;
}

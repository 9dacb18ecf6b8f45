/** The worker role: `start(config)` connects to the leader and watches what it is assigned. */
import { createLogger, makeHandle, Metrics, type Handle, type Logger } from '../bridge/index.ts';
import { workerConfig, type WorkerConfigInput } from './config.ts';
import { Worker } from './worker.ts';

export { workerConfig, WORKER_DEFAULTS } from './config.ts';
export type { WorkerConfig, WorkerConfigInput } from './config.ts';

export interface WorkerHandle extends Handle {
  readonly id: string;
  readonly metrics: Metrics;
  readonly worker: Worker;
}

export async function start(
  config: WorkerConfigInput,
  deps: { log?: Logger; metrics?: Metrics } = {},
): Promise<WorkerHandle> {
  const cfg = workerConfig(config);
  const log = (deps.log ?? createLogger()).child({ role: 'worker' });
  const metrics = deps.metrics ?? new Metrics();
  const worker = new Worker(cfg, log, metrics);
  worker.start();
  return makeHandle({ id: worker.id, metrics, worker }, () => worker.close());
}

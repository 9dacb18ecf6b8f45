/** The worker role: `start(config)` connects to the leader and watches what it is assigned. */
import {
  buildInfoLabels,
  createLogger,
  leaderEndpoints,
  makeHandle,
  Metrics,
  readClientKeys,
  startMetricsServer,
  warnWhileLeaderUnreachable,
  type Handle,
  type Logger,
} from '../bridge/index.ts';
import { workerConfig, type WorkerConfigInput } from './config.ts';
import { Worker } from './worker.ts';

export { workerConfig, WORKER_DEFAULTS } from './config.ts';
export type { WorkerConfig, WorkerConfigInput } from './config.ts';

export interface WorkerHandle extends Handle {
  readonly id: string;
  readonly metrics: Metrics;
  readonly worker: Worker;
  /** http://host:port serving /metrics, or null when `metricsPort` is not set. */
  readonly metricsUrl: string | null;
}

export async function start(
  config: WorkerConfigInput,
  deps: { log?: Logger; metrics?: Metrics } = {},
): Promise<WorkerHandle> {
  const cfg = workerConfig(config);
  const curve = readClientKeys(cfg.curveSecretKey, cfg.curveServerKey);
  const log = (deps.log ?? createLogger()).child({ role: 'worker' });
  const metrics = deps.metrics ?? new Metrics();
  metrics.gauge('switchboard_build_info', 'Build of this process (value 1)', () => [[buildInfoLabels('worker'), 1]], [
    'version',
    'role',
    'node',
  ]);
  const server =
    cfg.metricsPort === undefined
      ? null
      : await startMetricsServer({ host: cfg.metricsHost, port: cfg.metricsPort, metrics, log });
  const worker = new Worker(cfg, log, metrics, curve);
  worker.start();
  const stopWarning = warnWhileLeaderUnreachable({
    reachable: () => worker.leaderReachable,
    log,
    leader: leaderEndpoints(cfg.leader).join(','),
  });
  return makeHandle({ id: worker.id, metrics, worker, metricsUrl: server?.url ?? null }, async () => {
    stopWarning();
    await worker.close();
    await server?.close();
  });
}

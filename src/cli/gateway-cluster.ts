/**
 * `switchboard start --gateways N` (N ≥ 2): the gateways run as node:cluster workers sharing the one HTTP port,
 * so the one-command start uses more than one core; the leader and the worker stay in the primary. Each gateway
 * is a whole gateway (its own replica, WebSocket, SSE, long-poll), so any connection may land on any of them. The
 * native ZeroMQ feed and DNS bind fixed endpoints: only the first gateway serves them.
 *
 * A cluster worker runs this same CLI with the same arguments; `SWITCHBOARD_CLUSTER_*` variables tell it which
 * leader to follow and which gateway it is. It reports its URL to the primary, which prints the lines.
 */
import cluster, { type Worker } from 'node:cluster';
import { makeHandle, type Handle, type Logger } from '../bridge/index.ts';

const ENV_LEADER = 'SWITCHBOARD_CLUSTER_LEADER';
const ENV_EVENTS = 'SWITCHBOARD_CLUSTER_EVENTS';
const ENV_INDEX = 'SWITCHBOARD_CLUSTER_INDEX';
/** How long a gateway worker may take to start and listen. */
export const GATEWAY_WORKER_START_TIMEOUT_MS = 60_000;
/** How long a gateway worker may take to close after SIGTERM before it is killed. */
const GATEWAY_WORKER_STOP_TIMEOUT_MS = 8_000;
/** A gateway worker that died is started again after this pause (a crash loop costs one fork per pause). */
const RESTART_DELAY_MS = 1000;

export interface GatewayReady {
  type: 'switchboard.gateway.ready';
  url: string;
  feed: { pub: string | null; snapshot: string | null };
  /** The line saying where DNS listens, when this gateway serves it. */
  dns: string | null;
}

/** In a gateway worker: what the primary told it. Undefined in any other process. */
export function clusterGatewayRole(): { leader: string; events: string; index: number } | undefined {
  if (!cluster.isWorker) return undefined;
  const leader = process.env[ENV_LEADER];
  const events = process.env[ENV_EVENTS];
  if (!leader || !events) return undefined;
  return { leader, events, index: Number(process.env[ENV_INDEX] ?? 0) };
}

/** In a gateway worker: tells the primary where it listens. */
export function reportReady(ready: Omit<GatewayReady, 'type'>): void {
  process.send?.({ type: 'switchboard.gateway.ready', ...ready } satisfies GatewayReady);
}

/**
 * In the primary: forks `count` gateway workers following the leader at `leader`/`events` and resolves once each
 * listens, with the first one's answer. A worker that dies while running is started again until close().
 */
export async function startGatewayCluster(
  count: number,
  leader: { control: string; events: string },
  log: Logger,
): Promise<Handle & { ready: GatewayReady }> {
  let closing = false;
  const running = new Set<Worker>();
  const timers = new Set<NodeJS.Timeout>();

  const fork = (index: number): Promise<GatewayReady> => {
    const worker = cluster.fork({ [ENV_LEADER]: leader.control, [ENV_EVENTS]: leader.events, [ENV_INDEX]: index });
    running.add(worker);
    return new Promise<GatewayReady>((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.process.kill('SIGKILL');
        reject(new Error(`gateway ${index + 1} did not start within ${GATEWAY_WORKER_START_TIMEOUT_MS} ms`));
      }, GATEWAY_WORKER_START_TIMEOUT_MS);
      let ready = false;
      worker.on('message', (m: Partial<GatewayReady>) => {
        if (m?.type !== 'switchboard.gateway.ready' || ready) return;
        ready = true;
        clearTimeout(timer);
        resolve(m as GatewayReady);
      });
      worker.on('exit', (code, signal) => {
        running.delete(worker);
        clearTimeout(timer);
        if (!ready) {
          reject(new Error(`gateway ${index + 1} exited while starting (code ${code}, signal ${signal})`));
          return;
        }
        if (closing) return;
        log.error({ gateway: index + 1, code, signal }, 'gateway process died; starting it again');
        const again = setTimeout(() => {
          timers.delete(again);
          if (!closing)
            fork(index).catch((err: unknown) => log.error({ err, gateway: index + 1 }, 'gateway restart failed'));
        }, RESTART_DELAY_MS);
        timers.add(again);
      });
    });
  };

  const stop = async (): Promise<void> => {
    closing = true;
    for (const t of timers) clearTimeout(t);
    await Promise.all(
      [...running].map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            const kill = setTimeout(() => worker.process.kill('SIGKILL'), GATEWAY_WORKER_STOP_TIMEOUT_MS);
            worker.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            worker.process.kill('SIGTERM');
          }),
      ),
    );
  };

  try {
    const all = await Promise.all(Array.from({ length: count }, (_, i) => fork(i)));
    return makeHandle({ ready: all[0] }, stop);
  } catch (err) {
    await stop();
    throw err;
  }
}

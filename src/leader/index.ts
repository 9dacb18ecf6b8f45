/** The leader role: `start(config)` binds its sockets and returns a handle whose `close()` stops it cleanly. */
import {
  buildInfoLabels,
  createLogger,
  makeHandle,
  Metrics,
  type Handle,
  type Logger,
  type RegistryEvent,
} from '../bridge/index.ts';
import { leaderConfig, type LeaderConfigInput } from './config.ts';
import { Leader, type LeaderStatus } from './leader.ts';

export { leaderConfig, LEADER_DEFAULTS, DEFAULT_LEADER_BIND, defaultPublishEndpoint } from './config.ts';
export type { LeaderConfig, LeaderConfigInput } from './config.ts';
export type { LeaderStatus } from './leader.ts';

export interface LeaderHandle extends Handle {
  /** The ROUTER endpoint workers and gateways connect to (resolved when the bind port was `*`). */
  readonly control: string;
  /** The PUB endpoint for events. */
  readonly events: string;
  readonly epoch: string;
  readonly metrics: Metrics;
  /** Epoch, last durable revision, and how many providers, live workers and unwatched checked providers. */
  status(): LeaderStatus;
  /**
   * The committed events after revision `since`, oldest first (`history(0)`: everything still held, up to the
   * `historySize` most recent); undefined when the history no longer reaches back that far.
   */
  history(since: number): RegistryEvent[] | undefined;
}

export async function start(
  config: LeaderConfigInput,
  deps: { log?: Logger; metrics?: Metrics } = {},
): Promise<LeaderHandle> {
  const cfg = leaderConfig(config);
  const log = (deps.log ?? createLogger()).child({ role: 'leader' });
  const metrics = deps.metrics ?? new Metrics();
  metrics.gauge('switchboard_build_info', 'Build of this process (value 1)', () => [[buildInfoLabels('leader'), 1]], [
    'version',
    'role',
    'node',
  ]);
  const leader = new Leader(cfg, log, metrics);
  await leader.start();
  return makeHandle(
    {
      control: leader.controlEndpoint,
      events: leader.eventsEndpoint,
      epoch: leader.epoch,
      metrics,
      status: () => leader.status(),
      history: (since: number) => leader.history(since),
    },
    () => leader.close(),
  );
}

/** The leader role: `start(config)` binds its sockets and returns a handle whose `close()` stops it cleanly. */
import {
  buildInfoLabels,
  createLogger,
  makeHandle,
  Metrics,
  StartupError,
  type Handle,
  type Logger,
  type RegistryEvent,
} from '../bridge/index.ts';
import { defaultPublishEndpoint, leaderConfig, type LeaderConfig, type LeaderConfigInput } from './config.ts';
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
  try {
    await leader.start();
  } catch (err) {
    throw bindError(err, cfg);
  }
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

/**
 * A bind that failed because the address is taken becomes one line naming the address and the flag behind it;
 * the event port is named as derived (bind port + 1) when --publish was not given, since nobody chose it.
 */
function bindError(err: unknown, cfg: Readonly<LeaderConfig>): unknown {
  const e = err as { code?: unknown; address?: unknown; message?: string };
  if (e?.code !== 'EADDRINUSE' || typeof e.address !== 'string') return err;
  const derived = cfg.publish === undefined && e.address === defaultPublishEndpoint(cfg.bind);
  const which =
    e.address === cfg.bind
      ? '--bind, the control endpoint'
      : derived
        ? 'the event port, derived as the --bind port + 1; choose one with --publish'
        : '--publish, the event endpoint';
  return new StartupError(`cannot bind ${e.address}: address already in use (${which})`, { cause: err });
}

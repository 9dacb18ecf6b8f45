/** The leader role: `start(config)` starts the leader node and returns a handle whose `close()` stops it cleanly. */
import {
  buildInfoLabels,
  createLogger,
  makeHandle,
  Metrics,
  readAllowList,
  readKeyPair,
  startMetricsServer,
  startZapGuard,
  StartupError,
  type Handle,
  type PublicKeyEntry,
  type ZapGuard,
  type Logger,
  type MetricsServer,
  type RegistryEvent,
  type StoreHealth,
} from '../bridge/index.ts';
import { defaultPublishEndpoint, leaderConfig, type LeaderConfig, type LeaderConfigInput } from './config.ts';
import type { LeaderStatus } from './leader.ts';
import { LeaderNode } from './node.ts';

export {
  leaderConfig,
  LEADER_DEFAULTS,
  DEFAULT_LEADER_BIND,
  DEFAULT_STORE_FAIL_EXIT_MS,
  defaultPublishEndpoint,
} from './config.ts';
export type { LeaderConfig, LeaderConfigInput } from './config.ts';
export type { LeaderStatus } from './leader.ts';

export interface LeaderHandle extends Handle {
  /** The ROUTER endpoint workers and gateways connect to (resolved when the bind port was `*`). */
  readonly control: string;
  /** The PUB endpoint for events. */
  readonly events: string;
  /** The store's epoch ('' while a standby). */
  readonly epoch: string;
  readonly metrics: Metrics;
  /** http://host:port serving /metrics, or null when `metricsPort` is not set. */
  readonly metricsUrl: string | null;
  /** True while this process is the active leader (always, for SQLite). */
  readonly active: boolean;
  /** The leader's CURVE public key (null without CURVE): the `--curve-server-key` of workers and gateways. */
  readonly curvePublicKey: string | null;
  /** Reads `--curve-allow` again and admits exactly its keys from now on (SIGHUP); a bad file keeps the old list. */
  reloadCurveAllow(): void;
  /**
   * Epoch, last durable revision, and how many providers, live workers and unwatched checked providers. Throws
   * while a standby.
   */
  status(): LeaderStatus;
  /** Whether commits succeed (undefined while a standby). */
  storeHealth(): StoreHealth | undefined;
  /**
   * The committed events after revision `since`, oldest first (`history(0)`: everything still held, up to the
   * `historySize` most recent); undefined when the history no longer reaches back that far (or while a standby).
   */
  history(since: number): RegistryEvent[] | undefined;
}

export async function start(
  config: LeaderConfigInput,
  deps: {
    log?: Logger;
    metrics?: Metrics;
    /** The store kept failing past `storeFailExitMs`: the default closes the leader; the CLI exits with code 75. */
    onFatal?: (err: Error) => void;
  } = {},
): Promise<LeaderHandle> {
  const cfg = leaderConfig(config);
  const log = (deps.log ?? createLogger()).child({ role: 'leader' });
  const metrics = deps.metrics ?? new Metrics();
  metrics.gauge('switchboard_build_info', 'Build of this process (value 1)', () => [[buildInfoLabels('leader'), 1]], [
    'version',
    'role',
    'node',
  ]);
  // Keys are read before anything binds: a wrong file is one line naming it, nothing to undo.
  const curve = cfg.curveSecretKey === undefined ? undefined : readKeyPair('--curve-secret-key', cfg.curveSecretKey);
  const allowed = (): PublicKeyEntry[] => [
    ...(cfg.curveAllow === undefined ? [] : readAllowList('--curve-allow', cfg.curveAllow)),
    ...(cfg.curveAllowKeys ?? []).map((key) => ({ key, source: 'own key' })),
  ];
  let guard: ZapGuard | undefined;
  if (curve)
    guard = await startZapGuard({
      name: 'leader',
      curve: { secretKey: curve.secretKey, allowed: allowed() },
      metrics,
      log,
    });
  const node = new LeaderNode({
    config: cfg,
    log,
    metrics,
    onFatal: deps.onFatal ?? (() => void handle.close()),
    ...(guard ? { security: guard } : {}),
  });
  try {
    await node.start();
  } catch (err) {
    await guard?.close();
    throw bindError(err, cfg);
  }
  let metricsServer: MetricsServer | undefined;
  if (cfg.metricsPort !== undefined) {
    try {
      metricsServer = await startMetricsServer({ host: cfg.metricsHost, port: cfg.metricsPort, metrics, log });
    } catch (err) {
      await node.close();
      await guard?.close();
      throw err;
    }
  }
  const handle: LeaderHandle = makeHandle(
    {
      get control() {
        return node.controlEndpoint;
      },
      get events() {
        return node.eventsEndpoint;
      },
      get epoch() {
        return node.epoch;
      },
      get active() {
        return node.active !== undefined;
      },
      metrics,
      metricsUrl: metricsServer?.url ?? null,
      curvePublicKey: curve?.publicKey ?? null,
      reloadCurveAllow: () => {
        if (!guard) return;
        try {
          guard.setAllowed(allowed());
        } catch (err) {
          log.error({ err: (err as Error).message }, 'CURVE allow list not reloaded; the previous one stays');
        }
      },
      status: () => {
        const status = node.status();
        if (!status) throw new Error('this leader is a standby');
        return status;
      },
      storeHealth: () => node.storeHealth(),
      history: (since: number) => node.active?.history(since),
    },
    async () => {
      await metricsServer?.close();
      await node.close();
      await guard?.close();
    },
  );
  return handle;
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

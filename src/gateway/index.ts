/** The gateway role: follows the leader, serves REST on Fastify, forwards writes. */
import type { FastifyInstance } from 'fastify';
import {
  buildInfoLabels,
  CheckPolicy,
  createLogger,
  isLoopbackHost,
  Follower,
  leaderEndpoints,
  makeHandle,
  Metrics,
  readClientKeys,
  type Handle,
  type Logger,
} from '../bridge/index.ts';
import { buildApp } from './app.ts';
import { GatewayAcl, type AclSource } from './acl.ts';
import { ChangeSignal } from './change-signal.ts';
import { aclDecision, gatewayConfig, GATEWAY_DEFAULTS, type GatewayConfigInput } from './config.ts';
import type { GatewayContext, PushSettings } from './context.ts';
import { startNativeFeed, type NativeFeed } from './feed.ts';
import { FeedAdmission } from './feed-admission.ts';
import { LeaderChannel } from './leader-channel.ts';
import { EventHub } from './subscribers.ts';
import { WriteForwarder } from './writes.ts';
import { defaultAllowedHosts } from './browser-guard.ts';
import { loadTls, type TlsMaterial } from './tls.ts';

export { gatewayConfig, GATEWAY_DEFAULTS } from './config.ts';
export type { GatewayConfig, GatewayConfigInput } from './config.ts';
export { buildApp } from './app.ts';
export type { GatewayContext } from './context.ts';

/** In-flight HTTP requests get this long to finish when the gateway closes. */
export const CLOSE_GRACE_MS = 1000;
export const MAX_BLOCKING_QUERIES = 50_000;

export interface GatewayHandle extends Handle {
  /** http://host:port the REST API listens on. */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly follower: Follower;
  readonly metrics: Metrics;
  /** Bound endpoints of the native ZeroMQ feed (null when switched off). */
  readonly feed: { readonly pub: string | null; readonly snapshot: string | null };
}

export interface ContextOptions extends Partial<PushSettings> {
  writeTimeoutMs: number;
  readYourWritesMs: number;
  historySize?: number;
  maxWatchers?: number;
  maxWatchersPerAddress?: number;
  /** Ranges checks may reach despite the SSRF rules (`--check-allow-cidr`). */
  checkAllowCidr?: readonly string[];
  /** Loopback check targets; default true (the gateway of a test or of `switchboard start` listens on loopback). */
  checkAllowLoopback?: boolean;
  /** Tokens and ACLs on every public route; default off. */
  aclEnabled?: boolean;
  /** Where tokens and policies come from; the follower's replica of them by default. */
  aclSource?: AclSource;
  log?: Logger;
}

/**
 * Builds the context the routes need around a follower (shared by `start` and tests). The caller closes
 * `changes`, `hub` and `leader` (the leader channel opens a socket only once a request is sent).
 */
export function createContext(follower: Follower, metrics: Metrics, opts: ContextOptions): GatewayContext {
  const d = GATEWAY_DEFAULTS;
  const log = opts.log ?? createLogger({ level: 'silent' });
  const changes = new ChangeSignal(follower.replica, MAX_BLOCKING_QUERIES);
  metrics.gauge('switchboard_blocking_queries', 'Blocking queries waiting for a change', () => changes.waiting);
  const leader = new LeaderChannel({ follower, metrics, log });
  const aclSource = opts.aclSource ?? follower;
  // From the event's `at` (the leader decided the change) to the event applied to this replica: the leader's
  // commit, the publish, the transit and any gap repair. Clocks of two machines skew it; on one machine it is exact.
  metrics.histogram(
    'switchboard_propagation_seconds',
    "Time from a change decided on the leader to the change applied to this gateway's replica",
  );
  follower.replica.onEvent((event) =>
    metrics.observe('switchboard_propagation_seconds', undefined, (Date.now() - event.at) / 1000),
  );
  return {
    follower,
    leader,
    metrics,
    writes: new WriteForwarder(leader, follower.replica, {
      timeoutMs: opts.writeTimeoutMs,
      readYourWritesMs: opts.readYourWritesMs,
    }),
    changes,
    hub: new EventHub(follower.replica, {
      historySize: opts.historySize ?? d.historySize,
      maxWatchers: opts.maxWatchers ?? d.maxWatchers,
      maxWatchersPerAddress: opts.maxWatchersPerAddress ?? d.maxWatchersPerAddress,
      metrics,
      log,
      ...(aclSource.onAcl ? { aclChanges: (listener: () => void) => aclSource.onAcl!(listener) } : {}),
    }),
    checkPolicy: new CheckPolicy({
      allowCidrs: opts.checkAllowCidr ?? [],
      allowLoopback: opts.checkAllowLoopback ?? true,
    }),
    acl: new GatewayAcl({
      enabled: opts.aclEnabled ?? false,
      source: aclSource,
      serviceOf: (id) => follower.replica.provider(id)?.service,
    }),
    push: {
      sseHeartbeatMs: opts.sseHeartbeatMs ?? d.sseHeartbeatMs,
      wsPingIntervalMs: opts.wsPingIntervalMs ?? d.wsPingIntervalMs,
      clientBufferBytes: opts.clientBufferBytes ?? d.clientBufferBytes,
    },
  };
}

export async function start(
  config: GatewayConfigInput,
  deps: { log?: Logger; metrics?: Metrics } = {},
): Promise<GatewayHandle> {
  const cfg = gatewayConfig(config);
  const log = (deps.log ?? createLogger()).child({ role: 'gateway' });
  const metrics = deps.metrics ?? new Metrics();
  metrics.gauge('switchboard_build_info', 'Build of this process (value 1)', () => [[buildInfoLabels('gateway'), 1]], [
    'version',
    'role',
    'node',
  ]);
  // Key files are read before anything connects or binds: a wrong file is one line naming it.
  const curve = readClientKeys(cfg.curveSecretKey, cfg.curveServerKey);
  const admission = new FeedAdmission({
    ...(cfg.feedCurveSecretKey && cfg.feedCurveAllow
      ? { curve: { secretKeyFile: cfg.feedCurveSecretKey, allowFile: cfg.feedCurveAllow } }
      : {}),
    maxPerClient: cfg.maxFeedConnectionsPerClient,
    metrics,
    log,
  });
  const follower = new Follower({
    ...(curve ? { curve } : {}),
    leader: cfg.leader,
    ...(cfg.leaderEvents ? { events: cfg.leaderEvents } : {}),
    log,
    metrics,
    name: 'gateway',
    staleAfterMs: cfg.staleAfterMs,
  });
  // TLS files are read before anything binds: a wrong path is one line naming the file, nothing to undo.
  let tls: TlsMaterial | undefined;
  try {
    tls =
      cfg.tlsCert && cfg.tlsKey
        ? loadTls({ cert: cfg.tlsCert, key: cfg.tlsKey, ...(cfg.tlsClientCa ? { clientCa: cfg.tlsClientCa } : {}) })
        : undefined;
  } catch (err) {
    await follower.close();
    throw err;
  }
  const acl = aclDecision(cfg, isLoopbackHost);
  log.info(
    { acl: acl.enabled ? 'on' : 'off', reason: acl.reason },
    `ACLs ${acl.enabled ? 'on' : 'off'} (${acl.reason})`,
  );
  if (!acl.enabled && acl.publicListeners.length > 0)
    log.warn(
      { listeners: acl.publicListeners },
      'ACLs are off on a gateway that listens beyond loopback: anyone who reaches it can change the registry',
    );
  if (acl.enabled && !cfg.tlsCert && acl.publicListeners.some((l) => l.startsWith('http=')))
    log.warn(
      { listeners: acl.publicListeners },
      'ACLs are on without TLS on a public HTTP listener: tokens cross the network in clear (--tls-cert, --tls-key)',
    );
  // Loopback check targets only when the gateway itself is loopback-only (`switchboard start`, a laptop).
  const ctx = createContext(follower, metrics, {
    ...cfg,
    checkAllowLoopback: isLoopbackHost(cfg.httpHost),
    aclEnabled: acl.enabled,
    log,
  });
  let app: FastifyInstance;
  let feed: NativeFeed | null = null;
  try {
    feed = await startNativeFeed({
      pub: cfg.zmqPub,
      snapshot: cfg.zmqSnapshot,
      highWaterMark: cfg.zmqSendHighWaterMark,
      follower,
      metrics,
      log,
      admission,
    });
    app = await buildApp(ctx, {
      log,
      bodyLimit: cfg.bodyLimit,
      dns: cfg.dns,
      dnsTtlS: cfg.dnsTtlS,
      leader: leaderEndpoints(cfg.leader).join(','),
      ...(tls ? { tls } : {}),
      browser: {
        allowedOrigins: cfg.allowedOrigins,
        allowedHosts: [...defaultAllowedHosts(cfg.httpHost), ...(cfg.allowedHosts ?? [])],
      },
      writeLimit: { max: cfg.writeRateLimit, windowMs: cfg.writeRateWindowMs },
    });
    await app.listen({ host: cfg.httpHost, port: cfg.httpPort });
  } catch (err) {
    ctx.changes.close();
    ctx.hub.close();
    await feed?.close();
    await ctx.leader.close();
    await follower.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : cfg.httpPort;
  const host = cfg.httpHost.includes(':') ? `[${cfg.httpHost}]` : cfg.httpHost;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;
  // Checks may not aim at this gateway's own listeners, nor at any listed leader's control port.
  ctx.checkPolicy.addOwnEndpoint(cfg.httpHost, port);
  for (const endpoint of [feed.pub, feed.snapshot, ...leaderEndpoints(cfg.leader), cfg.leaderEvents]) {
    const m = endpoint ? /^tcp:\/\/(.+):([0-9]+)$/.exec(endpoint) : null;
    if (m) ctx.checkPolicy.addOwnEndpoint(m[1].replace(/^\[|\]$/g, ''), Number(m[2]));
  }
  log.info({ url, leader: cfg.leader, feed: { pub: feed.pub, snapshot: feed.snapshot } }, 'gateway listening');
  const nativeFeed = feed;
  return makeHandle({ url, app, follower, metrics, feed: { pub: feed.pub, snapshot: feed.snapshot } }, async () => {
    ctx.changes.close();
    // Push subscribers first: an open SSE stream would keep the HTTP server from closing.
    ctx.hub.close();
    await nativeFeed.close();
    // Fastify closes idle keep-alive sockets when close starts; a blocking query answered just now becomes idle
    // only after that and would hold the server open until its keep-alive timeout. Cut what is left shortly after.
    const closing = app.close();
    const cut = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
    await closing;
    clearTimeout(cut);
    await ctx.leader.close();
    await follower.close();
    log.info('gateway stopped');
  });
}

/**
 * The gateway's Fastify app with no leader behind it, for route-level tests: requests go through `inject()` (no
 * socket at all), or through a real HTTP listener on 127.0.0.1:0 when the test needs one (WebSocket, SSE, a client
 * that hangs up). The replica is filled and moved by hand (`applySnapshot`, then `publish` for each change, as the
 * leader's event feed would), so validation, error shapes, headers, filters and blocking-query parsing are tested
 * without starting a cluster. What crosses the leader's sockets is tested in test/e2e and test/transports.
 *
 * Without a leader the gateway is never in sync: every answer is marked stale, `/readyz` is 503 and writes that
 * pass validation answer 503 SB_LEADER_UNAVAILABLE.
 */
import type { FastifyInstance } from 'fastify';
import {
  createLogger,
  Follower,
  Metrics,
  type Change,
  type Logger,
  type Provider,
  type RegistryEvent,
  type Replica,
} from '../../src/bridge/index.ts';
import {
  buildApp,
  createContext,
  GATEWAY_DEFAULTS,
  type ContextOptions,
  type GatewayContext,
} from '../../src/gateway/index.ts';
import type { AppOptions } from '../../src/gateway/app.ts';

/** Where no leader listens (connections are refused at once, so nothing ever answers). */
const NO_LEADER = 'tcp://127.0.0.1:1';

export interface GatewayApp {
  app: FastifyInstance;
  ctx: GatewayContext;
  replica: Replica;
  metrics: Metrics;
  /** Applies the next change to the replica as the leader's feed would; returns the event (its `rev` is the next). */
  publish(change: Change, provider: Provider): RegistryEvent;
  /** Listens on 127.0.0.1:0; returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export async function gatewayApp(
  opts: {
    /** The replica's starting content; without it the replica stays unloaded (as before the first snapshot). */
    snapshot?: { epoch?: string; rev?: number; providers: Provider[] };
    context?: Partial<ContextOptions>;
    bodyLimit?: number;
    /** Security and other app options (browser guard, write limits, TLS). */
    app?: Partial<Omit<AppOptions, 'log' | 'bodyLimit'>>;
    /** The app's logger (audit lines go there); none by default. */
    log?: Logger;
  } = {},
): Promise<GatewayApp> {
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const metrics = new Metrics();
  const follower = new Follower({ leader: NO_LEADER, events: NO_LEADER, log, metrics });
  const replica = follower.replica;
  if (opts.snapshot) {
    const { providers } = opts.snapshot;
    replica.applySnapshot({
      epoch: opts.snapshot.epoch ?? 'E1',
      rev: opts.snapshot.rev ?? Math.max(0, ...providers.map((p) => p.rev)),
      providers,
    });
  }
  const ctx = createContext(follower, metrics, {
    writeTimeoutMs: GATEWAY_DEFAULTS.writeTimeoutMs,
    readYourWritesMs: 0,
    log,
    ...opts.context,
  });
  const app = await buildApp(ctx, {
    ...opts.app,
    log: opts.log ?? false,
    bodyLimit: opts.bodyLimit ?? GATEWAY_DEFAULTS.bodyLimit,
  });
  await app.ready();
  let closed = false;
  return {
    app,
    ctx,
    replica,
    metrics,
    publish(change, provider) {
      const rev = replica.rev + 1;
      const event: RegistryEvent = {
        epoch: replica.epoch ?? 'E1',
        rev,
        prev: replica.serviceRev(provider.service),
        change,
        service: provider.service,
        provider: { ...provider, rev },
        at: Date.now(),
      };
      const result = replica.applyEvent(event);
      if (result !== 'next') throw new Error(`event ${rev} not applied: ${result}`);
      return event;
    },
    async listen() {
      const address = await app.listen({ host: '127.0.0.1', port: 0 });
      return address;
    },
    async close() {
      if (closed) return;
      closed = true;
      ctx.changes.close();
      // Push subscribers first: an open SSE stream would keep the HTTP server from closing.
      ctx.hub.close();
      const closing = app.close();
      const cut = setTimeout(() => app.server.closeAllConnections(), 1000);
      await closing;
      clearTimeout(cut);
      await follower.close();
    },
  };
}

/** The gateway role: follows the leader, serves REST on Fastify, forwards writes. */
import type { FastifyInstance } from 'fastify';
import { createLogger, Follower, makeHandle, Metrics, type Handle, type Logger } from '../bridge/index.ts';
import { buildApp } from './app.ts';
import { ChangeSignal } from './change-signal.ts';
import { gatewayConfig, type GatewayConfigInput } from './config.ts';
import type { GatewayContext } from './context.ts';
import { WriteForwarder } from './writes.ts';

export { gatewayConfig, GATEWAY_DEFAULTS } from './config.ts';
export type { GatewayConfig, GatewayConfigInput } from './config.ts';
export { buildApp } from './app.ts';
export type { GatewayContext } from './context.ts';

export const MAX_BLOCKING_QUERIES = 50_000;

export interface GatewayHandle extends Handle {
  /** http://host:port the REST API listens on. */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly follower: Follower;
  readonly metrics: Metrics;
}

/** Builds the context the routes need around a follower (shared by `start` and tests). */
export function createContext(follower: Follower, metrics: Metrics, opts: { writeTimeoutMs: number; readYourWritesMs: number }): GatewayContext {
  return {
    follower,
    metrics,
    writes: new WriteForwarder(follower, { timeoutMs: opts.writeTimeoutMs, readYourWritesMs: opts.readYourWritesMs }),
    changes: new ChangeSignal(follower.replica, MAX_BLOCKING_QUERIES),
  };
}

export async function start(config: GatewayConfigInput, deps: { log?: Logger; metrics?: Metrics } = {}): Promise<GatewayHandle> {
  const cfg = gatewayConfig(config);
  const log = (deps.log ?? createLogger()).child({ role: 'gateway' });
  const metrics = deps.metrics ?? new Metrics();
  const follower = new Follower({
    leader: cfg.leader,
    ...(cfg.leaderEvents ? { events: cfg.leaderEvents } : {}),
    log,
    metrics,
    name: 'gateway',
    staleAfterMs: cfg.staleAfterMs,
  });
  const ctx = createContext(follower, metrics, cfg);
  let app: FastifyInstance;
  try {
    app = await buildApp(ctx, { log, bodyLimit: cfg.bodyLimit });
    await app.listen({ host: cfg.httpHost, port: cfg.httpPort });
  } catch (err) {
    ctx.changes.close();
    await follower.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : cfg.httpPort;
  const host = cfg.httpHost.includes(':') ? `[${cfg.httpHost}]` : cfg.httpHost;
  const url = `http://${host}:${port}`;
  log.info({ url, leader: cfg.leader }, 'gateway listening');
  return makeHandle({ url, app, follower, metrics }, async () => {
    ctx.changes.close();
    await app.close();
    await follower.close();
    log.info('gateway stopped');
  });
}

/**
 * Per-client rate limit on writes (`@fastify/rate-limit`, in memory, one budget per client across every write
 * route). Reads are not limited here: they are served from the replica and cost little. A client is the key of
 * clients.ts (all loopback addresses are one client, IPv6 counts per /64), so picking another source address
 * does not buy another budget. Over the limit: 429 SB_RATE_LIMITED with `retry-after`.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { clientKey } from './clients.ts';
import { httpError } from './errors.ts';

/**
 * Writes per client per window (config.ts): high enough for bulk registration from one host (the benchmark
 * registers about 4,600/s from loopback) and for every test; low enough that one client cannot bury the leader.
 */
export { DEFAULT_WRITE_RATE_LIMIT, DEFAULT_WRITE_RATE_WINDOW_MS } from './config.ts';
/** Clients remembered at once (an LRU): bounds the limiter's memory. */
export const RATE_LIMIT_CLIENTS = 10_000;

const WRITES = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

function isWrite(method: string | string[]): boolean {
  return (Array.isArray(method) ? method : [method]).some((m) => WRITES.has(m));
}

export interface WriteLimitOptions {
  /** Writes per client per window; 0 switches the limit off. */
  max: number;
  windowMs: number;
}

/** Call before the routes are registered: the plugin attaches its hook to routes as they are added. */
export async function installWriteLimits(app: FastifyInstance, opts: WriteLimitOptions): Promise<void> {
  if (opts.max === 0) return;
  // Read routes get no limiter hook at all (not even a skipped one): lookups stay on their fast path.
  app.addHook('onRoute', (route) => {
    if (!isWrite(route.method)) route.config = { ...(route.config as object), rateLimit: false } as never;
  });
  await app.register(rateLimit, {
    global: true,
    max: opts.max,
    timeWindow: opts.windowMs,
    cache: RATE_LIMIT_CLIENTS,
    keyGenerator: (request) => clientKey(request.ip),
    // The draft headers (ratelimit-*) would be new to clients; retry-after on a 429 is what they act on.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    addHeaders: {
      'x-ratelimit-limit': false,
      'x-ratelimit-remaining': false,
      'x-ratelimit-reset': false,
      'retry-after': true,
    },
    errorResponseBuilder: (request, context) =>
      httpError(
        'SB_RATE_LIMITED',
        `more than ${context.max} writes in ${opts.windowMs} ms from ${clientKey(request.ip)}; retry after ${context.after}`,
      ),
  });
}

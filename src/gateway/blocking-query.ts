/**
 * The wait of a blocking query, shared by our lookups and the Consul-compatible reads: hold the request until
 * `service` (null: any service) changes past `index`, `wait` passes, or the client hangs up. Then the token is
 * checked again (ACLs on): the answer is filtered by what it reads at answer time, not when the query came in.
 */
import type { FastifyRequest } from 'fastify';
import { parseWait } from './change-signal.ts';
import { MAX_WAIT_MS, type GatewayContext } from './context.ts';
import { httpError } from './errors.ts';

export async function waitForChange(
  ctx: Pick<GatewayContext, 'changes' | 'acl'>,
  request: FastifyRequest,
  service: string | null,
  index: number,
  wait: string | undefined,
  defaultWaitMs: number,
): Promise<void> {
  const { changes } = ctx;
  if (changes.waiting >= changes.limit)
    throw httpError('SB_BUSY', 'too many blocking queries are waiting; retry later');
  const waitMs = parseWait(wait, defaultWaitMs, MAX_WAIT_MS);
  // Jitter (up to 1/16 of the wait) keeps many watchers from returning and re-asking in lockstep.
  const jittered = waitMs + Math.floor(Math.random() * (waitMs / 16));
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  request.raw.once('close', onClose);
  try {
    await changes.wait(service, index, jittered, abort.signal);
  } finally {
    request.raw.off('close', onClose);
  }
  ctx.acl.reauthorize(request);
}

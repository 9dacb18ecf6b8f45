/**
 * The `http` check: GET `url`; any 2xx is alive, or exactly `expectStatus` when the check sets it. Redirects are
 * not followed (a 3xx is what the target answered). The body is discarded unread so the connection is freed.
 */
import { checkTargets, type CheckPolicy, type HttpCheck, type Logger, type Metrics } from '../bridge/index.ts';
import { PolledRunner, type Limiter, type Probe } from './polled-runner.ts';
import type { ObservationSink } from './runner.ts';
import { vetTarget, type HostRateLimiter } from './target-guard.ts';

/**
 * With a policy, the URL's host is resolved and vetted before each request. fetch resolves again itself, so a name
 * re-pointed within those microseconds slips through; the gateway refused literal addresses already.
 */
export const httpProbe =
  (policy?: CheckPolicy): Probe =>
  async (task, timeoutMs, signal) => {
    if (policy) {
      for (const target of checkTargets(task)) {
        const why = await vetTarget(policy, target);
        if (why) return { ok: false, output: `refused: ${why}` };
      }
    }
    return probeHttp(task, timeoutMs, signal);
  };

export const probeHttp: Probe = async (task, timeoutMs, signal) => {
  const check = task.check as HttpCheck;
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(check.url, {
      method: 'GET',
      redirect: 'manual',
      headers: { 'user-agent': 'switchboard-health-check', accept: '*/*' },
      signal: AbortSignal.any([signal, timeout]),
    });
    await res.body?.cancel().catch(() => {});
    const ok =
      check.expectStatus !== undefined ? res.status === check.expectStatus : res.status >= 200 && res.status < 300;
    const expected = check.expectStatus !== undefined ? `expected ${check.expectStatus}` : 'expected 2xx';
    return { ok, output: ok ? `HTTP ${res.status}` : `HTTP ${res.status} from ${check.url} (${expected})` };
  } catch (err) {
    if (timeout.aborted) return { ok: false, output: `timeout: no answer from ${check.url} within ${timeoutMs} ms` };
    if (signal.aborted) return { ok: false, output: 'check cancelled' };
    // fetch hides the socket error in `cause` (ECONNREFUSED, ENOTFOUND, ...): that is what a user needs to see.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, output: `GET ${check.url} failed: ${cause?.code ?? cause?.message ?? (err as Error).message}` };
  }
};

export function httpCheckRunner(
  deps: { limiter: Limiter; log: Logger; metrics: Metrics; policy?: CheckPolicy; hostLimiter?: HostRateLimiter },
  emit: ObservationSink,
): PolledRunner {
  const { policy, ...rest } = deps;
  return new PolledRunner({ type: 'http', probe: httpProbe(policy), ...rest }, emit);
}

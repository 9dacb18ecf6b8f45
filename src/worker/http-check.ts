/**
 * The `http` check: GET `url`; any 2xx is alive, or exactly `expectStatus` when the check sets it. Redirects are
 * not followed (a 3xx is what the target answered). The body is discarded unread so the connection is freed.
 */
import type { HttpCheck, Logger, Metrics } from '../bridge/index.ts';
import { PolledRunner, type Limiter, type Probe } from './polled-runner.ts';
import type { ObservationSink } from './runner.ts';

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
  deps: { limiter: Limiter; log: Logger; metrics: Metrics },
  emit: ObservationSink,
): PolledRunner {
  return new PolledRunner({ type: 'http', probe: probeHttp, ...deps }, emit);
}

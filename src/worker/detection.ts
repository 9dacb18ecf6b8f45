/**
 * Detection latency, measured where the decision is made: from the last good observation of a provider (its last
 * heartbeat, successful probe or TTL pass) to the worker's decision that it is down, by check type and cause.
 * It is the time a dead provider could still have been handed out, up to the worker's report: what `misses`,
 * damping and heartbeat timeouts cost. (The leader's decision and the propagation to gateways come after it.)
 * A provider never seen alive is not observed: it was never up, so nothing was detected.
 */
import type { Metrics } from '../bridge/index.ts';

export const DETECTION_HISTOGRAM = 'switchboard_down_detection_seconds';

/** The causes a runner decides down on; anything else is `other`, so a label never carries free text. */
const CAUSES = new Set(['disconnect', 'unresponsive', 'missed', 'check', 'expired']);

export function declareDetection(metrics: Metrics): void {
  metrics.histogram(
    DETECTION_HISTOGRAM,
    "Time from a provider's last good observation to the worker's down decision, by check type and cause",
    ['type', 'cause'],
  );
}

export function observeDetection(
  metrics: Metrics,
  type: string,
  cause: string,
  lastOkAt: number,
  downAt: number,
): void {
  if (!lastOkAt) return;
  metrics.observe(
    DETECTION_HISTOGRAM,
    { type, cause: CAUSES.has(cause) ? cause : 'other' },
    (downAt - lastOkAt) / 1000,
  );
}

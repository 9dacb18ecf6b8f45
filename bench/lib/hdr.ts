/**
 * Latency recording for the benchmarks: a thin wrapper over hdr-histogram-js.
 *
 * Values are given in milliseconds (what `performance.now()` differences are) but stored as integer
 * microseconds, because an HDR histogram records integers and loopback latencies are often below 1 ms.
 */
import { build, type Histogram } from 'hdr-histogram-js';

/** Latency summary in milliseconds. All fields are 0 when nothing was recorded. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** A latency recorder returned by {@link recorder}. */
export interface Recorder {
  /** Record one latency in milliseconds (negative values count as 0; resolution 1 µs). */
  record(ms: number): void;
  /** Value at a percentile (0–100), in milliseconds. */
  percentile(p: number): number;
  /** count, p50, p90, p99, max and mean, in milliseconds. */
  summary(): LatencySummary;
  /** Forget everything recorded (e.g. after a warm-up). */
  reset(): void;
  /** The underlying histogram (values in microseconds), for merging or logging. */
  readonly histogram: Histogram;
}

/** Highest trackable value: one hour in microseconds; anything longer is clamped (benchmarks are bounded). */
const MAX_US = 3_600_000_000;

/**
 * A new latency recorder (3 significant digits, 1 µs to 1 h, plain JS — no WebAssembly to initialise).
 */
export function recorder(): Recorder {
  const h = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_US,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
    useWebAssembly: false,
  });
  const toMs = (us: number): number => us / 1000;
  return {
    histogram: h,
    record(ms: number): void {
      // Clamp into the trackable range; a value of 0 µs is legal for HDR and means "below resolution".
      const us = Math.min(MAX_US, Math.max(0, Math.round(ms * 1000)));
      h.recordValue(us);
    },
    percentile(p: number): number {
      return h.totalCount === 0 ? 0 : toMs(h.getValueAtPercentile(p));
    },
    summary(): LatencySummary {
      if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
      return {
        count: h.totalCount,
        p50: toMs(h.getValueAtPercentile(50)),
        p90: toMs(h.getValueAtPercentile(90)),
        p99: toMs(h.getValueAtPercentile(99)),
        max: toMs(h.maxValue),
        mean: toMs(h.mean),
      };
    },
    reset(): void {
      h.reset();
    },
  };
}

/**
 * Prometheus metrics of one role instance, on prom-client. Each `Metrics` owns its own `Registry` (several roles
 * share a process under `npm start`, and tests start many): prom-client's global default registry is never used.
 *
 * Families are declared where they are used (`counter`, `gauge`, `histogram`, ...); a family's label names are
 * fixed by its first declaration. Declaring the same family again is allowed (several sockets declare
 * `switchboard_frames_dropped_total`) and only adds the series it names, at 0.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';

export type Labels = Record<string, string>;
/** A value read at scrape time: one unlabelled number, or one number per label set. */
export type Collected = number | Array<[Labels | undefined, number]>;

/**
 * Histogram buckets in seconds for latencies of a millisecond to a few seconds: heartbeats, fsyncs, loopback
 * round trips and HTTP answers all live there (a crash is found in ~5 ms, a freeze in ~0.6-0.9 s).
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

let processMetrics: Metric[] | undefined;

/**
 * prom-client's default process metrics (CPU, memory, event-loop lag, GC, handles), created once per process:
 * each `collectDefaultMetrics` call starts its own event-loop monitor and GC observer that can never be
 * stopped, and the values are the same for every role of the process anyway. Each role registry shares them.
 * Left out: the gauges prom-client names `*_total` (`nodejs_active_handles_total`, ...), which Prometheus's lint
 * rejects (`_total` is for counters); the same counts remain by type in `nodejs_active_handles` and its kin.
 */
function defaultProcessMetrics(): Metric[] {
  if (!processMetrics) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    processMetrics = registry
      .getMetricsAsArray()
      .filter((m) => !(m.name.endsWith('_total') && !(registry.getSingleMetric(m.name) instanceof Counter)))
      .map((m) => registry.getSingleMetric(m.name))
      .filter((m): m is Metric => m !== undefined);
  }
  return processMetrics;
}

function labelNamesOf(labels: Labels | undefined): string[] {
  return labels ? Object.keys(labels) : [];
}

function toSeries(value: Collected): Array<[Labels | undefined, number]> {
  return typeof value === 'number' ? [[undefined, value]] : value;
}

export interface MetricsOptions {
  /** Register the process metrics (`process_*`, `nodejs_*`); true by default. */
  process?: boolean;
}

export class Metrics {
  /** The role's own prom-client registry. */
  readonly registry = new Registry();
  readonly #counters = new Map<string, Counter>();
  readonly #histograms = new Map<string, Histogram>();
  /** Where each collected family (gauge or collected counter) reads its value. */
  readonly #sources = new Map<string, { collect: () => Collected }>();

  constructor(opts: MetricsOptions = {}) {
    if (opts.process !== false) for (const metric of defaultProcessMetrics()) this.registry.registerMetric(metric);
  }

  /** Declares a counter (`*_total`) so the series `labels` names renders as 0 before its first increment. */
  counter(name: string, help: string, labels?: Labels): void {
    const counter = this.#counter(name, help, labels);
    if (labels) counter.inc(labels, 0);
  }

  /** Adds `by` to a counter; a family never declared is created with its name as help. */
  inc(name: string, labels?: Labels, by = 1): void {
    const counter = this.#counter(name, name, labels);
    if (labels) counter.inc(labels, by);
    else counter.inc(by);
  }

  /**
   * A counter whose running total lives elsewhere and is read at scrape time (it must never go down).
   * `labelNames` lists the labels `collect` may return. Declaring it again replaces the function.
   */
  collectedCounter(name: string, help: string, collect: () => Collected, labelNames: readonly string[] = []): void {
    if (this.#replaceSource(name, collect)) return;
    const source = this.#newSource(name, collect);
    this.registry.registerMetric(
      new Counter({
        name,
        help,
        labelNames,
        registers: [],
        collect() {
          this.reset();
          for (const [labels, v] of toSeries(source.collect())) {
            // A total is never negative; prom-client would throw and fail the whole scrape.
            if (!(v >= 0)) continue;
            if (labels) this.inc(labels, v);
            else this.inc(v);
          }
        },
      }),
    );
  }

  /**
   * A gauge read at scrape time. `labelNames` lists the labels `collect` may return. Declaring it again replaces
   * the function (the newest owner of the value answers).
   */
  gauge(name: string, help: string, collect: () => Collected, labelNames: readonly string[] = []): void {
    if (this.#replaceSource(name, collect)) return;
    const source = this.#newSource(name, collect);
    this.registry.registerMetric(
      new Gauge({
        name,
        help,
        labelNames,
        registers: [],
        collect() {
          this.reset();
          for (const [labels, v] of toSeries(source.collect())) {
            if (labels) this.set(labels, v);
            else this.set(v);
          }
        },
      }),
    );
  }

  /** Declares a histogram of seconds; `buckets` default to `LATENCY_BUCKETS`. */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = LATENCY_BUCKETS,
  ): void {
    if (this.#histograms.has(name)) return;
    this.#unique(name);
    const histogram = new Histogram({ name, help, labelNames, buckets: [...buckets], registers: [] });
    this.registry.registerMetric(histogram);
    this.#histograms.set(name, histogram);
  }

  /** Records one observation (in seconds) in a declared histogram. */
  observe(name: string, labels: Labels | undefined, seconds: number): void {
    const histogram = this.#histograms.get(name);
    if (!histogram) throw new Error(`histogram ${name} is not declared`);
    if (!Number.isFinite(seconds)) return;
    // Clocks of two machines, or of one across an NTP step, can make a span negative: it is "no time at all".
    const value = Math.max(0, seconds);
    if (labels) histogram.observe(labels, value);
    else histogram.observe(value);
  }

  /**
   * One series of a declared histogram as a function: observing through it skips the label lookup (a hash of the
   * label object) that `observe` does on every call. For hot paths with a bounded set of label values.
   */
  series(name: string, labels: Labels): (seconds: number) => void {
    const histogram = this.#histograms.get(name);
    if (!histogram) throw new Error(`histogram ${name} is not declared`);
    const child = histogram.labels(labels);
    return (seconds) => {
      if (Number.isFinite(seconds)) child.observe(Math.max(0, seconds));
    };
  }

  /**
   * The current value of one series (a histogram's observation count), for tests and diagnostics; 0 if absent.
   * Collected families are read, so this is async like rendering.
   */
  async get(name: string, labels?: Labels): Promise<number> {
    const metric = this.registry.getSingleMetric(name);
    if (!metric) return 0;
    const { values } = await metric.get();
    const wanted = Object.entries(labels ?? {});
    const sample = metric instanceof Histogram ? `${name}_count` : undefined;
    for (const v of values as Array<{ value: number; labels: Record<string, unknown>; metricName?: string }>) {
      if (v.metricName !== sample) continue;
      const own = Object.entries(v.labels);
      if (own.length === wanted.length && wanted.every(([k, want]) => String(v.labels[k]) === want)) return v.value;
    }
    return 0;
  }

  /** The text exposition format (version 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #counter(name: string, help: string, labels: Labels | undefined): Counter {
    let counter = this.#counters.get(name);
    if (!counter) {
      this.#unique(name);
      counter = new Counter({ name, help, labelNames: labelNamesOf(labels), registers: [] });
      this.registry.registerMetric(counter);
      this.#counters.set(name, counter);
    }
    return counter;
  }

  #replaceSource(name: string, collect: () => Collected): boolean {
    const existing = this.#sources.get(name);
    if (existing) existing.collect = collect;
    return existing !== undefined;
  }

  #newSource(name: string, collect: () => Collected): { collect: () => Collected } {
    this.#unique(name);
    const source = { collect };
    this.#sources.set(name, source);
    return source;
  }

  #unique(name: string): void {
    if (this.registry.getSingleMetric(name)) throw new Error(`metric ${name} is registered twice`);
  }
}

/**
 * The engine of polled checks (`http`, `tcp`): runs one probe per task every `intervalMs`, each first run at a
 * random offset inside the interval so a worker's checks are spread in time, never more than `maxConcurrent`
 * probes in flight (shared by every polled runner of the worker), a per-probe timeout through an AbortSignal so
 * a hanging target only ever holds its own slot, and flap damping before anything is reported.
 */
import type { Logger, Metrics, Observation, ObservationCause, Task } from '../bridge/index.ts';
import { Damper, DEFAULT_POLLED_FAILURES_BEFORE_DOWN, DEFAULT_POLLED_SUCCESSES_BEFORE_UP } from './damping.ts';
import { declareDetection, observeDetection } from './detection.ts';
import type { CheckRunner, ObservationSink } from './runner.ts';
import { targetHost, type HostRateLimiter } from './target-guard.ts';

export const DEFAULT_POLL_INTERVAL_MS = 2000;
/** A probe never runs longer than this, nor longer than its interval, unless the check sets `timeoutMs`. */
export const DEFAULT_POLL_TIMEOUT_MS = 1000;

/** One attempt: resolves with the outcome (never rejects for a failed target). */
export type Probe = (task: Task, timeoutMs: number, signal: AbortSignal) => Promise<{ ok: boolean; output: string }>;

/** Bounds probes in flight across runners. Waiters are at most one per task, so the queue is bounded too. */
export class Limiter {
  readonly max: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(max: number) {
    this.max = max;
  }

  get running(): number {
    return this.#running;
  }
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `job` when a slot is free. */
  run(job: () => Promise<void>): void {
    const go = (): void => {
      this.#running++;
      void job().finally(() => {
        this.#running--;
        this.#waiting.shift()?.();
      });
    };
    if (this.#running < this.max) go();
    else this.#waiting.push(go);
  }

  clear(): void {
    this.#waiting.length = 0;
  }
}

interface Entry {
  task: Task;
  intervalMs: number;
  timeoutMs: number;
  damper: Damper;
  timer: NodeJS.Timeout | undefined;
  /** queued or in flight: the next tick is skipped rather than stacking probes of one target. */
  busy: boolean;
  abort: AbortController | undefined;
  at: number;
  cause: ObservationCause;
  output: string | undefined;
  /** When a probe last succeeded (0: never), for the detection-latency histogram. */
  lastOkAt: number;
}

export interface PolledRunnerOptions {
  type: string;
  probe: Probe;
  limiter: Limiter;
  log: Logger;
  metrics: Metrics;
  /** Caps requests per target host (shared by every polled runner of the worker); a tick over the cap is skipped. */
  hostLimiter?: HostRateLimiter;
}

export class PolledRunner implements CheckRunner {
  readonly #type: string;
  readonly #probe: Probe;
  readonly #limiter: Limiter;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #hostLimiter: HostRateLimiter | undefined;
  readonly #emit: ObservationSink;
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Set<Promise<void>>();
  #closed = false;

  constructor(opts: PolledRunnerOptions, emit: ObservationSink) {
    this.#type = opts.type;
    this.#probe = opts.probe;
    this.#limiter = opts.limiter;
    this.#log = opts.log.child({ check: opts.type });
    this.#metrics = opts.metrics;
    this.#hostLimiter = opts.hostLimiter;
    this.#emit = emit;
    opts.metrics.counter(
      'switchboard_checks_throttled_total',
      'Check ticks skipped because their target host had its share of requests this second (--check-max-rps-per-host)',
      { type: opts.type },
    );
    opts.metrics.counter('switchboard_checks_total', 'Polled checks run, by type and result', {
      type: opts.type,
      result: 'ok',
    });
    opts.metrics.counter('switchboard_checks_total', 'Polled checks run, by type and result', {
      type: opts.type,
      result: 'failed',
    });
    opts.metrics.counter(
      'switchboard_checks_skipped_total',
      'Check ticks skipped because the previous probe had not finished',
      { type: opts.type },
    );
    declareDetection(opts.metrics);
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  add(task: Task): void {
    if (this.#closed) return;
    const check = task.check as {
      intervalMs?: number;
      timeoutMs?: number;
      failuresBeforeDown?: number;
      successesBeforeUp?: number;
    };
    const intervalMs = check.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    const timeoutMs = check.timeoutMs ?? Math.min(DEFAULT_POLL_TIMEOUT_MS, intervalMs);
    const failures = check.failuresBeforeDown ?? DEFAULT_POLLED_FAILURES_BEFORE_DOWN;
    const successes = check.successesBeforeUp ?? DEFAULT_POLLED_SUCCESSES_BEFORE_UP;
    const existing = this.#entries.get(task.id);
    if (existing) {
      // A new definition keeps the presence seen so far; only the schedule restarts if the interval changed.
      existing.task = task;
      existing.timeoutMs = timeoutMs;
      existing.damper.failuresBeforeDown = failures;
      existing.damper.successesBeforeUp = successes;
      if (existing.intervalMs !== intervalMs) {
        existing.intervalMs = intervalMs;
        clearTimeout(existing.timer);
        this.#schedule(existing, Math.random() * intervalMs);
      }
      return;
    }
    const entry: Entry = {
      task,
      intervalMs,
      timeoutMs,
      damper: new Damper(failures, successes),
      timer: undefined,
      busy: false,
      abort: undefined,
      at: Date.now(),
      cause: 'assigned',
      output: undefined,
      lastOkAt: 0,
    };
    this.#entries.set(task.id, entry);
    // A random first offset spreads many checks of one worker over the interval instead of firing them together.
    this.#schedule(entry, Math.random() * intervalMs);
  }

  remove(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    clearTimeout(entry.timer);
    entry.abort?.abort();
  }

  observations(): Observation[] {
    const list: Observation[] = [];
    for (const e of this.#entries.values()) {
      const o: Observation = { id: e.task.id, alive: e.damper.alive, cause: e.cause, at: e.at };
      if (e.damper.alive === false && e.output) o.output = e.output;
      list.push(o);
    }
    return list;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#entries.keys()]) this.remove(id);
    this.#limiter.clear();
    await Promise.all(this.#inFlight);
  }

  #schedule(entry: Entry, delayMs: number): void {
    entry.timer = setTimeout(() => this.#tick(entry), delayMs);
  }

  #tick(entry: Entry): void {
    if (this.#closed || this.#entries.get(entry.task.id) !== entry) return;
    // Fixed rate: the next tick is planned now, so a slow probe does not stretch the interval.
    this.#schedule(entry, entry.intervalMs);
    if (entry.busy) {
      this.#metrics.inc('switchboard_checks_skipped_total', { type: this.#type });
      return;
    }
    // Skipped, not failed: a provider is not marked down because others share its host.
    if (this.#hostLimiter && !this.#hostLimiter.take(targetHost(entry.task))) {
      this.#metrics.inc('switchboard_checks_throttled_total', { type: this.#type });
      return;
    }
    entry.busy = true;
    this.#limiter.run(() => {
      const run = this.#run(entry);
      this.#inFlight.add(run);
      return run.finally(() => this.#inFlight.delete(run));
    });
  }

  async #run(entry: Entry): Promise<void> {
    if (this.#closed || this.#entries.get(entry.task.id) !== entry) return;
    const abort = new AbortController();
    entry.abort = abort;
    let result: { ok: boolean; output: string };
    try {
      result = await this.#probe(entry.task, entry.timeoutMs, abort.signal);
    } catch (err) {
      result = { ok: false, output: `check failed: ${(err as Error).message}` };
    } finally {
      entry.busy = false;
      entry.abort = undefined;
    }
    if (this.#closed || this.#entries.get(entry.task.id) !== entry) return;
    this.#metrics.inc('switchboard_checks_total', { type: this.#type, result: result.ok ? 'ok' : 'failed' });
    if (!result.ok) entry.output = result.output;
    else entry.lastOkAt = Date.now();
    if (!entry.damper.record(result.ok)) return;
    const alive = entry.damper.alive === true;
    entry.at = Date.now();
    entry.cause = 'check';
    if (!alive) observeDetection(this.#metrics, this.#type, 'check', entry.lastOkAt, entry.at);
    this.#log.debug({ id: entry.task.id, alive, output: result.output }, 'check state changed');
    const o: Observation = {
      id: entry.task.id,
      alive,
      cause: 'check',
      at: entry.at,
      output: result.output.slice(0, 1024),
    };
    this.#emit(o);
  }
}

/**
 * Observations from workers, applied in slices: a hello can list 100,000 tasks, and deciding all of them in one
 * event-loop turn would leave pings, writes and snapshot requests waiting. A report that fits in one slice and
 * finds nothing queued is applied at once (the common case); longer ones are applied OBSERVATION_SLICE at a
 * time with a turn of the event loop between slices. Order is kept across reports, so a worker's later
 * transition is never overtaken by its own earlier hello. What waits is bounded; past the bound a report is
 * dropped and counted (the worker's next full report says it again).
 *
 * Transitions (a worker's "this provider just went down/up", small) do not wait behind queued full reports: with
 * 10,000 providers heartbeating, every worker's periodic full report fills the queue for a few turns, and a crash
 * must be decided in milliseconds. What a transition overtakes is not applied over it: a queued observation of the
 * same provider that is not newer is skipped when its slice comes. Only a worker's own queued hello is never
 * overtaken (it says which tasks the worker has).
 */
import type { Logger, Metrics, Observation } from '../bridge/index.ts';

/** Observations decided per event-loop turn. */
export const OBSERVATION_SLICE = 2000;
/** Observations waiting at most; a report that would go past it is dropped. */
export const MAX_QUEUED_OBSERVATIONS = 200_000;

interface Queued {
  workerId: string;
  observations: Observation[];
  next: number;
  hello: boolean;
  done?: () => void;
}

export class ObservationQueue {
  readonly #apply: (workerId: string, observations: Observation[]) => void;
  readonly #closed: () => boolean;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  #items: Queued[] = [];
  #queued = 0;
  #scheduled = false;
  /** Provider id → `at` of a transition applied ahead of the queue; queued observations not newer are stale. */
  readonly #overtaken = new Map<string, number>();

  constructor(opts: {
    apply: (workerId: string, observations: Observation[]) => void;
    /** True once the leader is closing: nothing more is applied. */
    closed: () => boolean;
    metrics: Metrics;
    log: Logger;
  }) {
    this.#apply = opts.apply;
    this.#closed = opts.closed;
    this.#metrics = opts.metrics;
    this.#log = opts.log;
    opts.metrics.gauge(
      'switchboard_observations_queued',
      'Worker observations waiting to be decided',
      () => this.#queued,
    );
    opts.metrics.counter(
      'switchboard_observations_dropped_total',
      'Worker observations dropped because too many were waiting',
    );
    opts.metrics.counter(
      'switchboard_observations_expedited_total',
      'Worker transitions decided ahead of queued reports',
    );
  }

  /** Observations waiting now. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Applies (now or in slices, in order) what `workerId` observed, then calls `done`. False if dropped (`done` is
   * then called at once: the caller goes on without them).
   */
  push(workerId: string, observations: Observation[], opts: { hello?: boolean; done?: () => void } = {}): boolean {
    const { done, hello = false } = opts;
    if (this.#items.length === 0 && observations.length <= OBSERVATION_SLICE) {
      this.#apply(workerId, observations);
      done?.();
      return true;
    }
    if (this.#queued + observations.length > MAX_QUEUED_OBSERVATIONS) {
      this.#metrics.inc('switchboard_observations_dropped_total', undefined, observations.length);
      this.#log.warn({ workerId, observations: observations.length, queued: this.#queued }, 'observations dropped');
      done?.();
      return false;
    }
    this.#items.push({ workerId, observations, next: 0, hello, done });
    this.#queued += observations.length;
    this.#schedule();
    return true;
  }

  /**
   * A worker's transitions: decided at once unless that worker's hello is still queued (then in order, as
   * {@link push}), or there are more than a slice of them.
   */
  pushTransitions(workerId: string, observations: Observation[]): boolean {
    if (
      this.#items.length === 0 ||
      observations.length > OBSERVATION_SLICE ||
      this.#items.some((item) => item.hello && item.workerId === workerId)
    )
      return this.push(workerId, observations);
    for (const o of observations) {
      const previous = this.#overtaken.get(o.id);
      if (previous === undefined || o.at > previous) this.#overtaken.set(o.id, o.at);
    }
    this.#metrics.inc('switchboard_observations_expedited_total', undefined, observations.length);
    this.#apply(workerId, observations);
    return true;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#slice());
  }

  #slice(): void {
    this.#scheduled = false;
    if (this.#closed()) {
      this.#items = [];
      this.#queued = 0;
      this.#overtaken.clear();
      return;
    }
    let budget = OBSERVATION_SLICE;
    while (budget > 0 && this.#items.length > 0) {
      const item = this.#items[0];
      let slice = item.observations.slice(item.next, item.next + budget);
      item.next += slice.length;
      budget -= slice.length;
      this.#queued -= slice.length;
      if (this.#overtaken.size > 0) slice = slice.filter((o) => !this.#isStale(o));
      const finished = item.next >= item.observations.length;
      if (finished) this.#items.shift();
      try {
        this.#apply(item.workerId, slice);
      } catch (err) {
        this.#log.error({ err, workerId: item.workerId }, 'applying observations failed');
      }
      if (finished) item.done?.();
    }
    if (this.#items.length > 0) this.#schedule();
    else this.#overtaken.clear();
  }

  #isStale(o: Observation): boolean {
    const at = this.#overtaken.get(o.id);
    return at !== undefined && o.at <= at;
  }
}

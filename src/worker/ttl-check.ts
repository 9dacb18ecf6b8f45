/**
 * The `ttl` check: the provider itself calls `PUT /v1/providers/:id/ttl`; the leader forwards each pass to the
 * worker that owns the task. Every `ttlMs` without a pass is one failure (down after `failuresBeforeDown`, 1 by
 * default); a pass is a success. The clock starts when the task is assigned, so a provider that never calls goes
 * down too.
 */
import type { Logger, Metrics, Observation, ObservationCause, Task, TtlCheck } from '../bridge/index.ts';
import { Damper, DEFAULT_TTL_FAILURES_BEFORE_DOWN, DEFAULT_TTL_SUCCESSES_BEFORE_UP } from './damping.ts';
import { declareDetection, observeDetection } from './detection.ts';
import type { CheckRunner, ObservationSink } from './runner.ts';

interface Entry {
  id: string;
  ttlMs: number;
  damper: Damper;
  timer: NodeJS.Timeout | undefined;
  lastPass: number;
  at: number;
  cause: ObservationCause;
  output: string | undefined;
}

export class TtlRunner implements CheckRunner {
  readonly #entries = new Map<string, Entry>();
  readonly #emit: ObservationSink;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  #closed = false;

  constructor(deps: { log: Logger; metrics: Metrics }, emit: ObservationSink) {
    this.#log = deps.log.child({ check: 'ttl' });
    this.#metrics = deps.metrics;
    this.#emit = emit;
    declareDetection(deps.metrics);
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  add(task: Task): void {
    if (this.#closed) return;
    const check = task.check as TtlCheck;
    const failures = check.failuresBeforeDown ?? DEFAULT_TTL_FAILURES_BEFORE_DOWN;
    const successes = check.successesBeforeUp ?? DEFAULT_TTL_SUCCESSES_BEFORE_UP;
    let entry = this.#entries.get(task.id);
    if (entry) {
      entry.damper.failuresBeforeDown = failures;
      entry.damper.successesBeforeUp = successes;
      if (entry.ttlMs === check.ttlMs) return;
      entry.ttlMs = check.ttlMs;
    } else {
      entry = {
        id: task.id,
        ttlMs: check.ttlMs,
        damper: new Damper(failures, successes),
        timer: undefined,
        lastPass: 0,
        at: Date.now(),
        cause: 'assigned',
        output: undefined,
      };
      this.#entries.set(task.id, entry);
    }
    this.#arm(entry);
  }

  remove(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.#entries.delete(id);
  }

  /** A TTL pass forwarded by the leader. The local clock is used: the leader's may differ from ours. */
  pass(id: string, _at: number): void {
    const entry = this.#entries.get(id);
    if (!entry || this.#closed) return;
    entry.lastPass = Date.now();
    this.#arm(entry);
    this.#record(entry, true, 'ttl pass');
  }

  observations(): Observation[] {
    const list: Observation[] = [];
    for (const e of this.#entries.values()) {
      const o: Observation = { id: e.id, alive: e.damper.alive, cause: e.cause, at: e.at };
      if (e.damper.alive === false && e.output) o.output = e.output;
      list.push(o);
    }
    return list;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const e of this.#entries.values()) clearTimeout(e.timer);
    this.#entries.clear();
  }

  /** (Re)starts the expiry clock; it re-arms itself so each silent `ttlMs` counts as one more failure. */
  #arm(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      if (this.#closed || this.#entries.get(entry.id) !== entry) return;
      this.#arm(entry);
      const last = entry.lastPass ? `last pass ${Date.now() - entry.lastPass} ms ago` : 'no pass since assigned';
      this.#record(entry, false, `ttl expired: no pass within ${entry.ttlMs} ms (${last})`);
    }, entry.ttlMs);
  }

  #record(entry: Entry, ok: boolean, output: string): void {
    if (!ok) entry.output = output;
    if (!entry.damper.record(ok)) return;
    entry.at = Date.now();
    entry.cause = ok ? 'pass' : 'expired';
    const alive = entry.damper.alive === true;
    if (!alive) observeDetection(this.#metrics, 'ttl', entry.cause, entry.lastPass, entry.at);
    this.#log.debug({ id: entry.id, alive }, 'ttl state changed');
    this.#emit({ id: entry.id, alive, cause: entry.cause, at: entry.at, output });
  }
}

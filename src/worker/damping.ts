/**
 * Flap damping: a provider is reported down only after `failuresBeforeDown` consecutive failures and, once down,
 * up again only after `successesBeforeUp` consecutive successes. A provider never seen yet (just registered or
 * just assigned) is up on its first success, so a fresh registration is not slowed down.
 */
export const DEFAULT_POLLED_FAILURES_BEFORE_DOWN = 2;
export const DEFAULT_POLLED_SUCCESSES_BEFORE_UP = 2;
export const DEFAULT_TTL_FAILURES_BEFORE_DOWN = 1;
export const DEFAULT_TTL_SUCCESSES_BEFORE_UP = 1;
/** zmq: `misses` already damps the way down; a provider that comes back must beat this many times. */
export const DEFAULT_ZMQ_SUCCESSES_BEFORE_UP = 2;

export class Damper {
  failuresBeforeDown: number;
  successesBeforeUp: number;
  /** What the worker reports: null until the first decision. */
  #alive: boolean | null = null;
  #successes = 0;
  #failures = 0;

  constructor(failuresBeforeDown: number, successesBeforeUp: number) {
    this.failuresBeforeDown = failuresBeforeDown;
    this.successesBeforeUp = successesBeforeUp;
  }

  get alive(): boolean | null {
    return this.#alive;
  }

  /** Records one check result; true when the reported state changed. */
  record(ok: boolean): boolean {
    if (ok) {
      this.#failures = 0;
      this.#successes++;
      if (this.#alive === true) return false;
      const needed = this.#alive === null ? 1 : this.successesBeforeUp;
      if (this.#successes < needed) return false;
      this.#alive = true;
      return true;
    }
    this.#successes = 0;
    this.#failures++;
    if (this.#alive === false || this.#failures < this.failuresBeforeDown) return false;
    this.#alive = false;
    return true;
  }

  /** Down at once, whatever the thresholds (a dropped connection is not a flap); true when it changed. */
  down(): boolean {
    this.#successes = 0;
    this.#failures = Math.max(this.#failures, this.failuresBeforeDown);
    if (this.#alive === false) return false;
    this.#alive = false;
    return true;
  }

  /** Forgets a success streak that was interrupted by silence (successes must be consecutive). */
  breakStreak(): void {
    this.#successes = 0;
  }
}

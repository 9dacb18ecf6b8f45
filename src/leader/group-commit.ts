/**
 * When to commit: the registry's group-commit scheduler. A commit costs an fsync whatever its size, so while more
 * requests are already waiting to be read (they would join this commit) it waits for them, bounded in size
 * (`maxBatch` staged changes) and in delay (`maxDelayMs` since the first change of the batch). With nothing
 * waiting it commits on the next turn of the event loop: no added latency.
 */

/** While more requests are already waiting, a commit waits for them, up to this many changes... */
export const MAX_COMMIT_BATCH = 2000;
/** ...and this long since the first change of the batch. */
export const MAX_COMMIT_DELAY_MS = 5;

export interface GroupCommitOptions {
  /** Changes staged and not yet committed. */
  staged: () => number;
  /** True while more input is already waiting to be read (then a commit is worth delaying for it). */
  moreWaiting: () => boolean;
  /** Writes what is staged. */
  commit: () => void;
  maxBatch?: number;
  maxDelayMs?: number;
  /** Milliseconds, monotonic; tests may pass their own clock. */
  now?: () => number;
}

export class GroupCommit {
  readonly #opts: Required<GroupCommitOptions>;
  #pending: NodeJS.Immediate | undefined;
  #firstStagedAt = 0;

  constructor(opts: GroupCommitOptions) {
    this.#opts = {
      maxBatch: MAX_COMMIT_BATCH,
      maxDelayMs: MAX_COMMIT_DELAY_MS,
      now: () => performance.now(),
      ...opts,
    };
  }

  /** True while a commit is scheduled. */
  get scheduled(): boolean {
    return this.#pending !== undefined;
  }

  /** A change was staged: schedule a commit unless one is already scheduled (the batch's clock starts now). */
  staged(): void {
    if (this.#pending) return;
    this.#firstStagedAt = this.#opts.now();
    this.#pending = setImmediate(() => this.#tick());
  }

  /** The owner committed by itself (an explicit flush, or on close): the scheduled commit is moot. */
  cancel(): void {
    clearImmediate(this.#pending);
    this.#pending = undefined;
  }

  #tick(): void {
    const { staged, moreWaiting, commit, maxBatch, maxDelayMs, now } = this.#opts;
    const n = staged();
    if (n > 0 && n < maxBatch && now() - this.#firstStagedAt < maxDelayMs && moreWaiting()) {
      this.#pending = setImmediate(() => this.#tick());
      return;
    }
    this.#pending = undefined;
    commit();
  }
}

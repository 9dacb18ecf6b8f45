/**
 * Is the leader there? Two signals, as the zmq health check has: a dropped connection (ZeroMQ `disconnect`: a killed
 * leader, seen in milliseconds) and silence (a hung leader keeps its TCP connections open until heartbeats time
 * out). Pure: the caller says what happened and when; no timers.
 */

/** The follower's two connections to the leader: its DEALER (pings, sync requests) and its SUB (events, beacons). */
export type LeaderConnection = 'control' | 'events';

export class LeaderPresence {
  readonly #staleAfterMs: number;
  #lastContact = 0;
  readonly #dropped = new Set<LeaderConnection>();

  constructor(opts: { staleAfterMs: number }) {
    this.#staleAfterMs = opts.staleAfterMs;
  }

  /** Epoch milliseconds of the last message from the leader (0: never). */
  get lastContact(): number {
    return this.#lastContact;
  }

  /** Anything arrived from the leader. */
  contact(now: number): void {
    this.#lastContact = now;
  }

  /**
   * A connection dropped. Only a new handshake on it clears this: a message read after the drop may have been queued
   * before it, so data alone proves nothing.
   */
  dropped(connection: LeaderConnection): void {
    this.#dropped.add(connection);
  }

  /** A connection completed its ZMTP handshake (a `connect` alone may reach a frozen peer's kernel). */
  connected(connection: LeaderConnection): void {
    this.#dropped.delete(connection);
  }

  isDropped(connection: LeaderConnection): boolean {
    return this.#dropped.has(connection);
  }

  /** The leader answers: heard from within `staleAfterMs`, and the control connection has not dropped since. */
  reachable(now: number): boolean {
    return !this.#dropped.has('control') && this.#lastContact > 0 && now - this.#lastContact <= this.#staleAfterMs;
  }

  /** Reachable, and its event feed connected: what the follower needs to be in step. */
  following(now: number): boolean {
    return this.reachable(now) && !this.#dropped.has('events');
  }
}

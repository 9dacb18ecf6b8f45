/**
 * The follower's sync state machine (Clone pattern, client side), with no sockets and no timers: what arrives from
 * the leader goes in (events, beacons, pongs, replies to our requests), and what to do comes out as actions
 * (apply an event, load a snapshot, ask for the events since N, ask for a snapshot). `Follower` wires sockets to it;
 * tests drive it directly.
 *
 * Repair paths:
 * - an event past the next revision (a gap) → ask for the events since our revision;
 * - the leader no longer has them (`complete: false`) → snapshot;
 * - an event, beacon or pong of another epoch, or a beacon behind our revision (the leader lost changes) → snapshot
 *   (a pong behind us is no proof: it travels on another socket than the events and may be overtaken by them);
 * - an event whose `prev` (the previous revision of its service) is above what we know of that service: a change
 *   below our own revision is missing, which only a snapshot repairs;
 * - a beacon ahead of us (beacons and events share one ordered socket, so events were dropped) → since;
 * - a pong ahead of us twice in a row (a pong may overtake events still in flight, so once is no proof) → since;
 * - events arriving during a sync are buffered (bounded) and applied in order afterwards, older ones skipped; when the
 *   buffer overflows it is dropped and a catch-up by `since` follows the sync.
 */
import { orderBeacon, orderEvent } from './revision.ts';
import type { RegistryEvent, Snapshot } from './schemas.ts';

export const DEFAULT_MAX_BUFFERED_EVENTS = 100_000;

export type SyncMode = 'since' | 'snapshot';

/** Why a sync was started: for logs, and for tests to tell the repair paths apart. */
export type SyncReason =
  | 'start'
  | 'gap'
  | 'prev-gap'
  | 'epoch'
  | 'rev-backwards'
  | 'beacon-ahead'
  | 'pong-ahead'
  | 'history-exhausted'
  | 'since-incomplete'
  | 'overflow'
  | 'retry';

export type SyncAction =
  | { type: 'apply'; event: RegistryEvent }
  | { type: 'load'; snapshot: Snapshot }
  /** `retry` (on both requests): the previous request failed; wait a little before sending this one. */
  | { type: 'request-since'; epoch: string; since: number; reason: SyncReason; retry: boolean }
  | { type: 'request-snapshot'; reason: SyncReason; retry: boolean };

/** The parts of the leader's answers the machine reads. */
export interface LeaderPosition {
  epoch: string;
  rev: number;
}
export interface SinceAnswer {
  complete: boolean;
  events: RegistryEvent[];
}

export interface FollowerSyncOptions {
  /** Events kept while a sync is in flight; beyond it they are dropped and fetched again by `since`. */
  maxBufferedEvents?: number;
}

function stronger(a: SyncMode | null, b: SyncMode): SyncMode {
  return a === 'snapshot' || b === 'snapshot' ? 'snapshot' : 'since';
}

export class FollowerSync {
  readonly #maxBuffered: number;
  #epoch: string | null = null;
  #rev = 0;
  /** Revision of the last snapshot: everything of every service up to it is known. */
  #base = 0;
  /** Revision of the last applied event of each service since the snapshot (for `prev` checks). */
  #serviceRev = new Map<string, number>();
  /** The request under way (or waiting to be retried). */
  #inFlight: SyncMode | null = null;
  /** A sync to run once the one under way is done. */
  #wanted: { mode: SyncMode; reason: SyncReason } | null = null;
  #buffer: RegistryEvent[] = [];
  /** The revision a pong put us behind of; acted on only if still behind at the next pong. */
  #behindRev = 0;
  #overflows = 0;

  constructor(opts: FollowerSyncOptions = {}) {
    this.#maxBuffered = Math.max(1, opts.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS);
  }

  get loaded(): boolean {
    return this.#epoch !== null;
  }
  get epoch(): string | null {
    return this.#epoch;
  }
  get rev(): number {
    return this.#rev;
  }
  /** A since or snapshot request is under way: the replica may be behind. */
  get syncing(): SyncMode | null {
    return this.#inFlight;
  }
  get buffered(): number {
    return this.#buffer.length;
  }
  /** Times the buffer overflowed during a sync and was dropped. */
  get overflows(): number {
    return this.#overflows;
  }

  /** An event from the leader's feed. */
  onEvent(event: RegistryEvent): SyncAction[] {
    const out: SyncAction[] = [];
    if (!this.loaded || this.#inFlight) this.#bufferEvent(event);
    else this.#take(event, out);
    return out;
  }

  /** A position beacon from the leader's feed (same socket as the events, so in order with them). */
  onBeacon(beacon: LeaderPosition): SyncAction[] {
    const out: SyncAction[] = [];
    if (!this.loaded || this.#inFlight) return out;
    const ordering = orderBeacon({ epoch: this.#epoch, rev: this.#rev }, beacon);
    if (ordering === 'behind') this.#start('since', 'beacon-ahead', out);
    else if (ordering === 'reset') this.#start('snapshot', this.#resetReason(beacon), out);
    return out;
  }

  /** The leader's answer to a ping (another socket than the events: it may overtake events in flight). */
  onPong(pong: LeaderPosition): SyncAction[] {
    const out: SyncAction[] = [];
    if (!this.loaded) {
      if (!this.#inFlight) this.#start('snapshot', 'start', out);
      return out;
    }
    if (pong.epoch !== this.#epoch) {
      if (this.#inFlight !== 'snapshot') this.#start('snapshot', 'epoch', out);
      this.#behindRev = 0;
      return out;
    }
    // Behind our revision proves nothing: events sent after the pong may have overtaken it on the other socket.
    // A revision that really went backwards shows on a beacon, which travels in order with the events.
    const behind = pong.rev > this.#rev;
    if (behind && !this.#inFlight && this.#behindRev && this.#rev < this.#behindRev)
      this.#start('since', 'pong-ahead', out);
    this.#behindRev = behind && !this.#inFlight ? pong.rev : 0;
    return out;
  }

  /** The leader's answer to our `request-since`. */
  onSinceReply(reply: SinceAnswer): SyncAction[] {
    const out: SyncAction[] = [];
    if (this.#inFlight !== 'since') return out;
    this.#inFlight = null;
    if (!reply.complete) {
      this.#want('snapshot', 'history-exhausted');
    } else {
      for (const event of reply.events) {
        const ordering = orderEvent({ epoch: this.#epoch, rev: this.#rev }, event);
        if (ordering === 'duplicate') continue;
        if (ordering !== 'next' || this.#prevGap(event)) {
          this.#want('snapshot', 'since-incomplete');
          break;
        }
        this.#apply(event, out);
      }
    }
    this.#afterSync(out);
    return out;
  }

  /** The leader's answer to our `request-snapshot`. */
  onSnapshot(snapshot: Snapshot): SyncAction[] {
    const out: SyncAction[] = [];
    if (this.#inFlight !== 'snapshot') return out;
    this.#inFlight = null;
    this.#epoch = snapshot.epoch;
    this.#rev = snapshot.rev;
    this.#base = snapshot.rev;
    this.#serviceRev = new Map();
    this.#behindRev = 0;
    out.push({ type: 'load', snapshot });
    // Buffered events of another epoch belong to a store the snapshot replaced (or to one a later beacon reveals).
    this.#buffer = this.#buffer.filter((e) => e.epoch === snapshot.epoch);
    this.#afterSync(out);
    return out;
  }

  /** The request under way failed (timeout, leader gone): retry, as a snapshot if anything asked for one. */
  onRequestFailed(): SyncAction[] {
    const out: SyncAction[] = [];
    if (!this.#inFlight) return out;
    const mode = stronger(this.#wanted?.mode ?? null, this.#inFlight);
    this.#wanted = null;
    this.#inFlight = null;
    this.#start(mode, 'retry', out, true);
    return out;
  }

  #resetReason(p: LeaderPosition): SyncReason {
    return p.epoch === this.#epoch ? 'rev-backwards' : 'epoch';
  }

  /** Is a change of this event's service missing below our revision? */
  #prevGap(event: RegistryEvent): boolean {
    const known = Math.max(this.#base, this.#serviceRev.get(event.service) ?? 0);
    return (event.prev ?? 0) > known;
  }

  #take(event: RegistryEvent, out: SyncAction[]): void {
    const ordering = orderEvent({ epoch: this.#epoch, rev: this.#rev }, event);
    switch (ordering) {
      case 'duplicate':
        return;
      case 'next':
        if (this.#prevGap(event)) {
          this.#bufferEvent(event);
          this.#start('snapshot', 'prev-gap', out);
        } else this.#apply(event, out);
        return;
      case 'gap':
        this.#bufferEvent(event);
        this.#start('since', 'gap', out);
        return;
      case 'reset':
        this.#bufferEvent(event);
        this.#start('snapshot', 'epoch', out);
        return;
    }
  }

  #apply(event: RegistryEvent, out: SyncAction[]): void {
    this.#rev = event.rev;
    this.#serviceRev.set(event.service, event.rev);
    out.push({ type: 'apply', event });
  }

  #bufferEvent(event: RegistryEvent): void {
    if (this.#buffer.length >= this.#maxBuffered) {
      // Too much arrived during a sync: keep memory bounded, and fetch what was dropped once the sync is done.
      this.#buffer = [];
      this.#overflows++;
      this.#want('since', 'overflow');
    }
    this.#buffer.push(event);
  }

  #want(mode: SyncMode, reason: SyncReason): void {
    if (this.#wanted?.mode === 'snapshot') return;
    this.#wanted = { mode: stronger(this.#wanted?.mode ?? null, mode), reason };
  }

  #start(mode: SyncMode, reason: SyncReason, out: SyncAction[], retry = false): void {
    if (this.#inFlight) {
      this.#want(mode, reason);
      return;
    }
    this.#behindRev = 0;
    if (mode === 'since' && this.#epoch !== null) {
      this.#inFlight = 'since';
      out.push({ type: 'request-since', epoch: this.#epoch, since: this.#rev, reason, retry });
    } else {
      this.#inFlight = 'snapshot';
      out.push({ type: 'request-snapshot', reason, retry });
    }
  }

  /** A sync is done: run the one asked for meanwhile, or apply what was buffered. */
  #afterSync(out: SyncAction[]): void {
    const wanted = this.#wanted;
    this.#wanted = null;
    if (wanted) {
      this.#start(wanted.mode, wanted.reason, out);
      return;
    }
    const buffered = this.#buffer;
    this.#buffer = [];
    buffered.sort((a, b) => a.rev - b.rev);
    for (const event of buffered) {
      if (this.#inFlight) this.#bufferEvent(event);
      else this.#take(event, out);
    }
  }
}

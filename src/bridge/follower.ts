/**
 * Follows the leader: keeps a `Replica` equal to the leader's registry (Clone pattern). Subscribe to events first,
 * take a snapshot, apply the buffered events newer than it, then apply events in order. Any gap is repaired by
 * asking the leader for the missed events (or a snapshot if it no longer has them); a new epoch or a revision
 * that goes backwards throws the copy away. A periodic ping tells whether the leader is there at all.
 */
import { Subscriber } from 'zeromq';
import { LeaderError, LinkError } from './errors.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { LeaderLink } from './link.ts';
import type { ToFollower } from './messages.ts';
import {
  beacon as beaconValidator,
  registryEvent,
  toFollower,
  TOPIC_BEACON,
  TOPIC_EVENT,
  type MassDownGuardStatus,
  type Reply,
} from './messages.ts';
import { Replica } from './replica.ts';
import { orderBeacon } from './revision.ts';
import type { RegistryEvent } from './schemas.ts';
import { baseSocketOptions, FrameDecoder, receiveLoop, resolveAdvertised, SNAPSHOT_MAX_MESSAGE_SIZE } from './zmq.ts';

export const DEFAULT_PING_INTERVAL_MS = 500;
export const DEFAULT_STALE_AFTER_MS = 2000;
export const DEFAULT_SNAPSHOT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_BUFFERED_EVENTS = 100_000;

export interface FollowerOptions {
  /** The leader's control endpoint. */
  leader: string;
  /** The leader's event endpoint; learnt from the leader when absent. */
  events?: string;
  log: Logger;
  metrics: Metrics;
  name?: string;
  pingIntervalMs?: number;
  staleAfterMs?: number;
  snapshotTimeoutMs?: number;
  maxBufferedEvents?: number;
  requestTimeoutMs?: number;
}

export class Follower {
  readonly replica = new Replica();
  readonly link: LeaderLink<typeof ToFollower>;
  readonly #opts: Required<
    Pick<FollowerOptions, 'pingIntervalMs' | 'staleAfterMs' | 'snapshotTimeoutMs' | 'maxBufferedEvents'>
  >;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #sub: Subscriber;
  readonly #decoder: FrameDecoder;
  readonly #subLoop: Promise<void>;
  readonly #fixedEvents: string | undefined;
  readonly #leader: string;
  #eventsEndpoint: string | null = null;
  #pingTimer: NodeJS.Timeout | undefined;
  #lastContact = 0;
  #leaderSession: string | null = null;
  /** Events that arrived while a snapshot or catch-up was in flight. */
  #buffer: RegistryEvent[] = [];
  #syncing: Promise<void> | null = null;
  #syncWanted: 'since' | 'snapshot' | null = null;
  #behindRev = 0;
  /** The leader's mass-down guard as of the last pong (null until a leader that reports it answers). */
  #guard: MassDownGuardStatus | null = null;
  #closed = false;

  constructor(opts: FollowerOptions) {
    const name = opts.name ?? 'follower';
    this.#log = opts.log.child({ component: name });
    this.#metrics = opts.metrics;
    this.#leader = opts.leader;
    this.#fixedEvents = opts.events;
    this.#opts = {
      pingIntervalMs: opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      staleAfterMs: opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
      snapshotTimeoutMs: opts.snapshotTimeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS,
      maxBufferedEvents: opts.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS,
    };
    this.link = new LeaderLink({
      endpoint: opts.leader,
      validator: toFollower,
      name: `${name}-dealer`,
      log: opts.log,
      metrics: opts.metrics,
      maxMessageSize: SNAPSHOT_MAX_MESSAGE_SIZE,
      requestTimeoutMs: opts.requestTimeoutMs,
    });
    this.#sub = new Subscriber(
      baseSocketOptions({
        maxMessageSize: SNAPSHOT_MAX_MESSAGE_SIZE,
        receiveHighWaterMark: 100_000,
        heartbeatInterval: 500,
        heartbeatTimeout: 1500,
        reconnectInterval: 100,
        reconnectMaxInterval: 1000,
      }),
    );
    this.#sub.subscribe(TOPIC_EVENT, TOPIC_BEACON);
    this.#decoder = new FrameDecoder(`${name}-sub`, opts.metrics, this.#log);
    this.#subLoop = receiveLoop(this.#sub, (frames) => this.#onPublished(frames), this.#log);
    for (const c of ['switchboard_replica_resyncs_total', 'switchboard_replica_catchups_total']) {
      opts.metrics.counter(
        c,
        c === 'switchboard_replica_resyncs_total' ? 'Full snapshots taken' : 'Gaps repaired by events',
      );
    }
    opts.metrics.gauge('switchboard_replica_rev', 'Revision of the local replica', () => this.replica.rev);
    opts.metrics.gauge(
      'switchboard_leader_mass_down_guard_active',
      '1 while the leader holds down transitions (mass-down guard)',
      () => (this.#guard?.active ? 1 : 0),
    );
    opts.metrics.gauge(
      'switchboard_leader_mass_down_held',
      'Down transitions the leader holds (mass-down guard)',
      () => this.#guard?.held ?? 0,
    );
    opts.metrics.gauge('switchboard_replica_stale', '1 while the replica may be behind the leader', () =>
      this.stale ? 1 : 0,
    );
    if (this.#fixedEvents) this.#connectEvents(this.#fixedEvents);
    this.#ping();
  }

  /** The leader answered recently. */
  get leaderReachable(): boolean {
    return this.#lastContact > 0 && Date.now() - this.#lastContact <= this.#opts.staleAfterMs;
  }

  /** Reads may be behind the leader: never synced, leader unreachable, or a resync under way. */
  get stale(): boolean {
    return !this.replica.loaded || !this.leaderReachable || this.#syncing !== null;
  }

  status(): {
    loaded: boolean;
    stale: boolean;
    leaderReachable: boolean;
    epoch: string | null;
    rev: number;
    lastContactMs: number | null;
    massDownGuard: MassDownGuardStatus | null;
  } {
    return {
      massDownGuard: this.#guard,
      loaded: this.replica.loaded,
      stale: this.stale,
      leaderReachable: this.leaderReachable,
      epoch: this.replica.epoch,
      rev: this.replica.rev,
      lastContactMs: this.#lastContact ? Date.now() - this.#lastContact : null,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#pingTimer);
    this.replica.releaseWaiters();
    this.#sub.close();
    await this.link.close();
    await this.#subLoop;
    await this.#syncing?.catch(() => {});
  }

  #connectEvents(endpoint: string): void {
    if (this.#eventsEndpoint === endpoint) return;
    if (this.#eventsEndpoint) this.#sub.disconnect(this.#eventsEndpoint);
    this.#eventsEndpoint = endpoint;
    this.#sub.connect(endpoint);
    this.#log.info({ endpoint }, 'following leader events');
  }

  #ping(): void {
    if (this.#closed) return;
    const started = Date.now();
    this.link
      .request({ type: 'ping' }, Math.max(this.#opts.pingIntervalMs * 2, 1000))
      .then((reply) => {
        if (reply.type !== 'pong') return;
        this.#lastContact = Date.now();
        this.#guard = reply.guard ?? null;
        if (this.#leaderSession !== reply.session) {
          if (this.#leaderSession) this.#log.info({ session: reply.session }, 'leader restarted');
          this.#leaderSession = reply.session;
        }
        if (!this.#fixedEvents) this.#connectEvents(resolveAdvertised(reply.events, this.#leader));
        if (!this.replica.loaded) return this.#requestSync('snapshot');
        const ordering = orderBeacon({ epoch: this.replica.epoch, rev: this.replica.rev }, reply);
        if (ordering === 'reset') return this.#requestSync('snapshot');
        // A pong may overtake events still in flight on the SUB: act only when still behind one ping later.
        if (ordering === 'behind' && this.#behindRev && this.replica.rev < this.#behindRev) this.#requestSync('since');
        this.#behindRev = ordering === 'behind' ? reply.rev : 0;
      })
      .catch((err: unknown) => {
        if (this.#closed) return;
        if (err instanceof LinkError && err.code === 'LINK_TIMEOUT') this.#log.debug('leader did not answer ping');
        else this.#log.warn({ err }, 'ping failed');
      })
      .finally(() => {
        if (this.#closed) return;
        const delay = Math.max(0, this.#opts.pingIntervalMs - (Date.now() - started));
        this.#pingTimer = setTimeout(() => this.#ping(), delay);
      });
  }

  #onPublished(frames: Buffer[]): void {
    const topic = frames[0]?.toString();
    if (topic === TOPIC_BEACON) {
      const b = this.#decoder.decode(beaconValidator, frames[1]);
      if (!b) return;
      this.#lastContact = Date.now();
      if (!this.replica.loaded || this.#syncing) return;
      const ordering = orderBeacon({ epoch: this.replica.epoch, rev: this.replica.rev }, b);
      // Events and beacons share one ordered socket: a beacon ahead of us means events were dropped.
      if (ordering !== 'in-sync') this.#requestSync(ordering === 'reset' ? 'snapshot' : 'since');
      return;
    }
    if (topic !== TOPIC_EVENT) {
      this.#decoder.drop('unknown-topic');
      return;
    }
    const event = this.#decoder.decode(registryEvent, frames[1]);
    if (!event) return;
    this.#lastContact = Date.now();
    if (this.#syncing || !this.replica.loaded) {
      this.#bufferEvent(event);
      return;
    }
    this.#apply(event);
  }

  #bufferEvent(event: RegistryEvent): void {
    if (this.#buffer.length >= this.#opts.maxBufferedEvents) {
      // Too much arrived during a sync: drop the buffer; the next beacon shows the gap and triggers a catch-up.
      this.#buffer = [];
      this.#syncWanted = 'snapshot';
    }
    this.#buffer.push(event);
  }

  #apply(event: RegistryEvent): void {
    const result = this.replica.applyEvent(event);
    if (result === 'gap') {
      this.#bufferEvent(event);
      this.#requestSync('since');
    } else if (result === 'reset') {
      this.#bufferEvent(event);
      this.#requestSync('snapshot');
    }
  }

  #requestSync(mode: 'since' | 'snapshot'): void {
    if (this.#closed) return;
    if (this.#syncing) {
      if (mode === 'snapshot' || !this.#syncWanted) this.#syncWanted = mode;
      return;
    }
    this.#syncing = this.#sync(mode).finally(() => {
      this.#syncing = null;
      const again = this.#syncWanted;
      this.#syncWanted = null;
      if (again && !this.#closed) this.#requestSync(again);
      else this.#drainBuffer();
    });
  }

  async #sync(mode: 'since' | 'snapshot'): Promise<void> {
    try {
      if (mode === 'since' && this.replica.loaded) {
        const reply = await this.link.request({ type: 'since', epoch: this.replica.epoch!, since: this.replica.rev });
        if (reply.type === 'since.reply' && reply.complete) {
          this.#metrics.inc('switchboard_replica_catchups_total');
          for (const event of reply.events) this.replica.applyEvent(event);
          return;
        }
      }
      const reply = await this.link.request({ type: 'snapshot' }, this.#opts.snapshotTimeoutMs);
      this.#takeSnapshot(reply);
    } catch (err) {
      if (this.#closed) return;
      this.#log.warn(
        { err: err instanceof LeaderError || err instanceof LinkError ? err.message : err },
        'sync failed; retrying',
      );
      await new Promise((r) => setTimeout(r, Math.min(this.#opts.pingIntervalMs, 500)));
      if (!this.#closed) this.#syncWanted = 'snapshot';
    }
  }

  #takeSnapshot(reply: Reply): void {
    if (reply.type !== 'snapshot.reply') throw new Error(`unexpected reply ${reply.type} to snapshot`);
    this.#metrics.inc('switchboard_replica_resyncs_total');
    this.replica.applySnapshot({ epoch: reply.epoch, rev: reply.rev, providers: reply.providers });
    this.#log.info({ epoch: reply.epoch, rev: reply.rev, providers: reply.providers.length }, 'snapshot applied');
  }

  #drainBuffer(): void {
    const buffered = this.#buffer;
    this.#buffer = [];
    buffered.sort((a, b) => a.rev - b.rev);
    for (const event of buffered) {
      if (this.#syncing) this.#bufferEvent(event);
      else if (event.epoch === this.replica.epoch && event.rev <= this.replica.rev) continue;
      else this.#apply(event);
    }
  }
}

/**
 * Follows the leader: keeps a `Replica` equal to the leader's registry (Clone pattern). The decisions (what to
 * apply, when to ask for missed events or a snapshot) are `FollowerSync`'s; this class wires it to the sockets: a
 * SUB on the leader's events and beacons, a DEALER for pings and sync requests, and the timers around them.
 *
 * The leader is reachable while it answered recently and the connection has not dropped: a killed leader is seen
 * at once by ZeroMQ's `disconnect` event, a hung one (SIGSTOP) by the silence that follows.
 *
 * With several leader candidates (HA) the DEALER connects to all of them and only the active one answers; its pong
 * says which it is (`control`) and where it publishes (`events`). A new leader session (a restart or a failover)
 * moves the SUB to the new leader's events and the sync machine catches up by `since` or a snapshot.
 *
 * It also holds the tokens and policies (`acl`): pongs and beacons carry the leader's ACL version, and whenever it
 * differs from the one held (or a new leader session answers) the whole ACL state is fetched with `acl.get`, one
 * fetch at a time. ACL changes are rare and small next to provider changes, so there is no ACL event stream.
 */
import { Subscriber } from 'zeromq';
import { AclIndex, EMPTY_ACL_STATE } from './acl.ts';
import { LeaderError, LinkError } from './errors.ts';
import { leaderEndpoints, matchLeaderEndpoint, type LeaderEndpoints } from './leader-endpoints.ts';
import { DEFAULT_MAX_BUFFERED_EVENTS, FollowerSync, type SyncAction } from './follower-sync.ts';
import { LeaderPresence } from './leader-presence.ts';
import { LeaderLink } from './link.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { ToFollower } from './messages.ts';
import {
  beacon as beaconValidator,
  registryEvent,
  registryEvents,
  toFollower,
  TOPIC_BEACON,
  TOPIC_EVENT,
  TOPIC_EVENTS,
  type Reply,
} from './messages.ts';
import { Replica } from './replica.ts';
import { CHUNK_REFUSALS, DEFAULT_SNAPSHOT_CHUNK, SnapshotAssembly, SnapshotChunkError } from './snapshot-chunks.ts';
import { curveClientOptions, type CurveClientKeys } from './curve.ts';
import { baseSocketOptions, FrameDecoder, receiveLoop, resolveAdvertised, SNAPSHOT_MAX_MESSAGE_SIZE } from './zmq.ts';

export const DEFAULT_PING_INTERVAL_MS = 500;
export const DEFAULT_STALE_AFTER_MS = 2000;
export const DEFAULT_SNAPSHOT_TIMEOUT_MS = 30_000;
/** Pause before a failed sync request is sent again. */
export const SYNC_RETRY_DELAY_MS = 500;
/** How long an `acl.get` may take (100,000 tokens are a few tens of MiB). */
export const DEFAULT_ACL_TIMEOUT_MS = 10_000;

export interface FollowerOptions {
  /** The leader's control endpoint, or every leader candidate's (a list or comma-separated). */
  leader: LeaderEndpoints;
  /** The leader's event endpoint; learnt from the leader when absent. */
  events?: string;
  log: Logger;
  metrics: Metrics;
  name?: string;
  pingIntervalMs?: number;
  /** Silence after which the leader counts as unreachable (a hung leader; a dead one is seen at once). */
  staleAfterMs?: number;
  snapshotTimeoutMs?: number;
  maxBufferedEvents?: number;
  requestTimeoutMs?: number;
  /** CURVE client keys for the leader's ROUTER and PUB (and for every other link to the leader built from this). */
  curve?: CurveClientKeys;
  /** Timeout of one ACL fetch (`acl.get`). */
  aclTimeoutMs?: number;
  /** Providers per snapshot chunk asked of the leader. */
  snapshotChunk?: number;
}

/** The leader's answer to a ping, as the follower saw it. */
export type LeaderPong = Extract<Reply, { type: 'pong' }>;

export interface FollowerStatus {
  loaded: boolean;
  stale: boolean;
  leaderReachable: boolean;
  epoch: string | null;
  rev: number;
  lastContactMs: number | null;
}

interface AclWaiter {
  minVersion: number | undefined;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class Follower {
  readonly replica = new Replica();
  /** The CURVE keys this follower talks to the leader with (undefined: plain ZeroMQ). */
  readonly curve: CurveClientKeys | undefined;
  readonly #sync: FollowerSync;
  readonly #link: LeaderLink<typeof ToFollower>;
  readonly #opts: Required<
    Pick<FollowerOptions, 'pingIntervalMs' | 'staleAfterMs' | 'snapshotTimeoutMs' | 'aclTimeoutMs'>
  >;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #sub: Subscriber;
  readonly #decoder: FrameDecoder;
  readonly #subLoop: Promise<void>;
  readonly #subWatch: Promise<void>;
  readonly #fixedEvents: string | undefined;
  readonly #leaders: readonly string[];
  /** The listed endpoint of the leader that answered last (the first listed until one answers). */
  #active: string;
  readonly #pongListeners = new Set<(pong: LeaderPong) => void>();
  /** Requests (and retry pauses) under way, awaited on close. */
  readonly #requests = new Set<Promise<void>>();
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  #eventsEndpoint: string | null = null;
  #pingTimer: NodeJS.Timeout | undefined;
  readonly #presence: LeaderPresence;
  #leaderSession: string | null = null;
  #acl = new AclIndex(EMPTY_ACL_STATE);
  /** The leader session the ACL state was fetched from (null: none fetched yet). */
  #aclSession: string | null = null;
  readonly #aclListeners = new Set<(acl: AclIndex) => void>();
  /** The one `acl.get` in flight. */
  #aclFetch: Promise<void> | undefined;
  /** The leader session and ACL version last announced by a pong or beacon. */
  #aclLatest: { session: string; version: number } | undefined;
  /** `refreshAcl()` callers waiting for a fetch that starts after their call (or for their version). */
  #aclNext: AclWaiter[] = [];
  #aclTaken: AclWaiter[] = [];
  #closed = false;
  readonly #snapshotChunk: number;

  constructor(opts: FollowerOptions) {
    this.#snapshotChunk = opts.snapshotChunk ?? DEFAULT_SNAPSHOT_CHUNK;
    const name = opts.name ?? 'follower';
    this.#log = opts.log.child({ component: name });
    this.#metrics = opts.metrics;
    this.#leaders = Object.freeze(leaderEndpoints(opts.leader));
    this.#active = this.#leaders[0];
    this.#fixedEvents = opts.events;
    this.curve = opts.curve;
    this.#opts = {
      pingIntervalMs: opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      staleAfterMs: opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
      snapshotTimeoutMs: opts.snapshotTimeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS,
      aclTimeoutMs: opts.aclTimeoutMs ?? DEFAULT_ACL_TIMEOUT_MS,
    };
    this.#presence = new LeaderPresence({ staleAfterMs: this.#opts.staleAfterMs });
    this.#sync = new FollowerSync({ maxBufferedEvents: opts.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS });
    this.#link = new LeaderLink({
      endpoints: this.#leaders,
      validator: toFollower,
      name: `${name}-dealer`,
      log: opts.log,
      metrics: opts.metrics,
      maxMessageSize: SNAPSHOT_MAX_MESSAGE_SIZE,
      requestTimeoutMs: opts.requestTimeoutMs,
      curve: opts.curve,
    });
    this.#link.onConnection((up) => {
      if (up) return this.#presence.connected('control');
      this.#presence.dropped('control');
      this.#log.warn({ socket: 'dealer' }, 'connection to the leader dropped; replica marked stale');
    });
    this.#sub = new Subscriber(
      baseSocketOptions({
        maxMessageSize: SNAPSHOT_MAX_MESSAGE_SIZE,
        receiveHighWaterMark: 100_000,
        heartbeatInterval: 500,
        heartbeatTimeout: 1500,
        reconnectInterval: 100,
        reconnectMaxInterval: 1000,
        ...curveClientOptions(opts.curve),
      }),
    );
    this.#sub.subscribe(TOPIC_EVENT, TOPIC_BEACON);
    this.#decoder = new FrameDecoder(`${name}-sub`, opts.metrics, this.#log);
    // Watch the SUB's connection before it connects, or a fast handshake is missed.
    this.#subWatch = this.#watchFeed();
    this.#subLoop = receiveLoop(this.#sub, (frames) => this.#onPublished(frames), this.#log);
    opts.metrics.counter('switchboard_replica_resyncs_total', 'Full snapshots taken');
    opts.metrics.counter('switchboard_replica_catchups_total', 'Gaps repaired by events');
    for (const reason of CHUNK_REFUSALS)
      opts.metrics.counter(
        'switchboard_replica_snapshots_refused_total',
        'Snapshots in chunks dropped unapplied (a chunk out of order, of another revision, or a short count), by reason',
        { reason },
      );
    opts.metrics.gauge('switchboard_replica_rev', 'Revision of the local replica', () => this.replica.rev);
    opts.metrics.gauge('switchboard_replica_stale', '1 while the replica may be behind the leader', () =>
      this.stale ? 1 : 0,
    );
    opts.metrics.gauge(
      'switchboard_acl_version',
      'ACL version (tokens and policies) this process holds',
      () => this.acl.version,
    );
    opts.metrics.counter('switchboard_acl_fetches_total', 'ACL states fetched from the leader');
    if (this.#fixedEvents) this.#connectEvents(this.#fixedEvents);
    this.#ping();
  }

  /** The leader answered recently and the connection to it has not dropped since. */
  get leaderReachable(): boolean {
    return this.#presence.reachable(Date.now());
  }

  /** Reads may be behind the leader: never synced, leader unreachable, its feed cut, or a resync under way. */
  get stale(): boolean {
    return !this.replica.loaded || !this.#presence.following(Date.now()) || this.#sync.syncing !== null;
  }

  /** Every leader control endpoint this follower connects to. */
  get leaders(): readonly string[] {
    return this.#leaders;
  }

  /** The control endpoint of the leader that answered last (the first listed until one has). */
  get activeLeader(): string {
    return this.#active;
  }

  /** The session of the leader that answered last (null until one has). */
  get leaderSession(): string | null {
    return this.#leaderSession;
  }

  status(): FollowerStatus {
    return {
      loaded: this.replica.loaded,
      stale: this.stale,
      leaderReachable: this.leaderReachable,
      epoch: this.replica.epoch,
      rev: this.replica.rev,
      lastContactMs: this.#presence.lastContact ? Date.now() - this.#presence.lastContact : null,
    };
  }

  /** Tokens and policies as last fetched from the leader (version 0, empty, until then). */
  get acl(): AclIndex {
    return this.#acl;
  }

  /** True once an ACL state has been fetched from a leader (until then `acl` is empty: every token unknown). */
  get aclLoaded(): boolean {
    return this.#aclSession !== null;
  }

  /** Called with the new index each time a fetched ACL state replaces the one held. */
  onAcl(listener: (acl: AclIndex) => void): () => void {
    this.#aclListeners.add(listener);
    return () => this.#aclListeners.delete(listener);
  }

  /**
   * Fetches the ACL state now (read-your-writes: a gateway awaits this after its own `acl.write` was acknowledged,
   * so the change is visible here before it answers). Resolves once a fetch that started after this call has been
   * applied, or at once when `minVersion` (the `aclVersion` of the ack) is already held. Rejects when the fetch
   * fails (timeout, leader gone) or the follower closes.
   */
  refreshAcl(minVersion?: number): Promise<void> {
    if (this.#closed) return Promise.reject(new LinkError('LINK_CLOSED', 'the follower is closed'));
    if (minVersion !== undefined && this.aclLoaded && this.#acl.version >= minVersion) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#aclNext.push({ minVersion, resolve, reject });
      this.#fetchAcl();
    });
  }

  /** Every pong the leader sends (its session, position and mass-down guard), for whoever reports on the leader. */
  onPong(listener: (pong: LeaderPong) => void): () => void {
    this.#pongListeners.add(listener);
    return () => this.#pongListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#pingTimer);
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
    this.replica.releaseWaiters();
    this.#sub.close();
    await this.#link.close();
    await this.#subLoop;
    await this.#subWatch;
    await Promise.all(this.#requests);
    await this.#aclFetch;
    const closed = new LinkError('LINK_CLOSED', 'the follower is closed');
    for (const w of [...this.#aclTaken.splice(0), ...this.#aclNext.splice(0)]) w.reject(closed);
  }

  /** The leader said which ACL version it holds (pong or beacon): fetch when it is not the one held here. */
  #aclAnnounced(session: string, version: number | undefined): void {
    // A leader that sends no version keeps no ACL state (an older build): nothing to fetch.
    if (version === undefined) return;
    this.#aclLatest = { session, version };
    if (this.#aclBehind()) this.#fetchAcl();
  }

  /** The last announced ACL version (or session) is not the one held. */
  #aclBehind(): boolean {
    const latest = this.#aclLatest;
    return latest !== undefined && (latest.session !== this.#aclSession || latest.version !== this.#acl.version);
  }

  /** Starts an `acl.get` unless one is in flight (the end of that one looks again). */
  #fetchAcl(): void {
    if (this.#closed || this.#aclFetch) return;
    this.#aclTaken = this.#aclNext.splice(0);
    let ok = false;
    const fetch = this.#link
      .request({ type: 'acl.get' }, this.#opts.aclTimeoutMs)
      .then((reply) => {
        if (this.#closed) return;
        if (reply.type !== 'acl.reply') throw new Error(`unexpected reply ${reply.type} to acl.get`);
        ok = true;
        this.#metrics.inc('switchboard_acl_fetches_total');
        // The pong that names a new session may come after the new leader's reply: the next announce fixes it.
        const session = this.#leaderSession ?? '';
        const changed = session !== this.#aclSession || reply.state.version !== this.#acl.version;
        this.#aclSession = session;
        if (changed) {
          this.#acl = new AclIndex(reply.state);
          this.#log.info({ aclVersion: reply.state.version, tokens: reply.state.tokens.length }, 'ACL state applied');
          for (const listener of this.#aclListeners) listener(this.#acl);
        }
        for (const w of this.#aclTaken.splice(0)) w.resolve();
        this.#aclNext = this.#aclNext.filter((w) => {
          const done = w.minVersion !== undefined && this.#acl.version >= w.minVersion;
          if (done) w.resolve();
          return !done;
        });
      })
      .catch((err: unknown) => {
        if (this.#closed) return;
        this.#log.warn({ err: err instanceof Error ? err.message : err }, 'ACL fetch failed');
        const error = err instanceof Error ? err : new Error(String(err));
        for (const w of this.#aclTaken.splice(0)) w.reject(error);
      })
      .finally(() => {
        this.#aclFetch = undefined;
        // After a failure only a new announce (the next pong or beacon) or a new refresh tries again: no spinning.
        if (!this.#closed && (this.#aclNext.length > 0 || (ok && this.#aclBehind()))) this.#fetchAcl();
      });
    this.#aclFetch = fetch;
  }

  #connectEvents(endpoint: string): void {
    if (this.#eventsEndpoint === endpoint) return;
    if (this.#eventsEndpoint) this.#sub.disconnect(this.#eventsEndpoint);
    this.#eventsEndpoint = endpoint;
    this.#sub.connect(endpoint);
    this.#log.info({ endpoint }, 'following leader events');
  }

  async #watchFeed(): Promise<void> {
    try {
      for await (const event of this.#sub.events) {
        if (event.type === 'end') break;
        if (event.type === 'disconnect' && event.address === this.#eventsEndpoint && !this.#closed) {
          if (!this.#presence.isDropped('events'))
            this.#log.warn({ socket: 'sub' }, 'leader event feed dropped; replica marked stale');
          this.#presence.dropped('events');
        } else if (event.type === 'handshake') this.#presence.connected('events');
      }
    } catch (err) {
      if (!this.#closed) this.#log.error({ err }, 'socket event loop ended');
    }
  }

  #ping(): void {
    if (this.#closed) return;
    const started = Date.now();
    this.#link
      .request({ type: 'ping' }, Math.max(this.#opts.pingIntervalMs * 2, 1000))
      .then((reply) => {
        if (reply.type !== 'pong' || this.#closed) return;
        this.#presence.contact(Date.now());
        if (this.#leaderSession !== reply.session) {
          this.#active = this.#answering(reply.control);
          if (this.#leaderSession)
            this.#log.info({ session: reply.session, leader: this.#active }, 'new leader session');
          this.#leaderSession = reply.session;
        }
        // A wildcard host in the advertised events endpoint is the host this follower reached the leader on.
        if (!this.#fixedEvents) this.#connectEvents(resolveAdvertised(reply.events, this.#active));
        for (const listener of this.#pongListeners) listener(reply);
        this.#run(this.#sync.onPong(reply));
        this.#aclAnnounced(reply.session, reply.aclVersion);
      })
      .catch((err: unknown) => {
        if (this.#closed) return;
        if (err instanceof LinkError && (err.code === 'LINK_TIMEOUT' || err.code === 'LINK_LOST'))
          this.#log.debug({ code: err.code }, 'leader did not answer ping');
        else this.#log.warn({ err }, 'ping failed');
      })
      .finally(() => {
        if (this.#closed) return;
        const delay = Math.max(0, this.#opts.pingIntervalMs - (Date.now() - started));
        this.#pingTimer = setTimeout(() => this.#ping(), delay);
      });
  }

  /** The listed endpoint of the leader that answered: its own word, else the only live pipe, else the first. */
  #answering(control: string | undefined): string {
    const named = matchLeaderEndpoint(this.#leaders, control);
    if (named) return named;
    const live = this.#link.connectedEndpoints.filter((e) => this.#leaders.includes(e));
    return live.length === 1 ? live[0] : this.#leaders[0];
  }

  #onPublished(frames: Buffer[]): void {
    const topic = frames[0]?.toString();
    if (topic === TOPIC_BEACON) {
      const b = this.#decoder.decode(beaconValidator, frames[1]);
      if (!b) return;
      this.#presence.contact(Date.now());
      this.#run(this.#sync.onBeacon(b));
      this.#aclAnnounced(b.session, b.aclVersion);
      return;
    }
    if (topic === TOPIC_EVENTS) {
      const events = this.#decoder.decode(registryEvents, frames[1]);
      if (!events) return;
      this.#presence.contact(Date.now());
      for (const event of events) this.#run(this.#sync.onEvent(event));
      return;
    }
    if (topic !== TOPIC_EVENT) {
      this.#decoder.drop('unknown-topic');
      return;
    }
    const event = this.#decoder.decode(registryEvent, frames[1]);
    if (!event) return;
    this.#presence.contact(Date.now());
    this.#run(this.#sync.onEvent(event));
  }

  /** Carries out what the state machine decided. */
  #run(actions: SyncAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'apply': {
          const result = this.replica.applyEvent(action.event);
          // The machine tracks the same position as the replica; a mismatch would be a bug in one of them.
          if (result !== 'next') this.#log.error({ rev: action.event.rev, result }, 'replica refused an event');
          break;
        }
        case 'load': {
          const s = action.snapshot;
          this.#metrics.inc('switchboard_replica_resyncs_total');
          this.replica.applySnapshot(s);
          this.#log.info({ epoch: s.epoch, rev: s.rev, providers: s.providers.length }, 'snapshot applied');
          break;
        }
        case 'request-since':
        case 'request-snapshot':
          if (this.#closed) break;
          if (action.reason !== 'start') this.#log.info({ reason: action.reason, request: action.type }, 'resync');
          if (action.retry) this.#later(() => this.#request(action));
          else this.#request(action);
          break;
      }
    }
  }

  #later(fn: () => void): void {
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer);
      if (!this.#closed) fn();
    }, SYNC_RETRY_DELAY_MS);
    this.#retryTimers.add(timer);
  }

  #request(action: Extract<SyncAction, { type: 'request-since' | 'request-snapshot' }>): void {
    // A snapshot comes in chunks, each decoded and compacted as it arrives; the replica takes only a whole one.
    const assembly = new SnapshotAssembly();
    const asked =
      action.type === 'request-since'
        ? this.#link.request({ type: 'since', epoch: action.epoch, since: action.since })
        : this.#link.requestParts(
            { type: 'snapshot', chunk: this.#snapshotChunk },
            (chunk) => assembly.add(chunk),
            this.#opts.snapshotTimeoutMs,
          );
    const done = asked
      .then((reply) => {
        if (this.#closed) return;
        if (reply.type === 'since.reply') {
          if (reply.complete) this.#metrics.inc('switchboard_replica_catchups_total');
          this.#run(this.#sync.onSinceReply(reply));
        } else if (reply.type === 'snapshot.chunk') {
          this.#run(this.#sync.onSnapshot(assembly.snapshot()));
        } else if (reply.type === 'snapshot.reply') {
          // A leader that sends the registry in one frame (an older build).
          this.#run(this.#sync.onSnapshot({ epoch: reply.epoch, rev: reply.rev, providers: reply.providers }));
        } else throw new Error(`unexpected reply ${reply.type} to ${action.type}`);
      })
      .catch((err: unknown) => {
        if (this.#closed) return;
        if (err instanceof SnapshotChunkError) {
          this.#metrics.inc('switchboard_replica_snapshots_refused_total', { reason: err.reason });
          this.#log.warn({ reason: err.reason, received: assembly.received }, `snapshot refused: ${err.message}`);
        }
        this.#log.warn(
          { err: err instanceof LeaderError || err instanceof LinkError ? err.message : err },
          'sync failed; retrying',
        );
        this.#run(this.#sync.onRequestFailed());
      })
      .finally(() => this.#requests.delete(done));
    this.#requests.add(done);
  }
}

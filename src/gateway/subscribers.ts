/**
 * Fans the replica's changes out to every push subscriber (WebSocket and SSE) and remembers recent events for
 * resumes. Delivery is synchronous with the replica: a subscriber sees a snapshot at rev R and then exactly the
 * events after R, in order, because nothing can happen between reading the replica and registering the
 * subscriber. Events are handed out once per event-loop turn, all the turn's events in one write per subscriber
 * (events pending are handed out before any subscriber starts, so the rule above holds). Slowness is each
 * transport's business: a send never waits, a subscriber that falls behind is dropped by its transport, so no
 * subscriber can hold back another.
 */
import type { Logger, Metrics, Provider, RegistryEvent, Replica } from '../bridge/index.ts';
import type { StreamAccess, StreamRevocation } from './acl.ts';
import { recordAudit, STREAM_REVOKED } from './audit.ts';
import { EventHistory } from './history.ts';

export type Transport = 'ws' | 'sse';

export interface Position {
  /** Optional: a resume without an epoch trusts the revision alone. */
  epoch?: string;
  rev: number;
}

export interface SnapshotBody {
  epoch: string;
  rev: number;
  providers: Provider[];
}

/**
 * A message encoded at most once per wire format, however many subscribers receive it. The bytes are a Buffer so
 * every socket queues the same memory (a string would be copied into each socket's own buffer).
 */
export class Outgoing<T> {
  readonly #cache = new Map<string, Buffer>();
  constructor(readonly value: T) {}
  encoded(format: string, encode: (value: T) => string | Buffer): Buffer {
    let bytes = this.#cache.get(format);
    if (bytes === undefined) {
      const encodedValue = encode(this.value);
      bytes = typeof encodedValue === 'string' ? Buffer.from(encodedValue) : encodedValue;
      this.#cache.set(format, bytes);
    }
    return bytes;
  }
}

/**
 * The events one subscriber gets in one write: each event's encoding back to back. Subscribers that get the same
 * events share the bytes (the hub hands them the same instance), and an event's own encoding is shared by every
 * selection it is part of.
 */
export class OutgoingEvents {
  readonly #cache = new Map<string, Buffer>();
  constructor(readonly events: readonly Outgoing<RegistryEvent>[]) {}
  encoded(format: string, encode: (value: RegistryEvent) => string | Buffer): Buffer {
    if (this.events.length === 1) return this.events[0].encoded(format, encode);
    let bytes = this.#cache.get(format);
    if (bytes === undefined) {
      bytes = Buffer.concat(this.events.map((e) => e.encoded(format, encode)));
      this.#cache.set(format, bytes);
    }
    return bytes;
  }
}

/** Events held for the end of the current run at most (see `#onEvent`); past it they are handed out at once. */
export const MAX_PENDING_EVENTS = 1024;

/** Distinct service filters whose snapshot is kept for the current revision. */
export const MAX_SHARED_SNAPSHOTS = 64;

/**
 * One snapshot per (service filter, revision): built and encoded once, however many subscribers start or resync
 * at that revision, so N clients asking for a large registry cost one copy of it, not N.
 */
export class SnapshotCache {
  readonly #replica: Replica;
  readonly #entries = new Map<string, Outgoing<SnapshotBody>>();
  #position = '';

  constructor(replica: Replica) {
    this.#replica = replica;
  }

  get(services: ReadonlySet<string> | null): Outgoing<SnapshotBody> {
    const position = `${this.#replica.epoch}/${this.#replica.rev}`;
    if (position !== this.#position) {
      this.#entries.clear();
      this.#position = position;
    }
    const key = services === null ? '*' : [...services].sort().join(',');
    let message = this.#entries.get(key);
    if (!message) {
      if (this.#entries.size >= MAX_SHARED_SNAPSHOTS) this.#entries.clear();
      message = new Outgoing(snapshotOf(this.#replica, services));
      this.#entries.set(key, message);
    }
    return message;
  }
}

/** One connected subscriber as the hub sees it; each transport implements it. */
export interface Watcher {
  readonly transport: Transport;
  readonly address: string;
  /** null: every service. */
  readonly services: ReadonlySet<string> | null;
  /** With ACLs on: what its token may read now (the stream is filtered by it); null: every service. */
  readonly access: StreamAccess | null;
  snapshot(message: Outgoing<SnapshotBody>): void;
  /** One or more events in revision order, written in one go. */
  events(message: OutgoingEvents): void;
  /** A resume was served from history; the events after `rev` follow. */
  resumed(position: { epoch: string; rev: number }): void;
  /** A live-only start (SSE without `since`): where the stream begins. */
  hello(position: { epoch: string; rev: number }): void;
  /** The gateway is closing. */
  shutdown(): void;
  /** Its token was revoked, or no longer reads what it watches: a last word saying so, then the end. */
  revoke(why: StreamRevocation): void;
}

/** The route each transport serves, for the audit line of a revoked stream. */
const ROUTES: Record<Transport, string> = { ws: '/v1/watch', sse: '/v1/events' };

/** How a new subscriber starts: from a position, with a full snapshot, or live from now. */
export type StartFrom = { resume: Position } | 'snapshot' | 'live';

export interface HubOptions {
  historySize: number;
  maxWatchers: number;
  maxWatchersPerAddress: number;
  metrics: Metrics;
  log: Logger;
  /** Subscribes to changes of the tokens and policies (the follower's `onAcl`); each re-checks every stream. */
  aclChanges?: (listener: () => void) => () => void;
}

/** The providers of `services` (all when null), as of the replica's current revision. */
export function snapshotOf(replica: Replica, services: ReadonlySet<string> | Iterable<string> | null): SnapshotBody {
  const providers: Provider[] = [];
  if (services === null) providers.push(...replica.providers());
  else for (const name of services) providers.push(...replica.service(name));
  return { epoch: replica.epoch ?? '', rev: replica.rev, providers };
}

export class EventHub {
  readonly history: EventHistory;
  readonly #replica: Replica;
  readonly #snapshots: SnapshotCache;
  readonly #opts: HubOptions;
  readonly #watchers = new Set<Watcher>();
  readonly #perAddress = new Map<string, number>();
  readonly #unsubscribe: Array<() => void>;
  /** Events of this run not yet handed out (see {@link MAX_PENDING_EVENTS}). */
  #pending: Outgoing<RegistryEvent>[] = [];
  #flushQueued = false;
  #closed = false;
  readonly #audit: Logger;

  constructor(replica: Replica, opts: HubOptions) {
    this.#replica = replica;
    this.#opts = opts;
    this.#audit = opts.log.child({ component: 'audit' });
    this.history = new EventHistory(opts.historySize);
    this.#snapshots = new SnapshotCache(replica);
    if (replica.loaded) this.history.reset(replica.epoch!, replica.rev);
    this.#unsubscribe = [replica.onEvent((e) => this.#onEvent(e)), replica.onReset((p) => this.#onReset(p))];
    if (opts.aclChanges) this.#unsubscribe.push(opts.aclChanges(() => this.#reauthorize()));
    const m = opts.metrics;
    m.gauge(
      'switchboard_watchers',
      'Connected push subscribers',
      () => {
        const counts: Record<Transport, number> = { ws: 0, sse: 0 };
        for (const w of this.#watchers) counts[w.transport]++;
        return [
          [{ transport: 'ws' }, counts.ws],
          [{ transport: 'sse' }, counts.sse],
        ];
      },
      ['transport'],
    );
    m.gauge('switchboard_history_events', 'Events held for resumes', () => this.history.length);
    for (const transport of ['ws', 'sse']) {
      for (const reason of ['slow', 'revoked'])
        m.counter(
          'switchboard_watchers_dropped_total',
          'Subscribers closed by the gateway: slow (fell too far behind), revoked (token deleted or narrowed)',
          { transport, reason },
        );
    }
    m.counter('switchboard_watchers_refused_total', 'Subscriber connections refused', { reason: 'per-address' });
  }

  get size(): number {
    return this.#watchers.size;
  }

  /** Null when `address` may open another subscription, else why not (checked before a WebSocket upgrade). */
  refusal(address: string): string | null {
    if (this.#closed) return 'the gateway is shutting down';
    if (this.#watchers.size >= this.#opts.maxWatchers) {
      this.#opts.metrics.inc('switchboard_watchers_refused_total', { reason: 'total' });
      return `too many subscribers on this gateway (limit ${this.#opts.maxWatchers}); retry later or use another gateway`;
    }
    if ((this.#perAddress.get(address) ?? 0) >= this.#opts.maxWatchersPerAddress) {
      this.#opts.metrics.inc('switchboard_watchers_refused_total', { reason: 'per-address' });
      return `too many subscriptions from ${address} (limit ${this.#opts.maxWatchersPerAddress}); share one connection with service filters`;
    }
    return null;
  }

  /** Registers `watcher` and sends what it starts with. False (nothing sent) when refused. */
  add(watcher: Watcher, from: StartFrom): boolean {
    if (this.refusal(watcher.address) !== null) return false;
    // Pending events are already in the replica (and so in this watcher's snapshot): hand them out first.
    this.#flush();
    this.#watchers.add(watcher);
    this.#perAddress.set(watcher.address, (this.#perAddress.get(watcher.address) ?? 0) + 1);
    this.#start(watcher, from);
    return true;
  }

  /** A subscriber asked to continue from `position` (WebSocket `resume` message). */
  resume(watcher: Watcher, position: Position): void {
    if (!this.#watchers.has(watcher)) return;
    this.#flush();
    this.#start(watcher, { resume: position });
  }

  remove(watcher: Watcher): void {
    if (!this.#watchers.delete(watcher)) return;
    const n = (this.#perAddress.get(watcher.address) ?? 1) - 1;
    if (n <= 0) this.#perAddress.delete(watcher.address);
    else this.#perAddress.set(watcher.address, n);
  }

  /** Counts a subscriber its transport dropped for slowness. */
  droppedSlow(watcher: Watcher): void {
    this.#opts.metrics.inc('switchboard_watchers_dropped_total', { transport: watcher.transport, reason: 'slow' });
    this.remove(watcher);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    for (const u of this.#unsubscribe) u();
    for (const w of [...this.#watchers]) {
      this.remove(w);
      try {
        w.shutdown();
      } catch (err) {
        this.#opts.log.debug({ err }, 'subscriber shutdown failed');
      }
    }
  }

  #start(watcher: Watcher, from: StartFrom): void {
    // Before the first snapshot there is nothing to send; the reset that loads the replica reaches every watcher.
    if (!this.#replica.loaded) return;
    const position = { epoch: this.#replica.epoch!, rev: this.#replica.rev };
    if (typeof from === 'object') {
      const events = this.history.since(from.resume.epoch, from.resume.rev);
      if (events) {
        watcher.resumed({ epoch: position.epoch, rev: from.resume.rev });
        const wanted = events.filter((e) => matches(watcher, e.service)).map((e) => new Outgoing(e));
        if (wanted.length) watcher.events(new OutgoingEvents(wanted));
        return;
      }
    }
    if (from === 'live') watcher.hello(position);
    else watcher.snapshot(this.#snapshotFor(watcher));
  }

  /** The snapshot a subscriber may see: its filter, narrowed to the services its token reads. */
  #snapshotFor(watcher: Watcher): Outgoing<SnapshotBody> {
    const { services, access } = watcher;
    if (access === null) return this.#snapshots.get(services);
    const names = services === null ? this.#replica.serviceNames() : [...services];
    return this.#snapshots.get(new Set(names.filter((name) => access.reads(name))));
  }

  #onEvent(event: RegistryEvent): void {
    this.history.push(event);
    if (this.#watchers.size === 0) return;
    this.#pending.push(new Outgoing(event));
    if (this.#pending.length >= MAX_PENDING_EVENTS) this.#flush();
    else if (!this.#flushQueued) {
      // A microtask, not setImmediate: the events of one leader message (one commit's) are applied in one
      // synchronous loop and still leave together, without waiting for the rest of the event-loop turn (every
      // HTTP request of the poll phase) before subscribers see them.
      this.#flushQueued = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** Hands the pending events out: one write per subscriber, the same bytes for subscribers that want the same. */
  #flush(): void {
    this.#flushQueued = false;
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    const all = new OutgoingEvents(pending);
    // Selections other than "all of them", keyed by which events they hold (only when filters split a batch).
    let partial: Map<string, OutgoingEvents> | undefined;
    for (const w of this.#watchers) {
      if (w.services === null && w.access === null) {
        w.events(all);
        continue;
      }
      // The service filter and the token's reads (ACLs) both narrow what this subscriber is sent.
      const picked = pending.filter((m) => matches(w, m.value.service));
      if (picked.length === pending.length) w.events(all);
      else if (picked.length > 0) {
        const key = picked.map((m) => m.value.rev).join(',');
        partial ??= new Map();
        let message = partial.get(key);
        if (!message) {
          message = new OutgoingEvents(picked);
          partial.set(key, message);
        }
        w.events(message);
      }
    }
  }

  /**
   * After an ACL change: every stream opened with a token asks it again, once per ACL version (its per-event filter
   * re-resolves lazily, at the same cost). A token deleted, or reading none of what its stream watches, ends the
   * stream with the reason, in the audit log. Events of this turn not yet handed out go to the remaining streams,
   * filtered by the new state.
   */
  #reauthorize(): void {
    for (const w of [...this.#watchers]) {
      const why = w.access?.revocation(w.services);
      if (!why) continue;
      this.remove(w);
      this.#opts.metrics.inc('switchboard_watchers_dropped_total', { transport: w.transport, reason: 'revoked' });
      recordAudit(this.#audit, this.#opts.metrics, {
        who: w.access!.who,
        action: STREAM_REVOKED,
        method: 'GET',
        route: ROUTES[w.transport],
        ...(w.services?.size === 1 ? { service: [...w.services][0] } : {}),
        status: why.status,
      });
      try {
        w.revoke(why);
      } catch (err) {
        this.#opts.log.debug({ err }, 'ending a revoked subscriber failed');
      }
    }
  }

  #onReset(position: { epoch: string; rev: number }): void {
    // The events before the reset go out first, so nobody gets them after the new snapshot.
    this.#flush();
    this.history.reset(position.epoch, position.rev);
    // Watchers with the same filter share one snapshot (and so one encoding of it).
    for (const w of [...this.#watchers]) w.snapshot(this.#snapshotFor(w));
  }
}

function matches(watcher: Watcher, service: string): boolean {
  return (
    (watcher.services === null || watcher.services.has(service)) &&
    (watcher.access === null || watcher.access.reads(service))
  );
}

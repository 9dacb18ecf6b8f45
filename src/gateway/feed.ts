/**
 * The native ZeroMQ feed: a PUB socket sending each change as `["svc/<service>/", body]`, body the event as plain
 * MessagePack maps (any language's msgpack library reads it). PUB/SUB may drop (slow joiner, high-water mark), so
 * subscribers rely on revisions and the snapshot endpoint beside it (feed-snapshot.ts) to repair gaps.
 */
import { XPublisher } from 'zeromq';
import {
  baseSocketOptions,
  feedTopic,
  pack,
  receiveLoop,
  SendQueue,
  type Follower,
  type Logger,
  type Metrics,
  type RegistryEvent,
  type Replica,
  type ServerSecurity,
  type ZapGuard,
} from '../bridge/index.ts';
import type { FeedAdmission } from './feed-admission.ts';
import { SnapshotEndpoint } from './feed-snapshot.ts';

export const DEFAULT_FEED_HIGH_WATER_MARK = 10_000;

// The topic of a service's events (`svc/<service>/`) is defined in bridge/protocol.ts; re-exported from here.
export { feedTopic };

export interface FeedOptions {
  endpoint: string;
  /** Messages libzmq queues per subscriber before dropping for it (ZMQ_SNDHWM). */
  highWaterMark: number;
  replica: Replica;
  metrics: Metrics;
  log: Logger;
  /** CURVE server and/or ZAP domain (feed-admission.ts). */
  security?: ServerSecurity;
}

export class EventFeed {
  readonly #socket: XPublisher;
  readonly #queue: SendQueue;
  readonly #metrics: Metrics;
  #unsubscribe: (() => void) | null = null;
  #endpoint = '';
  /**
   * Distinct topics subscribed right now. An XPUB passes on only the first subscription of a topic and the last
   * unsubscription (a subscriber's go when it disconnects), so this counts without storing what peers send. At 0
   * nothing is encoded or sent: an event nobody subscribes to would cost a pack and a send to be dropped.
   */
  #subscriptions = 0;

  private constructor(opts: FeedOptions) {
    this.#metrics = opts.metrics;
    // noDrop stays off: one stalled subscriber must never stall the feed for the others. An XPUB rather than a PUB
    // so the feed knows when nobody subscribes (see #subscriptions).
    this.#socket = new XPublisher(
      baseSocketOptions<XPublisher>({
        sendHighWaterMark: opts.highWaterMark,
        maxMessageSize: 64 * 1024,
        ...opts.security?.socketOptions,
      }),
    );
    opts.security?.watch(this.#socket);
    this.#queue = new SendQueue(this.#socket, {
      log: opts.log,
      limit: opts.highWaterMark,
      onDrop: (reason) => opts.metrics.inc('switchboard_feed_dropped_total', { reason }),
    });
    opts.metrics.counter('switchboard_feed_published_total', 'Events handed to the ZeroMQ PUB feed');
    // Ends when the socket closes; it logs its own errors and never rejects.
    void receiveLoop(this.#socket, ([message]) => this.#subscription(message), opts.log);
    opts.metrics.counter(
      'switchboard_feed_dropped_total',
      'Events the ZeroMQ feed could not send (queue full or send error)',
      { reason: 'queue-full' },
    );
  }

  /** Binds and starts publishing the replica's changes; resolves once bound. */
  static async start(opts: FeedOptions): Promise<EventFeed> {
    const feed = new EventFeed(opts);
    try {
      await feed.#socket.bind(opts.endpoint);
    } catch (err) {
      feed.#socket.close();
      throw new Error(`cannot bind the ZeroMQ feed on ${opts.endpoint}: ${(err as Error).message}`);
    }
    feed.#endpoint = feed.#socket.lastEndpoint ?? opts.endpoint;
    feed.#unsubscribe = opts.replica.onEvent((event) => feed.publish(event));
    opts.log.info({ endpoint: feed.#endpoint }, 'ZeroMQ feed bound');
    return feed;
  }

  /** The bound endpoint (the real port when bound to `*`). */
  get endpoint(): string {
    return this.#endpoint;
  }

  /** `[1, topic]` subscribes, `[0, topic]` unsubscribes; anything else (an XSUB peer's own data) is ignored. */
  #subscription(message: Buffer | undefined): void {
    if (message?.[0] === 1) this.#subscriptions++;
    else if (message?.[0] === 0 && message.length > 0) this.#subscriptions = Math.max(0, this.#subscriptions - 1);
  }

  publish(event: RegistryEvent): void {
    if (this.#subscriptions === 0) return;
    if (this.#queue.push([feedTopic(event.service), pack(event)]))
      this.#metrics.inc('switchboard_feed_published_total');
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#queue.close();
    this.#socket.close();
  }
}

/** The PUB feed and its snapshot endpoint, each optional (`off`), started and closed together. */
export interface NativeFeed {
  /** Bound endpoints, null when switched off. */
  readonly pub: string | null;
  readonly snapshot: string | null;
  close(): Promise<void>;
}

export const FEED_OFF = 'off';

/** The TCP port of a bound endpoint (undefined for ipc://, inproc:// or before the bind). */
function portOf(endpoint: string | undefined): number | undefined {
  const m = endpoint ? /^tcp:\/\/.+:([0-9]+)$/.exec(endpoint) : null;
  return m ? Number(m[1]) : undefined;
}

export async function startNativeFeed(opts: {
  pub: string;
  snapshot: string;
  highWaterMark: number;
  follower: Follower;
  metrics: Metrics;
  log: Logger;
  /** CURVE and the per-client cap; absent or inactive: anyone may connect, as many times as they like. */
  admission?: FeedAdmission;
}): Promise<NativeFeed> {
  const { follower, metrics, log } = opts;
  const guards: ZapGuard[] = [];
  let feed: EventFeed | null = null;
  let snapshot: SnapshotEndpoint | null = null;
  // A guard is registered before its socket binds, so no connection ever arrives unguarded.
  const guard = async (socket: string, port: () => number | undefined): Promise<ServerSecurity | undefined> => {
    if (!opts.admission?.active) return undefined;
    const g = await opts.admission.guard(socket, port);
    guards.push(g);
    return g;
  };
  const closeAll = async (): Promise<void> => {
    feed?.close();
    await snapshot?.close();
    for (const g of guards) await g.close();
  };
  try {
    if (opts.pub !== FEED_OFF)
      feed = await EventFeed.start({
        endpoint: opts.pub,
        highWaterMark: opts.highWaterMark,
        replica: follower.replica,
        metrics,
        log,
        security: await guard('feed-pub', () => portOf(feed?.endpoint)),
      });
    if (opts.snapshot !== FEED_OFF)
      snapshot = await SnapshotEndpoint.start({
        endpoint: opts.snapshot,
        follower,
        metrics,
        log,
        security: await guard('feed-snapshot', () => portOf(snapshot?.endpoint)),
      });
  } catch (err) {
    await closeAll();
    throw err;
  }
  return {
    pub: feed?.endpoint ?? null,
    snapshot: snapshot?.endpoint ?? null,
    close: closeAll,
  };
}

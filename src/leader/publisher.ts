/**
 * The leader's PUB: every committed registry event, once, in revision order, and a periodic position beacon
 * (session, epoch, rev) so followers notice a gap or a new leader even when nothing changes. PUB may drop;
 * followers repair from revisions (bridge/replica.ts), so the queue here is bounded and drops are counted.
 */
import { Publisher } from 'zeromq';
import {
  baseSocketOptions,
  MAX_BATCH_FRAME_BYTES,
  MAX_PUBLISHED_EVENTS_PER_FRAME,
  pack,
  packBatches,
  SendQueue,
  TOPIC_BEACON,
  TOPIC_EVENT,
  TOPIC_EVENTS,
  type Beacon,
  type Logger,
  type Metrics,
  type RegistryEvent,
  type ServerSecurity,
} from '../bridge/index.ts';

export const PUBLISH_SEND_QUEUE_LIMIT = 100_000;

export class EventPublisher {
  readonly #pub: Publisher;
  readonly #queue: SendQueue;
  readonly #metrics: Metrics;
  #beaconTimer: NodeJS.Timeout | undefined;
  /** Events published in the current synchronous run (one commit's), sent together at its end. */
  #pending: RegistryEvent[] = [];
  #flushQueued = false;
  #position: (() => Omit<Beacon, 'at'>) | undefined;

  constructor(opts: { log: Logger; metrics: Metrics; security?: ServerSecurity }) {
    this.#metrics = opts.metrics;
    this.#pub = new Publisher(
      baseSocketOptions<Publisher>({ sendHighWaterMark: 100_000, ...opts.security?.socketOptions }),
    );
    opts.security?.watch(this.#pub);
    this.#queue = new SendQueue(this.#pub, {
      log: opts.log,
      limit: PUBLISH_SEND_QUEUE_LIMIT,
      onDrop: (r) => opts.metrics.inc('switchboard_send_dropped_total', { socket: 'leader-pub', reason: r }),
    });
    opts.metrics.counter('switchboard_events_published_total', 'Registry events published');
  }

  /** Binds; resolves with the endpoint as bound (an ephemeral port resolved). */
  async bind(endpoint: string): Promise<string> {
    await this.#pub.bind(endpoint);
    return this.#pub.lastEndpoint ?? '';
  }

  /**
   * Queues `event`; the events of one synchronous run (a commit publishes its events in one loop) leave in one
   * message at its end, in a microtask: no event-loop turn is added. A message costs a send and a wake-up of
   * ZeroMQ's I/O thread here and a receive, decode and check on every follower whatever it carries.
   */
  publish(event: RegistryEvent): void {
    this.#metrics.inc('switchboard_events_published_total');
    this.#pending.push(event);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  /** Sends `position()` as a beacon every `intervalMs` until close (a second start replaces the first). */
  startBeacons(intervalMs: number, position: () => Omit<Beacon, 'at'>): void {
    clearInterval(this.#beaconTimer);
    this.#position = position;
    this.#beaconTimer = setInterval(() => this.#beacon(position()), intervalMs);
  }

  /** One beacon now, besides the periodic ones (while beacons run): e.g. after an ACL change. */
  beaconNow(): void {
    if (this.#beaconTimer && this.#position) this.#beacon(this.#position());
  }

  stopBeacons(): void {
    clearInterval(this.#beaconTimer);
    this.#beaconTimer = undefined;
  }

  /** Resolves when everything queued so far has been handed to ZeroMQ. */
  idle(): Promise<void> {
    this.#flush();
    return this.#queue.idle();
  }

  /** Stops beacons, drops what is still queued and closes the socket. Idempotent. */
  close(): void {
    this.stopBeacons();
    this.#pending = [];
    this.#queue.close();
    this.#pub.close();
  }

  #flush(): void {
    this.#flushQueued = false;
    const events = this.#pending;
    if (events.length === 0) return;
    this.#pending = [];
    if (events.length === 1) {
      this.#queue.push([TOPIC_EVENT, pack(events[0])]);
      return;
    }
    for (const { frame } of packBatches(
      events,
      (slice) => slice,
      MAX_PUBLISHED_EVENTS_PER_FRAME,
      MAX_BATCH_FRAME_BYTES,
    ))
      this.#queue.push([TOPIC_EVENTS, frame]);
  }

  #beacon(position: Omit<Beacon, 'at'>): void {
    // A beacon names the revision published so far: the events before it leave first.
    this.#flush();
    const beacon: Beacon = { ...position, at: Date.now() };
    this.#queue.push([TOPIC_BEACON, pack(beacon)]);
  }
}

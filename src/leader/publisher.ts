/**
 * The leader's PUB: every committed registry event, once, in revision order, and a periodic position beacon
 * (session, epoch, rev) so followers notice a gap or a new leader even when nothing changes. PUB may drop;
 * followers repair from revisions (bridge/replica.ts), so the queue here is bounded and drops are counted.
 */
import { Publisher } from 'zeromq';
import {
  baseSocketOptions,
  pack,
  SendQueue,
  TOPIC_BEACON,
  TOPIC_EVENT,
  type Beacon,
  type Logger,
  type Metrics,
  type RegistryEvent,
} from '../bridge/index.ts';

export const PUBLISH_SEND_QUEUE_LIMIT = 100_000;

export class EventPublisher {
  readonly #pub: Publisher;
  readonly #queue: SendQueue;
  readonly #metrics: Metrics;
  #beaconTimer: NodeJS.Timeout | undefined;
  #position: (() => Omit<Beacon, 'at'>) | undefined;

  constructor(opts: { log: Logger; metrics: Metrics }) {
    this.#metrics = opts.metrics;
    this.#pub = new Publisher(baseSocketOptions<Publisher>({ sendHighWaterMark: 100_000 }));
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

  publish(event: RegistryEvent): void {
    this.#metrics.inc('switchboard_events_published_total');
    this.#queue.push([TOPIC_EVENT, pack(event)]);
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
    return this.#queue.idle();
  }

  /** Stops beacons, drops what is still queued and closes the socket. Idempotent. */
  close(): void {
    this.stopBeacons();
    this.#queue.close();
    this.#pub.close();
  }

  #beacon(position: Omit<Beacon, 'at'>): void {
    const beacon: Beacon = { ...position, at: Date.now() };
    this.#queue.push([TOPIC_BEACON, pack(beacon)]);
  }
}

/**
 * The snapshot endpoint of the native feed, for clients that speak only ZeroMQ: a ROUTER answering
 * `["snapshot", "<service or empty>"]` with one frame, `{ epoch, rev, providers, stale }` as plain MessagePack.
 *
 * Frame layout. DEALER client: send `["snapshot", service]`, receive `[body]`. REQ client: send the same two
 * frames (REQ adds the empty delimiter itself), receive `[body]`. Anything else is dropped, counted in
 * `switchboard_frames_dropped_total{socket="gateway-feed-snapshot"}` and logged, with no answer: clients use a
 * receive timeout. `service` empty means every service.
 */
import { Router } from 'zeromq';
import {
  baseSocketOptions,
  FEED_SNAPSHOT_COMMAND,
  FrameDecoder,
  pack,
  receiveLoop,
  SendQueue,
  SERVICE_NAME_PATTERN,
  type Follower,
  type Logger,
  type Metrics,
  type ServerSecurity,
} from '../bridge/index.ts';
import { snapshotOf } from './subscribers.ts';

const SERVICE = new RegExp(SERVICE_NAME_PATTERN);
const EMPTY = Buffer.alloc(0);
/**
 * Replies waiting to be sent may hold at most this many bytes (a reply is one shared encoding, counted per reply:
 * an upper bound). A request beyond it is dropped and counted; the client's receive timeout makes it retry.
 */
export const SNAPSHOT_REPLY_BUDGET_BYTES = 256 * 1024 * 1024;
/** Distinct services whose encoded snapshot is kept for the current revision. */
const MAX_ENCODED = 64;

export interface SnapshotEndpointOptions {
  endpoint: string;
  follower: Follower;
  metrics: Metrics;
  log: Logger;
  /** CURVE server and/or ZAP domain (feed-admission.ts). */
  security?: ServerSecurity;
}

export class SnapshotEndpoint {
  readonly #socket: Router;
  readonly #queue: SendQueue;
  readonly #decoder: FrameDecoder;
  readonly #follower: Follower;
  readonly #metrics: Metrics;
  /** Encoded replies for the current revision and staleness, by service ('' = all): one encoding per revision. */
  readonly #encoded = new Map<string, Buffer>();
  #encodedAt = '';
  #loop: Promise<void> = Promise.resolve();
  #endpoint = '';

  private constructor(opts: SnapshotEndpointOptions) {
    this.#follower = opts.follower;
    this.#metrics = opts.metrics;
    this.#socket = new Router(
      baseSocketOptions<Router>({
        // Requests are two short frames; anything bigger is not one.
        maxMessageSize: 4096,
        // A reply to a peer that has gone fails fast instead of waiting forever.
        mandatory: true,
        sendTimeout: 1000,
        sendHighWaterMark: 1000,
        ...opts.security?.socketOptions,
      }),
    );
    opts.security?.watch(this.#socket);
    const log = opts.log.child({ component: 'feed-snapshot' });
    this.#queue = new SendQueue(this.#socket, {
      log,
      limit: 1000,
      limitBytes: SNAPSHOT_REPLY_BUDGET_BYTES,
      onDrop: (reason) =>
        opts.metrics.inc('switchboard_send_dropped_total', { socket: 'gateway-feed-snapshot', reason }),
    });
    this.#decoder = new FrameDecoder('gateway-feed-snapshot', opts.metrics, log);
    opts.metrics.counter('switchboard_feed_snapshots_total', 'Snapshots answered on the ZeroMQ snapshot endpoint');
  }

  static async start(opts: SnapshotEndpointOptions): Promise<SnapshotEndpoint> {
    const endpoint = new SnapshotEndpoint(opts);
    try {
      await endpoint.#socket.bind(opts.endpoint);
    } catch (err) {
      endpoint.#socket.close();
      throw new Error(`cannot bind the ZeroMQ snapshot endpoint on ${opts.endpoint}: ${(err as Error).message}`);
    }
    endpoint.#endpoint = endpoint.#socket.lastEndpoint ?? opts.endpoint;
    endpoint.#loop = receiveLoop(endpoint.#socket, (frames) => endpoint.#answer(frames), opts.log);
    return endpoint;
  }

  get endpoint(): string {
    return this.#endpoint;
  }

  async close(): Promise<void> {
    this.#queue.close();
    this.#socket.close();
    await this.#loop;
  }

  #answer(frames: Buffer[]): void {
    const [identity, ...rest] = frames;
    if (!identity) return void this.#decoder.drop('missing-frame');
    const envelope: Buffer[] = [identity];
    // A REQ peer puts an empty delimiter first and expects it back.
    if (rest.length === 3 && rest[0].length === 0) {
      envelope.push(EMPTY);
      rest.shift();
    }
    if (rest.length !== 2) return void this.#decoder.drop('frame-count', frames.length);
    if (rest[0].toString() !== FEED_SNAPSHOT_COMMAND) return void this.#decoder.drop('unknown-command', rest[0].length);
    const service = rest[1].toString();
    if (service !== '' && !SERVICE.test(service)) return void this.#decoder.drop('invalid-service', rest[1].length);
    this.#metrics.inc('switchboard_feed_snapshots_total');
    this.#queue.push([...envelope, this.#encode(service)]);
  }

  #encode(service: string): Buffer {
    const replica = this.#follower.replica;
    const stale = this.#follower.stale;
    const at = `${replica.epoch}/${replica.rev}/${stale}`;
    if (at !== this.#encodedAt) {
      this.#encoded.clear();
      this.#encodedAt = at;
    }
    let bytes = this.#encoded.get(service);
    if (!bytes) {
      if (this.#encoded.size >= MAX_ENCODED) this.#encoded.clear();
      bytes = pack({ ...snapshotOf(replica, service === '' ? null : [service]), stale });
      this.#encoded.set(service, bytes);
    }
    return bytes;
  }
}

/**
 * The leader's control socket: a ROUTER that workers and gateways talk to, with its one receive loop, its frame
 * decoder (bad frames are counted and dropped) and its bounded reply queue. It knows frames and message types,
 * not what the messages mean: each decoded message goes to the handler table (handlers.ts).
 */
import { Router } from 'zeromq';
import {
  baseSocketOptions,
  FrameDecoder,
  pack,
  receiveLoop,
  SendQueue,
  toLeader,
  type Logger,
  type Metrics,
  type ToFollower,
  type ToLeader,
  type ToWorker,
} from '../bridge/index.ts';

/** Everything the leader sends on its ROUTER. */
export type LeaderReply = ToWorker | ToFollower;

export const CONTROL_SEND_QUEUE_LIMIT = 100_000;

export class ControlSocket {
  readonly #router: Router;
  readonly #queue: SendQueue;
  readonly #decoder: FrameDecoder;
  readonly #log: Logger;
  #loop: Promise<void> | null = null;

  constructor(opts: { log: Logger; metrics: Metrics }) {
    this.#log = opts.log;
    this.#router = new Router(
      baseSocketOptions<Router>({
        // Gateways send registrations here; a provider record is small, a batch of reports can be large.
        maxMessageSize: 64 * 1024 * 1024,
        mandatory: false,
        sendHighWaterMark: 100_000,
        receiveHighWaterMark: 100_000,
        heartbeatInterval: 500,
        heartbeatTimeout: 1500,
      }),
    );
    this.#queue = new SendQueue(this.#router, {
      log: opts.log,
      limit: CONTROL_SEND_QUEUE_LIMIT,
      onDrop: (r) => opts.metrics.inc('switchboard_send_dropped_total', { socket: 'leader-router', reason: r }),
    });
    this.#decoder = new FrameDecoder('leader-router', opts.metrics, opts.log);
  }

  /** Binds; resolves with the endpoint as bound (an ephemeral port resolved). */
  async bind(endpoint: string): Promise<string> {
    await this.#router.bind(endpoint);
    return this.#router.lastEndpoint ?? endpoint;
  }

  /** Starts the receive loop: every well-formed message goes to `onMessage` with the sender's routing id. */
  listen(onMessage: (routing: Buffer, message: ToLeader) => void): void {
    this.#loop ??= receiveLoop(this.#router, (frames) => this.#receive(frames, onMessage), this.#log);
  }

  /** True while more input is already waiting to be read (group commit waits for it). */
  moreWaiting(): boolean {
    return !this.#router.closed && this.#router.readable;
  }

  reply(routing: Buffer, message: LeaderReply): void {
    this.#queue.push([routing, pack(message)]);
  }

  /** Resolves when every reply queued so far has been handed to ZeroMQ. */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  /** Drops what is still queued, closes the socket and waits for the receive loop to end. Idempotent. */
  async close(): Promise<void> {
    this.#queue.close();
    this.#router.close();
    await this.#loop;
  }

  #receive(frames: Buffer[], onMessage: (routing: Buffer, message: ToLeader) => void): void {
    const routing = frames[0];
    if (!routing || frames.length !== 2) {
      this.#decoder.drop('frame-count');
      return;
    }
    const message = this.#decoder.decode(toLeader, frames[1]);
    if (!message) return;
    onMessage(routing, message);
  }
}

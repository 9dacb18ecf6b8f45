/**
 * The leader's control socket: a ROUTER that workers and gateways talk to, with its one receive loop, its frame
 * decoder (bad frames are counted and dropped) and its bounded reply queue. It knows frames and message types,
 * not what the messages mean: each decoded message goes to the handler table (handlers.ts).
 */
import { Router } from 'zeromq';
import {
  baseSocketOptions,
  FrameDecoder,
  LEADER_FRAME_LIMITS,
  pack,
  receiveLoop,
  SendQueue,
  toLeader,
  type Logger,
  type Metrics,
  type ServerSecurity,
  type ToFollower,
  type ToLeader,
  type ToWorker,
} from '../bridge/index.ts';

/** Everything the leader sends on its ROUTER. */
export type LeaderReply = ToWorker | ToFollower;

export const CONTROL_SEND_QUEUE_LIMIT = 100_000;
/**
 * Messages read from one peer and not yet handled. Small, because libzmq counts messages, not bytes: 100 frames of
 * the largest size is the most one peer can park in the leader. A gateway's further requests wait in its own
 * send queue and TCP buffers.
 */
export const LEADER_RECEIVE_HIGH_WATER_MARK = 100;

export class ControlSocket {
  readonly #router: Router;
  readonly #queue: SendQueue;
  readonly #decoder: FrameDecoder;
  readonly #log: Logger;
  #loop: Promise<void> | null = null;
  #closing = false;

  constructor(opts: { log: Logger; metrics: Metrics; security?: ServerSecurity }) {
    this.#log = opts.log;
    this.#router = new Router(
      baseSocketOptions<Router>({
        // The largest message is a worker's hello (LEADER_FRAME_LIMITS); a bigger frame costs its sender the
        // connection inside libzmq. Each message type has its own, smaller bound in the decoder.
        maxMessageSize: LEADER_FRAME_LIMITS.socket,
        mandatory: false,
        sendHighWaterMark: 100_000,
        // Messages read but not yet handled, per peer: past this libzmq stops reading that peer's connection, so
        // a flood waits in its own TCP buffers instead of the leader's memory.
        receiveHighWaterMark: LEADER_RECEIVE_HIGH_WATER_MARK,
        // No ZMTP pings from this side: libzmq 4.3.5 aborts the process (`!_io_error`, stream_engine_base.cpp)
        // when its ping timer fires on a connection whose input is paused at the high-water mark and whose peer
        // has hung up, which a flooding peer can arrange. Workers and gateways ping the leader (answered by
        // libzmq), and the leader times workers out by their application pings.
        heartbeatInterval: 0,
        ...opts.security?.socketOptions,
      }),
    );
    opts.security?.watch(this.#router);
    this.#queue = new SendQueue(this.#router, {
      log: opts.log,
      limit: CONTROL_SEND_QUEUE_LIMIT,
      onDrop: (r) => opts.metrics.inc('switchboard_send_dropped_total', { socket: 'leader-router', reason: r }),
    });
    this.#decoder = new FrameDecoder('leader-router', opts.metrics, opts.log, LEADER_FRAME_LIMITS);
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

  /** A reply already encoded as one `LeaderReply` (a snapshot built from shared bytes). */
  replyEncoded(routing: Buffer, frame: Buffer): void {
    this.#queue.push([routing, frame]);
  }

  /** Resolves when every reply queued so far has been handed to ZeroMQ. */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  /** True once close() has been called. */
  get closed(): boolean {
    return this.#closing;
  }

  /** Drops what is still queued, closes the socket and waits for the receive loop to end. Idempotent. */
  async close(): Promise<void> {
    this.#closing = true;
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

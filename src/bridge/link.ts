/**
 * A DEALER connected to the leader's ROUTER: fire-and-forget `send`, correlated `request` with a timeout and a
 * bound on requests in flight, and a handler for messages that answer no request. It watches its connection
 * (ZeroMQ socket events): when it drops, requests in flight fail at once, since their answers died with it.
 *
 * With several leader endpoints (HA: one active leader, standbys that bind nothing) the one DEALER connects to
 * all of them with ZMQ_IMMEDIATE, so messages queue only on pipes that completed a handshake: the active leader's.
 * The link is lost only while no endpoint is connected.
 *
 * Writes (put, delete, ttl, maintenance) asked in one turn of the event loop leave together in `batch` frames at
 * the end of that turn (bridge/batch.ts); each keeps its own reqId, timeout and answer.
 */
import { Dealer } from 'zeromq';
import type { TProperties, TSchema, Static } from 'typebox';
import type { Validator } from 'typebox/compile';
import { isBatchable, packBatches } from './batch.ts';
import { pack } from './codec.ts';
import { LinkError } from './errors.ts';
import { leaderEndpoints, type LeaderEndpoints } from './leader-endpoints.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { RequestBody, RequestMessage, Reply } from './messages.ts';
import { curveClientOptions, type CurveClientKeys } from './curve.ts';
import { baseSocketOptions, DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, receiveLoop, SendQueue } from './zmq.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_PENDING_REQUESTS = 10_000;

export interface LinkOptions<S extends TSchema> {
  /** The leader's control endpoint (ROUTER), or the endpoints of every leader candidate (a list or comma-separated). */
  endpoints: LeaderEndpoints;
  /** Schema of what the leader may send here. */
  validator: Validator<TProperties, S>;
  name: string;
  log: Logger;
  metrics: Metrics;
  maxMessageSize?: number;
  requestTimeoutMs?: number;
  maxPending?: number;
  /** CURVE client keys: only a leader holding the secret of `serverKey` completes a handshake. */
  curve?: CurveClientKeys;
}

/** A failed handshake is logged at warn at most this often (the DEALER retries every few hundred ms). */
const HANDSHAKE_WARN_EVERY_MS = 30_000;

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** A request answered in several parts: each part goes here, and the request ends when it answers true. */
  onPart?: (part: Extract<Reply, { type: 'snapshot.chunk' }>) => boolean;
}

export class LeaderLink<S extends TSchema> {
  /** Every endpoint the DEALER connects to. */
  readonly endpoints: readonly string[];
  readonly #socket: Dealer;
  readonly #queue: SendQueue;
  readonly #decoder: FrameDecoder;
  readonly #validator: Validator<TProperties, S>;
  readonly #pending = new Map<number, Pending>();
  readonly #requestTimeoutMs: number;
  readonly #maxPending: number;
  readonly #loop: Promise<void>;
  #nextReqId = 1;
  readonly #watching: Promise<void>;
  readonly #log: Logger;
  #handler: (message: Static<S>) => void = () => {};
  readonly #connectionListeners = new Set<(up: boolean) => void>();
  #connectionLost = false;
  /** Addresses (as ZeroMQ reports them) whose connection completed a handshake and has not dropped since. */
  readonly #connected = new Set<string>();
  /** Writes of this turn, sent together when it ends. */
  #outbox: RequestMessage[] = [];
  #flushing: NodeJS.Immediate | undefined;
  #closed = false;
  #lastHandshakeWarning = 0;

  constructor(opts: LinkOptions<S>) {
    this.endpoints = Object.freeze(leaderEndpoints(opts.endpoints));
    this.#validator = opts.validator;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#maxPending = opts.maxPending ?? DEFAULT_MAX_PENDING_REQUESTS;
    // sendTimeout: a DEALER whose peer is gone blocks once its pipe is full; fail the send instead of hanging.
    this.#socket = new Dealer(
      baseSocketOptions<Dealer>({
        maxMessageSize: opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
        sendTimeout: 1000,
        sendHighWaterMark: 10_000,
        // A standby's endpoint is retried while nobody is bound there; when it is elected and binds, the next
        // retry finds it. The backoff cap is part of every failover, so keep it short (a refused loopback or LAN
        // connect costs next to nothing).
        reconnectInterval: 100,
        reconnectMaxInterval: 250,
        heartbeatInterval: 500,
        heartbeatTimeout: 1500,
        // Queue only on completed connections: a standby's endpoint (nobody bound) or a dead leader's never holds
        // a request, which goes to the active leader instead.
        immediate: true,
        ...curveClientOptions(opts.curve),
      }),
    );
    const log = opts.log.child({ socket: opts.name });
    this.#log = log;
    // The event observer exists from its first access: watch before connecting, or a fast handshake is missed.
    this.#watching = this.#watchConnection();
    for (const endpoint of this.endpoints) this.#socket.connect(endpoint);
    opts.metrics.counter('switchboard_send_dropped_total', 'Messages dropped before reaching ZeroMQ', {
      socket: opts.name,
      reason: 'queue-full',
    });
    this.#queue = new SendQueue(this.#socket, {
      log,
      onDrop: (reason) => opts.metrics.inc('switchboard_send_dropped_total', { socket: opts.name, reason }),
    });
    this.#decoder = new FrameDecoder(opts.name, opts.metrics, log);
    this.#loop = receiveLoop(this.#socket, (frames) => this.#receive(frames), log);
  }

  /**
   * The connection to the leader dropped (ZeroMQ `disconnect`: the peer closed it, or ZMTP heartbeats timed out) and
   * no connection to any listed endpoint has completed its handshake since. False before the first connection:
   * only a drop is news.
   */
  get connectionLost(): boolean {
    return this.#connectionLost;
  }

  /** Endpoints connected right now (handshake done, no drop since), as ZeroMQ names them. */
  get connectedEndpoints(): string[] {
    return [...this.#connected];
  }

  /**
   * Called with false when the last connection drops and true when a connection completes its handshake while
   * none was up.
   */
  onConnection(listener: (up: boolean) => void): () => void {
    this.#connectionListeners.add(listener);
    return () => this.#connectionListeners.delete(listener);
  }

  /** Messages that answer no pending request (worker tasks, pongs for pings sent with `send`). */
  onMessage(handler: (message: Static<S>) => void): void {
    this.#handler = handler;
  }

  send(message: object): boolean {
    if (this.#closed) return false;
    return this.#queue.push([pack(message)]);
  }

  request(body: RequestBody, timeoutMs = this.#requestTimeoutMs): Promise<Reply> {
    return this.#request(body, timeoutMs);
  }

  /**
   * A request answered in parts (`snapshot.chunk` frames): `onPart` takes each and answers true at the last one,
   * which then resolves the request; a part it throws on rejects it. `timeoutMs` is the longest silence between
   * two parts. Any other answer (a `nack`, a one-frame `snapshot.reply`) resolves the request as `request` does.
   */
  requestParts(
    body: RequestBody,
    onPart: NonNullable<Pending['onPart']>,
    timeoutMs = this.#requestTimeoutMs,
  ): Promise<Reply> {
    return this.#request(body, timeoutMs, onPart);
  }

  #request(body: RequestBody, timeoutMs: number, onPart?: Pending['onPart']): Promise<Reply> {
    if (this.#closed) return Promise.reject(new LinkError('LINK_CLOSED', 'link to the leader is closed'));
    if (this.#pending.size >= this.#maxPending) {
      return Promise.reject(
        new LinkError('LINK_BUSY', `more than ${this.#maxPending} requests waiting for the leader`),
      );
    }
    const reqId = this.#nextReqId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(reqId);
        reject(new LinkError('LINK_TIMEOUT', `the leader did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(reqId, { resolve, reject, timer, onPart });
      const message = { ...body, reqId };
      if (isBatchable(message.type)) {
        this.#outbox.push(message);
        this.#flushing ??= setImmediate(() => this.#flush());
      } else if (!this.#queue.push([pack(message)])) {
        this.#sendFailed([reqId]);
      }
    });
  }

  /** Sends the writes of the turn that ended: one alone as itself, more in batch frames. */
  #flush(): void {
    this.#flushing = undefined;
    const outbox = this.#outbox;
    this.#outbox = [];
    if (this.#closed || outbox.length === 0) return;
    if (outbox.length === 1) {
      if (!this.#queue.push([pack(outbox[0])])) this.#sendFailed([outbox[0].reqId]);
      return;
    }
    for (const { items, frame } of packBatches(outbox, (requests) => ({ type: 'batch', requests }))) {
      if (!this.#queue.push([frame])) this.#sendFailed(items.map((m) => m.reqId));
    }
  }

  #sendFailed(reqIds: number[]): void {
    for (const reqId of reqIds) {
      const p = this.#pending.get(reqId);
      if (!p) continue;
      clearTimeout(p.timer);
      this.#pending.delete(reqId);
      p.reject(new LinkError('LINK_SEND_FAILED', 'the request could not be queued for the leader'));
    }
  }

  get pendingRequests(): number {
    return this.#pending.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearImmediate(this.#flushing);
    this.#outbox = [];
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new LinkError('LINK_CLOSED', 'link to the leader closed'));
    }
    this.#pending.clear();
    this.#queue.close();
    this.#socket.close();
    await this.#loop;
    await this.#watching;
  }

  async #watchConnection(): Promise<void> {
    try {
      for await (const event of this.#socket.events) {
        if (event.type === 'end') break;
        if (event.type === 'disconnect') this.#dropped(event.address);
        else if (event.type === 'handshake') this.#handshake(event.address);
        else if (event.type.startsWith('handshake:error')) this.#handshakeFailed(event);
      }
    } catch (err) {
      if (!this.#closed) this.#log.error({ err }, 'socket event loop ended');
    }
  }

  /**
   * A connection whose security handshake failed: a leader with another CURVE key (or none), or one that refuses
   * this process's key. Nothing is sent on it; ZeroMQ retries, and each retry fails the same way until fixed.
   */
  #handshakeFailed(event: {
    type: string;
    address?: string;
    error?: Error & { code?: string; status?: number };
  }): void {
    const now = Date.now();
    if (this.#closed || now - this.#lastHandshakeWarning < HANDSHAKE_WARN_EVERY_MS) return;
    this.#lastHandshakeWarning = now;
    this.#log.warn(
      { endpoint: event.address, event: event.type, code: event.error?.code ?? event.error?.status },
      'security handshake with the leader failed (CURVE keys on one side only, a different leader key, or this key not on its allow list)',
    );
  }

  #handshake(address: string): void {
    if (this.#closed) return;
    const first = this.#connected.size === 0;
    this.#connected.add(address);
    if (!first) return;
    if (this.#connectionLost) this.#log.info({ endpoint: address }, 'leader connection up again');
    this.#connectionLost = false;
    for (const listener of this.#connectionListeners) listener(true);
  }

  #dropped(address: string): void {
    if (this.#closed) return;
    // A pipe that never completed its handshake carried nothing (ZMQ_IMMEDIATE).
    if (!this.#connected.delete(address)) return;
    // Any drop of a live pipe fails the requests in flight: some may have gone down it, and their answers died
    // with it (the others are asked again by their callers, as after a timeout).
    if (this.#pending.size > 0) {
      for (const [, p] of this.#pending) {
        clearTimeout(p.timer);
        p.reject(new LinkError('LINK_LOST', 'the connection to the leader dropped'));
      }
      this.#pending.clear();
    }
    if (this.#connected.size > 0) return;
    this.#log.info({ endpoint: address }, 'leader connection lost');
    this.#connectionLost = true;
    for (const listener of this.#connectionListeners) listener(false);
  }

  #receive(frames: Buffer[]): void | Promise<void> {
    const message = this.#decoder.decode(this.#validator, frames[frames.length - 1]);
    if (message === undefined) return;
    if ((message as { type?: unknown }).type === 'snapshot.chunk') {
      this.#answer(message);
      // Frames already queued are read without a turn of the event loop in between: a large registry's chunks
      // would then hold it for seconds (timers, HTTP, the start of a Fastify app). One chunk per turn.
      return new Promise((resolve) => setImmediate(resolve));
    }
    if ((message as { type?: unknown }).type === 'batch.reply') {
      // Answers whose request timed out meanwhile are dropped, as a late single answer would be.
      for (const reply of (message as unknown as { replies: Reply[] }).replies) this.#answer(reply);
      return;
    }
    if (!this.#answer(message)) this.#handler(message);
  }

  /** Resolves the pending request `reply` answers; false when none waits for it. */
  #answer(reply: Reply): boolean {
    const reqId = (reply as { reqId?: unknown }).reqId;
    if (typeof reqId !== 'number') return false;
    const pending = this.#pending.get(reqId);
    if (!pending) return false;
    if (pending.onPart && reply.type === 'snapshot.chunk') {
      let last: boolean;
      try {
        last = pending.onPart(reply);
      } catch (err) {
        this.#pending.delete(reqId);
        clearTimeout(pending.timer);
        pending.reject(err instanceof Error ? err : new Error(String(err)));
        return true;
      }
      if (!last) {
        pending.timer.refresh();
        return true;
      }
    }
    this.#pending.delete(reqId);
    clearTimeout(pending.timer);
    pending.resolve(reply);
    return true;
  }
}

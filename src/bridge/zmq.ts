/**
 * ZeroMQ habits in one place: explicit socket options, one receive loop per socket, one bounded send queue per
 * socket (zeromq.js allows a single pending send), and a frame decoder that drops and counts bad input.
 */
import type { Readable, Socket, SocketOptions, Writable } from 'zeromq';
import type { TProperties, TSchema, Static } from 'typebox';
import type { Validator } from 'typebox/compile';
import { unpack } from './codec.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

/** Small control messages. Sockets that carry snapshots raise this. */
export const DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024;
/** A snapshot of a very large registry travels as one message. */
export const SNAPSHOT_MAX_MESSAGE_SIZE = 512 * 1024 * 1024;
export const DEFAULT_SEND_QUEUE_LIMIT = 10_000;

/**
 * Options every socket gets: no linger (clean exit), a bound on frames, ZMTP heartbeats (a frozen peer is found).
 * Typed with zeromq.js's own `SocketOptions<S>`, so a misspelt or misplaced option does not compile: name the socket
 * class for its own options, e.g. `new Router(baseSocketOptions<Router>({ mandatory: true, sendTimeout: 1000 }))`.
 * Without a type argument the options of any readable and writable socket are accepted.
 */
export function baseSocketOptions<S extends Socket = Socket & Readable & Writable>(
  overrides: SocketOptions<S>,
): SocketOptions<Socket> & SocketOptions<S> {
  const base: SocketOptions<Socket> = {
    linger: 0,
    maxMessageSize: DEFAULT_MAX_MESSAGE_SIZE,
    heartbeatInterval: 1000,
    heartbeatTimeout: 3000,
  };
  return { ...base, ...overrides };
}

type Frames = Array<Buffer | string | Uint8Array>;

function sizeOf(frames: Frames): number {
  let n = 0;
  for (const f of frames) n += f.length;
  return n;
}

/**
 * A bounded FIFO in front of a socket's single send slot. `push` never blocks: when the queue is full the message
 * is dropped and counted, because a stuck peer must not grow memory without bound.
 */
export class SendQueue {
  readonly #socket: Socket & Writable;
  readonly #limit: number;
  readonly #log: Logger;
  readonly #onDrop: (reason: string) => void;
  readonly #limitBytes: number;
  /** Bytes of the messages waiting (shared buffers counted once per message: an upper bound). */
  #bytes = 0;
  /** Sent slots are cleared at once: a drained queue must not keep its messages' buffers alive. */
  #queue: Array<Frames | undefined> = [];
  #head = 0;
  #running = false;
  #closed = false;
  #idle: Array<() => void> = [];

  constructor(
    socket: Socket & Writable,
    opts: { limit?: number; limitBytes?: number; log: Logger; onDrop?: (reason: string) => void },
  ) {
    this.#socket = socket;
    this.#limit = opts.limit ?? DEFAULT_SEND_QUEUE_LIMIT;
    this.#limitBytes = opts.limitBytes ?? Infinity;
    this.#log = opts.log;
    this.#onDrop = opts.onDrop ?? (() => {});
  }

  get length(): number {
    return this.#queue.length - this.#head;
  }

  push(frames: Frames): boolean {
    if (this.#closed) return false;
    if (this.length >= this.#limit) {
      this.#onDrop('queue-full');
      return false;
    }
    const size = sizeOf(frames);
    // One message larger than the whole budget still goes when nothing else waits.
    if (this.length > 0 && this.#bytes + size > this.#limitBytes) {
      this.#onDrop('queue-bytes');
      return false;
    }
    this.#bytes += size;
    this.#queue.push(frames);
    if (!this.#running) void this.#drain();
    return true;
  }

  /** Resolves when everything queued so far has been handed to ZeroMQ. */
  idle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#head = 0;
    this.#bytes = 0;
  }

  async #drain(): Promise<void> {
    this.#running = true;
    while (!this.#closed && this.#head < this.#queue.length) {
      const frames = this.#queue[this.#head]!;
      this.#queue[this.#head] = undefined;
      this.#head++;
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      try {
        await this.#socket.send(frames);
      } catch (err) {
        if (this.#closed || this.#socket.closed) break;
        const code = (err as { code?: string }).code ?? 'unknown';
        this.#onDrop(code);
        this.#log.debug({ err }, 'send failed, message dropped');
      } finally {
        this.#bytes -= sizeOf(frames);
      }
    }
    this.#running = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

/**
 * Reads a socket until it is closed. A throwing handler is logged and the loop goes on: one bad message must
 * never stop a socket.
 */
export async function receiveLoop(
  socket: Socket & AsyncIterable<Buffer[]>,
  handle: (frames: Buffer[]) => void | Promise<void>,
  log: Logger,
): Promise<void> {
  try {
    for await (const frames of socket) {
      try {
        await handle(frames);
      } catch (err) {
        log.error({ err }, 'message handler failed');
      }
    }
  } catch (err) {
    if (!socket.closed) log.error({ err }, 'receive loop ended');
  }
}

/**
 * Frame sizes a decoder accepts: `socket` for any frame (checked before unpacking), `byType[type]` once the frame's
 * `type` is known, `other` for a type not listed. A frame over its bound is dropped with reason `oversized`.
 */
export interface FrameLimits {
  socket: number;
  byType?: Partial<Record<string, number>>;
  other?: number;
}

/**
 * Frame → typed message: msgpack unpack with a plain decoder, then the schema check. Anything else is dropped,
 * counted in `switchboard_frames_dropped_total{socket,reason}` and logged at warn (the first few) then debug.
 */
export class FrameDecoder {
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #socket: string;
  readonly #limits: FrameLimits | undefined;
  #warned = 0;

  constructor(socket: string, metrics: Metrics, log: Logger, limits?: FrameLimits) {
    this.#socket = socket;
    this.#limits = limits;
    this.#metrics = metrics;
    this.#log = log;
    metrics.counter('switchboard_frames_dropped_total', 'Malformed or unexpected ZeroMQ frames dropped', {
      socket,
      reason: 'malformed',
    });
  }

  decode<S extends TSchema>(validator: Validator<TProperties, S>, frame: Buffer | undefined): Static<S> | undefined {
    if (!frame) return this.drop('missing-frame');
    const limits = this.#limits;
    if (limits && frame.length > limits.socket) return this.drop('oversized', frame.length);
    let value: unknown;
    try {
      value = unpack(frame);
    } catch {
      return this.drop('malformed', frame.length);
    }
    if (limits && frame.length > this.#bound(value, limits)) return this.drop('oversized', frame.length, value);
    if (!validator.Check(value)) return this.drop('invalid', frame.length, value);
    return value;
  }

  /** The size bound of this value's message type. */
  #bound(value: unknown, limits: FrameLimits): number {
    const type = value && typeof value === 'object' ? (value as { type?: unknown }).type : undefined;
    const own = typeof type === 'string' ? limits.byType?.[type] : undefined;
    return own ?? limits.other ?? limits.socket;
  }

  drop(reason: string, bytes?: number, value?: unknown): undefined {
    this.#metrics.inc('switchboard_frames_dropped_total', { socket: this.#socket, reason });
    const type = value && typeof value === 'object' ? (value as { type?: unknown }).type : undefined;
    const level = this.#warned < 20 ? 'warn' : 'debug';
    this.#warned++;
    this.#log[level](
      { socket: this.#socket, reason, bytes, type: typeof type === 'string' ? type : undefined },
      'frame dropped',
    );
    return undefined;
  }
}

/** Replaces a wildcard bind host (0.0.0.0, *, ::) with the host the caller used to reach the peer. */
export function resolveAdvertised(bound: string, via: string): string {
  const m = /^tcp:\/\/(\*|0\.0\.0\.0|\[::\]|\[::0\]|::):(\d+)$/.exec(bound);
  if (!m) return bound;
  const host = /^tcp:\/\/(.+):\d+$/.exec(via)?.[1] ?? '127.0.0.1';
  return `tcp://${host}:${m[2]}`;
}

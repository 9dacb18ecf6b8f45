/**
 * The provider side of the `zmq` check: bind a PUB socket and publish `["heartbeat", "<provider id>"]` for each
 * provider id every `intervalMs`. One socket can carry many ids.
 */
import { Publisher } from 'zeromq';
import { HEARTBEAT_TOPIC } from '../bridge/protocol.ts';

export { HEARTBEAT_TOPIC };
export const DEFAULT_BEAT_INTERVAL_MS = 250;

export interface HeartbeatOptions {
  /** Where to bind, e.g. `tcp://127.0.0.1:*` (any free port) or `tcp://0.0.0.0:6000`. */
  bind: string;
  /** How often to beat. Keep it well under the check's `intervalMs` (default check interval: 1000 ms). */
  intervalMs?: number;
  ids?: Iterable<string>;
}

export class HeartbeatPublisher {
  readonly #socket: Publisher;
  readonly #ids = new Set<string>();
  readonly #intervalMs: number;
  readonly #bind: string;
  #timer: NodeJS.Timeout | undefined;
  #sending = false;
  #closed = false;

  constructor(opts: HeartbeatOptions) {
    this.#bind = opts.bind;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_BEAT_INTERVAL_MS;
    for (const id of opts.ids ?? []) this.#ids.add(id);
    this.#socket = new Publisher({
      linger: 0,
      sendHighWaterMark: 1000,
      heartbeatInterval: 1000,
      heartbeatTimeout: 3000,
    });
  }

  /** Binds and starts beating; resolves with the endpoint to register as the check's `endpoint`. */
  async start(): Promise<string> {
    await this.#socket.bind(this.#bind);
    this.#timer = setInterval(() => void this.beat(), this.#intervalMs);
    return this.endpoint;
  }

  get endpoint(): string {
    return this.#socket.lastEndpoint ?? this.#bind;
  }

  add(id: string): void {
    this.#ids.add(id);
    void this.beat();
  }

  remove(id: string): void {
    this.#ids.delete(id);
  }

  /** Publishes one beat for every id now. */
  async beat(): Promise<void> {
    if (this.#sending || this.#closed) return;
    this.#sending = true;
    try {
      for (const id of this.#ids) {
        if (this.#closed) break;
        await this.#socket.send([HEARTBEAT_TOPIC, id]);
      }
    } catch {
      // PUB never blocks; a send can only fail when the socket is closing.
    } finally {
      this.#sending = false;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#socket.close();
  }
}

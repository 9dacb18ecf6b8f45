/**
 * The zmq check's socket pool: SUB sockets subscribed to `HEARTBEAT_TOPIC`, each connected to at most
 * `endpointsPerSocket` provider PUB endpoints, so ten thousand providers cost a handful of sockets. It knows
 * endpoints, not providers: it says which provider id beat and which endpoint's connection dropped, and leaves
 * liveness (misses, damping, causes) to the runner (zmq-heartbeats.ts).
 *
 * A beat counts only where it can be true: on the socket that holds the connection to the endpoint registered for
 * that provider, and while that connection is up (no `disconnect` since its last `handshake`). Otherwise a live
 * provider A publishing B's id would keep a dead B `up`. A SUB socket does not say which of its connections a
 * message came from, so two providers sharing a socket are told apart by the second rule only; rejected beats are
 * counted in `switchboard_heartbeats_rejected_total{reason}` and logged.
 */
import { Subscriber } from 'zeromq';
import {
  baseSocketOptions,
  FrameDecoder,
  HEARTBEAT_TOPIC,
  receiveLoop,
  type Logger,
  type Metrics,
} from '../bridge/index.ts';

export interface HeartbeatSocketsOptions {
  endpointsPerSocket: number;
  /** ZMTP ping period and timeout on the connections: how fast a frozen peer is found. */
  zmtpHeartbeatIntervalMs: number;
  zmtpHeartbeatTimeoutMs: number;
  log: Logger;
  metrics: Metrics;
  /** The endpoint registered for a provider id this worker watches (undefined: not watched here). */
  endpointOf: (providerId: string) => string | undefined;
  /** A heartbeat for this provider id arrived where it counts (see the file comment). */
  onBeat: (providerId: string) => void;
  /** libzmq said `disconnect` for this endpoint (peer closed, or the ZMTP heartbeat timed out). */
  onDisconnect: (endpoint: string) => void;
}

interface SubSocket {
  sub: Subscriber;
  endpoints: number;
  loops: Promise<void>[];
}

export class HeartbeatSockets {
  readonly #opts: HeartbeatSocketsOptions;
  readonly #log: Logger;
  readonly #decoder: FrameDecoder;
  readonly #sockets: SubSocket[] = [];
  /** Connected endpoint → the socket that holds its connection. */
  readonly #endpoints = new Map<string, SubSocket>();
  /** Endpoints whose connection dropped and has not completed a new handshake: their beats do not count. */
  readonly #dropped = new Set<string>();
  #warned = 0;
  #closed = false;

  constructor(opts: HeartbeatSocketsOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#decoder = new FrameDecoder('worker-heartbeat-sub', opts.metrics, opts.log);
    opts.metrics.counter('switchboard_heartbeats_received_total', 'Provider heartbeats received');
    for (const reason of ['wrong-socket', 'endpoint-down'])
      opts.metrics.counter(
        'switchboard_heartbeats_rejected_total',
        "Provider heartbeats ignored because they did not arrive on the provider's registered endpoint",
        { reason },
      );
    opts.metrics.gauge(
      'switchboard_heartbeat_endpoints',
      'Provider PUB endpoints this worker is connected to',
      () => this.#endpoints.size,
    );
  }

  /** Endpoints connected now. */
  get size(): number {
    return this.#endpoints.size;
  }

  has(endpoint: string): boolean {
    return this.#endpoints.has(endpoint);
  }

  /**
   * Connects to `endpoint` on a socket with room (a new one when all are full); nothing to do if connected.
   * Throws when libzmq refuses the address (malformed or unresolvable): then nothing is kept.
   */
  connect(endpoint: string): void {
    if (this.#closed || this.#endpoints.has(endpoint)) return;
    const socket = this.#socketWithRoom();
    socket.sub.connect(endpoint);
    socket.endpoints++;
    this.#endpoints.set(endpoint, socket);
  }

  disconnect(endpoint: string): void {
    const socket = this.#endpoints.get(endpoint);
    if (!socket) return;
    this.#endpoints.delete(endpoint);
    this.#dropped.delete(endpoint);
    socket.endpoints--;
    try {
      socket.sub.disconnect(endpoint);
    } catch (err) {
      this.#log.debug({ err, endpoint }, 'disconnect failed');
    }
  }

  /** Closes every socket and waits for their loops to end. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#sockets) s.sub.close();
    this.#endpoints.clear();
    this.#dropped.clear();
    await Promise.all(this.#sockets.flatMap((s) => s.loops));
  }

  #socketWithRoom(): SubSocket {
    const free = this.#sockets.find((s) => s.endpoints < this.#opts.endpointsPerSocket);
    if (free) return free;
    const sub = new Subscriber(
      baseSocketOptions<Subscriber>({
        maxMessageSize: 4096,
        heartbeatInterval: this.#opts.zmtpHeartbeatIntervalMs,
        heartbeatTimeout: this.#opts.zmtpHeartbeatTimeoutMs,
        reconnectInterval: 100,
        reconnectMaxInterval: 1000,
        receiveHighWaterMark: 100_000,
      }),
    );
    sub.subscribe(HEARTBEAT_TOPIC);
    const socket: SubSocket = { sub, endpoints: 0, loops: [] };
    socket.loops.push(receiveLoop(sub, (frames) => this.#onFrames(socket, frames), this.#log));
    socket.loops.push(this.#watchEvents(sub));
    this.#sockets.push(socket);
    return socket;
  }

  async #watchEvents(sub: Subscriber): Promise<void> {
    try {
      for await (const event of sub.events) {
        if (event.type === 'disconnect') {
          if (this.#endpoints.has(event.address)) this.#dropped.add(event.address);
          this.#opts.onDisconnect(event.address);
        } else if (event.type === 'handshake') this.#dropped.delete(event.address);
        else if (event.type === 'end') break;
      }
    } catch (err) {
      if (!this.#closed) this.#log.error({ err }, 'socket event loop ended');
    }
  }

  #onFrames(socket: SubSocket, frames: Buffer[]): void {
    if (frames.length !== 2 || frames[0].toString() !== HEARTBEAT_TOPIC) {
      this.#decoder.drop('not-a-heartbeat');
      return;
    }
    this.#opts.metrics.inc('switchboard_heartbeats_received_total');
    const id = frames[1].toString();
    const endpoint = this.#opts.endpointOf(id);
    // Not watched here: another provider on a shared PUB socket, or one another worker watches.
    if (endpoint === undefined) return;
    if (this.#endpoints.get(endpoint) !== socket) return this.#reject(id, endpoint, 'wrong-socket');
    if (this.#dropped.has(endpoint)) return this.#reject(id, endpoint, 'endpoint-down');
    this.#opts.onBeat(id);
  }

  #reject(id: string, endpoint: string, reason: 'wrong-socket' | 'endpoint-down'): void {
    this.#opts.metrics.inc('switchboard_heartbeats_rejected_total', { reason });
    const level = this.#warned < 20 ? 'warn' : 'debug';
    this.#warned++;
    this.#log[level](
      { provider: id, endpoint, reason },
      "heartbeat ignored: it did not arrive on the provider's registered endpoint",
    );
  }
}

/**
 * The gateway's channel to the leader for everything that is not following: writes, admin requests, the leader's
 * metrics, and what the gateway reports about the leader (its mass-down guard, learnt from the follower's pongs).
 *
 * It has its own DEALER, apart from the follower's, so a large snapshot reply never holds up a write's
 * acknowledgement. The DEALER opens at the first request: a context built for `inject()` tests or the OpenAPI
 * document holds no socket until something is really sent.
 */
import {
  LeaderLink,
  LinkError,
  toFollower,
  type Follower,
  type LeaderEndpoints,
  type Logger,
  type MassDownGuardStatus,
  type Metrics,
  type StoreHealth,
  type Reply,
  type RequestBody,
  type ToFollower,
} from '../bridge/index.ts';

export const REQUEST_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

export interface LeaderChannelOptions {
  follower: Follower;
  metrics: Metrics;
  log: Logger;
  /** The leader's control endpoint (or every candidate's); the follower's list by default. */
  endpoint?: LeaderEndpoints;
  requestTimeoutMs?: number;
}

export class LeaderChannel {
  readonly #opts: LeaderChannelOptions;
  readonly #unsubscribe: () => void;
  #link: LeaderLink<typeof ToFollower> | null = null;
  #guard: MassDownGuardStatus | null = null;
  #store: StoreHealth | null = null;
  #closing: Promise<void> | null = null;

  constructor(opts: LeaderChannelOptions) {
    this.#opts = opts;
    this.#unsubscribe = opts.follower.onPong((pong) => {
      this.#guard = pong.guard ?? null;
      this.#store = pong.store ?? null;
    });
    opts.metrics.gauge(
      'switchboard_leader_mass_down_guard_active',
      '1 while the leader holds down transitions (mass-down guard)',
      () => (this.#guard?.active ? 1 : 0),
    );
    opts.metrics.gauge(
      'switchboard_leader_mass_down_held',
      'Down transitions the leader holds (mass-down guard)',
      () => this.#guard?.held ?? 0,
    );
  }

  /** The leader answers and neither the follower's nor this channel's connection to it has dropped. */
  get reachable(): boolean {
    return this.#opts.follower.leaderReachable && !this.#link?.connectionLost;
  }

  /** The leader's mass-down guard as of its last pong (null until a leader that reports it answers). */
  get guard(): MassDownGuardStatus | null {
    return this.#guard;
  }

  /** The leader's store as of its last pong (null until a leader that reports it answers). */
  get store(): StoreHealth | null {
    return this.#store;
  }

  /** One request to the leader; rejects with a `LinkError` (timeout, busy, connection lost, closed). */
  request(body: RequestBody, timeoutMs?: number): Promise<Reply> {
    if (this.#closing) return Promise.reject(new LinkError('LINK_CLOSED', 'the gateway is closing'));
    return this.#open().request(body, timeoutMs);
  }

  async close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#unsubscribe();
      await this.#link?.close();
    })();
    return this.#closing;
  }

  #open(): LeaderLink<typeof ToFollower> {
    this.#link ??= new LeaderLink({
      endpoints: this.#opts.endpoint ?? this.#opts.follower.leaders,
      validator: toFollower,
      name: 'gateway-requests',
      log: this.#opts.log,
      metrics: this.#opts.metrics,
      // Acks are small; the cluster list and the leader's metrics text are the large answers.
      maxMessageSize: REQUEST_MAX_MESSAGE_SIZE,
      requestTimeoutMs: this.#opts.requestTimeoutMs,
      curve: this.#opts.follower.curve,
    });
    return this.#link;
  }
}

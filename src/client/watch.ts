/**
 * A watch that survives the loss of a gateway. Over WebSocket it resumes on the next gateway from its last
 * revision (`?epoch=&rev=`), so it sees every event exactly once when the new gateway still holds them in its
 * history, and a fresh snapshot (reported as such) when it does not. Over the native ZeroMQ feed it follows the
 * Clone pattern and takes a snapshot after a failover.
 */
import { curveClientOptions, type CurveClientKeys } from '../bridge/curve.ts';
import { WebSocket } from 'ws';
import { Dealer, Subscriber } from 'zeromq';
import { Unpackr } from 'msgpackr';
import type { Provider, RegistryEvent } from '../bridge/index.ts';
import type { GatewayAddress, GatewayPool } from './gateways.ts';
import { View } from './view.ts';
import { FEED_SNAPSHOT_COMMAND, FEED_TOPIC_PREFIX, feedTopic, WATCH_MESSAGE } from '../bridge/protocol.ts';

export type WatchUpdate =
  | { type: 'event'; event: RegistryEvent }
  /** The view was replaced by a snapshot (first sync, a new epoch, or a resume the gateway could not serve). */
  | { type: 'snapshot'; epoch: string; rev: number; providers: Provider[] }
  /** Moved to another gateway (or reconnected to the same one); `reason` says what ended the previous connection. */
  | { type: 'failover'; gateway: string; reason: string; delayMs: number };

export interface WatchOptions {
  /** Only these services; all when absent. */
  services?: string[];
  transport?: 'websocket' | 'zmq';
  /** Updates waiting for the consumer before the watch stops with an error (it never buffers without bound). */
  maxQueued?: number;
  /**
   * First pause before trying again once every gateway has failed in a row; it doubles with each further round
   * (with jitter, so many clients do not reconnect in step), up to `maxRetryDelayMs`.
   */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /**
   * ZeroMQ watch of a feed with CURVE on (`--feed-curve-secret-key`): the feed's public key (`serverKey`) and this
   * client's pair, whose public key is on the gateway's `--feed-curve-allow` list.
   */
  feedCurve?: CurveClientKeys;
}

export const DEFAULT_RETRY_DELAY_MS = 200;
export const DEFAULT_MAX_RETRY_DELAY_MS = 5000;

/** Exponential backoff with jitter (as nats.js reconnects): 0 in the first round over the gateways, then growing. */
export function retryDelay(failures: number, gateways: number, baseMs: number, maxMs: number): number {
  const rounds = Math.floor(failures / gateways);
  if (rounds === 0) return 0;
  const ceiling = Math.min(maxMs, baseMs * 2 ** (rounds - 1));
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const plain = new Unpackr({ useRecords: false, mapsAsObjects: true });

export class Watch implements AsyncIterable<WatchUpdate> {
  readonly view = new View();
  readonly #pool: GatewayPool;
  readonly #opts: Required<Omit<WatchOptions, 'services' | 'feedCurve'>> & {
    services: string[];
    feedCurve?: CurveClientKeys;
  };
  readonly #listeners = new Set<(u: WatchUpdate) => void>();
  #queue: WatchUpdate[] = [];
  #wake: (() => void) | null = null;
  #closed = false;
  #error: Error | null = null;
  #ws: WebSocket | null = null;
  #zmq: { sub: Subscriber; dealer: Dealer } | null = null;
  #ready!: () => void;
  /** Resolves once the first snapshot has been applied. */
  readonly ready: Promise<void>;
  #failures = 0;
  /** Why the last connection ended, for `failover` updates and debugging. */
  lastError: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  /** Which gateway serves the watch now. */
  gateway: GatewayAddress;

  get services(): readonly string[] {
    return this.#opts.services;
  }

  constructor(pool: GatewayPool, opts: WatchOptions) {
    this.#pool = pool;
    this.#opts = {
      services: opts.services ?? [],
      transport: opts.transport ?? 'websocket',
      maxQueued: opts.maxQueued ?? 100_000,
      retryDelayMs: opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
      maxRetryDelayMs: opts.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
      ...(opts.feedCurve ? { feedCurve: opts.feedCurve } : {}),
    };
    this.ready = new Promise((resolve) => (this.#ready = resolve));
    this.gateway = pool.current;
    this.#connect(this.gateway);
  }

  /** Called for every update as it is applied (in addition to async iteration). */
  on(listener: (u: WatchUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  providers(service?: string): Provider[] {
    return service ? this.view.service(service) : [...this.view.providers.values()];
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchUpdate> {
    for (;;) {
      if (this.#queue.length > 0) {
        yield this.#queue.shift()!;
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#ws?.terminate();
    this.#zmq?.sub.close();
    this.#zmq?.dealer.close();
    this.#wake?.();
  }

  #emit(update: WatchUpdate): void {
    for (const l of this.#listeners) l(update);
    if (this.#queue.length >= this.#opts.maxQueued) {
      this.#error = new Error(`watch consumer is more than ${this.#opts.maxQueued} updates behind`);
      this.close();
      return;
    }
    this.#queue.push(update);
    this.#wake?.();
  }

  #onSnapshot(s: { epoch: string; rev: number; providers: Provider[] }): void {
    this.view.reset(s);
    this.#failures = 0;
    this.#emit({ type: 'snapshot', epoch: s.epoch, rev: s.rev, providers: s.providers });
    this.#ready();
  }

  #onEvent(e: RegistryEvent): void {
    if (this.view.epoch !== e.epoch) return; // the gateway sends a snapshot on a new epoch
    if (this.view.apply(e)) {
      this.#failures = 0;
      this.#emit({ type: 'event', event: e });
    }
  }

  /** After a failure: the next gateway, at once the first time round, then with a growing pause. */
  #failover(from: GatewayAddress, reason: string): void {
    if (this.#closed) return;
    this.#ws = null;
    this.lastError = `${from.url}: ${reason}`;
    const next = this.#pool.advance(from);
    this.#failures++;
    const delay = retryDelay(
      this.#failures,
      this.#pool.gateways.length,
      this.#opts.retryDelayMs,
      this.#opts.maxRetryDelayMs,
    );
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#closed) return;
      this.gateway = next;
      this.#emit({ type: 'failover', gateway: next.url, reason: this.lastError ?? reason, delayMs: delay });
      this.#connect(next);
    }, delay);
  }

  #connect(gateway: GatewayAddress): void {
    if (this.#opts.transport === 'zmq') this.#connectZmq(gateway);
    else this.#connectWs(gateway);
  }

  #connectWs(gateway: GatewayAddress): void {
    const query = new URLSearchParams();
    for (const s of this.#opts.services) query.append('service', s);
    if (this.view.epoch) {
      query.set('epoch', this.view.epoch);
      query.set('rev', String(this.view.rev));
    }
    const ws = new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/v1/watch?${query.toString()}`, {
      handshakeTimeout: 5000,
      headers: { ...this.#pool.authHeaders },
    });
    this.#ws = ws;
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) return ws.terminate(); // no pong since the last ping: the gateway hangs
      alive = false;
      ws.ping();
    }, 2000);
    ws.on('pong', () => (alive = true));
    ws.on('message', (data) => {
      alive = true;
      let m: { type?: string } & Record<string, unknown>;
      try {
        m = JSON.parse((data as Buffer).toString()) as typeof m;
      } catch {
        return;
      }
      if (m.type === WATCH_MESSAGE.snapshot)
        this.#onSnapshot(m as unknown as { epoch: string; rev: number; providers: Provider[] });
      else if (m.type === WATCH_MESSAGE.event) {
        const { type: _t, ...event } = m;
        this.#onEvent(event as unknown as RegistryEvent);
      } else if (m.type === WATCH_MESSAGE.resumed) this.#failures = 0;
    });
    let failure = 'connection closed';
    ws.on('error', (err) => {
      failure = describe(err); // 'close' follows and fails over
    });
    ws.on('close', (code, why) => {
      clearInterval(ping);
      if (code !== 1006 && code !== 1005) failure = `closed with ${code}${why.length ? ` ${why.toString()}` : ''}`;
      if (this.#ws === ws) this.#failover(gateway, failure);
    });
  }

  #connectZmq(gateway: GatewayAddress): void {
    if (!gateway.pub || !gateway.snapshot) {
      this.#error = new Error(`gateway ${gateway.url} has no pub/snapshot endpoints for a ZeroMQ watch`);
      this.close();
      return;
    }
    const sub = new Subscriber({
      linger: 0,
      heartbeatInterval: 1000,
      heartbeatTimeout: 3000,
      maxMessageSize: 64 * 1024 * 1024,
      ...curveClientOptions(this.#opts.feedCurve),
    });
    const dealer = new Dealer({
      linger: 0,
      receiveTimeout: 5000,
      sendTimeout: 1000,
      maxMessageSize: 512 * 1024 * 1024,
      ...curveClientOptions(this.#opts.feedCurve),
    });
    this.#zmq = { sub, dealer };
    const topics = this.#opts.services.length ? this.#opts.services.map(feedTopic) : [FEED_TOPIC_PREFIX];
    sub.subscribe(...topics);
    sub.connect(gateway.pub);
    dealer.connect(gateway.snapshot);
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed || this.#closed) return;
      failed = true;
      sub.close();
      dealer.close();
      this.#failover(gateway, describe(err));
    };
    void (async () => {
      for await (const ev of sub.events) {
        if (ev.type === 'disconnect') return fail(`feed ${gateway.pub} disconnected`);
      }
    })().catch(fail);
    // Subscribe first, then snapshot; events not newer than the snapshot are skipped (Clone pattern). `prev` on
    // each event tells a drop from a jump over other services' changes: then snapshot again.
    const wanted = new Set(this.#opts.services);
    let pending: RegistryEvent[] | null = [];
    let base = 0;
    const last = new Map<string, number>();
    const sync = async (): Promise<void> => {
      pending ??= [];
      await dealer.send([FEED_SNAPSHOT_COMMAND, this.#opts.services.length === 1 ? this.#opts.services[0] : '']);
      const [frame] = await dealer.receive();
      const snap = plain.unpack(frame) as { epoch: string; rev: number; providers: Provider[] };
      base = snap.rev;
      last.clear();
      this.#onSnapshot({
        ...snap,
        providers: wanted.size ? snap.providers.filter((p) => wanted.has(p.service)) : snap.providers,
      });
      const queued = pending;
      pending = null;
      for (const e of queued) take(e);
    };
    const take = (e: RegistryEvent): void => {
      if (pending) {
        pending.push(e);
        return;
      }
      if (e.epoch === this.view.epoch && e.rev <= base) return;
      if (e.epoch !== this.view.epoch || (e.prev ?? 0) > (last.get(e.service) ?? base)) {
        pending = [e];
        sync().catch(fail);
        return;
      }
      last.set(e.service, e.rev);
      this.#onEvent(e);
    };
    void (async () => {
      for await (const [, body] of sub) take(plain.unpack(body) as RegistryEvent);
    })().catch((err: unknown) => fail(`feed ${gateway.pub}: ${describe(err)}`));
    sync().catch((err: unknown) => fail(`snapshot from ${gateway.snapshot}: ${describe(err)}`));
  }
}

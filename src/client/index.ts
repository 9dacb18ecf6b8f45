/**
 * The Node client of Switchboard (`switchboard/client`): register and deregister providers, beat for them over
 * ZeroMQ, look services up (with a local cache), and watch changes — across a list of gateways, failing over from
 * one to the next and resuming where it left off.
 *
 * ```ts
 * const sb = new SwitchboardClient({ gateways: ['http://127.0.0.1:7700', 'http://127.0.0.1:7800'] });
 * const me = await sb.announce({ service: 'billing', host: '127.0.0.1', port: 9001, protocol: 'rpc-server' });
 * const billing = await sb.lookup('billing');              // up providers
 * const watch = sb.watch({ services: ['billing'] });
 * for await (const update of watch) console.log(update);
 * ```
 */
import type { Provider, ProviderInput, Protocol } from '../bridge/index.ts';
import { GatewayPool, type GatewayAddress } from './gateways.ts';
import { HeartbeatPublisher } from './heartbeat.ts';
import { Watch, type WatchOptions, type WatchUpdate } from './watch.ts';

export { HeartbeatPublisher, Watch, GatewayPool };
export type { GatewayAddress, WatchOptions, WatchUpdate, Provider, ProviderInput, Protocol };
export type { CurveClientKeys } from '../bridge/curve.ts';
export { SwitchboardError, NoGatewayError } from './errors.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
export const DEFAULT_LOOKUP_CACHE_MS = 1000;

export interface ClientOptions {
  /** Gateway base URLs (or addresses with their ZeroMQ feed endpoints), tried in order. */
  gateways: Array<string | GatewayAddress>;
  requestTimeoutMs?: number;
  /** How long a lookup answered over HTTP is reused. A watched service is always served from the watch. */
  lookupCacheMs?: number;
  /**
   * Deregister every provider this client announced when it closes, and close on SIGTERM/SIGINT (then let the
   * signal end the process as it would have): a clean shutdown leaves the service at once instead of after its
   * heartbeat is missed. Off by default.
   */
  deregisterOnClose?: boolean;
  /**
   * Access token (a token secret) for gateways with ACLs on: sent as `Authorization: Bearer` on every request and
   * WebSocket.
   */
  token?: string;
}

/** How long `close()` waits for the deregistrations of `deregisterOnClose`. */
export const DEREGISTER_ON_CLOSE_TIMEOUT_MS = 2000;

const LOOPBACK = /^(127\.|::1$|localhost$)/i;

/**
 * Where the heartbeat socket binds and the endpoint workers are told to connect to. A provider registered under a
 * routable host must be reachable there by workers on other machines, so it binds every interface and advertises
 * that host; a loopback provider stays on loopback.
 */
export function heartbeatEndpoints(
  host: string,
  bind?: string,
  advertise?: string,
): { bind: string; advertise?: string } {
  if (bind) return { bind, advertise };
  if (LOOPBACK.test(host)) return { bind: 'tcp://127.0.0.1:*', advertise };
  const wildcard = host.includes(':') ? 'tcp://[::]:*' : 'tcp://0.0.0.0:*';
  return { bind: wildcard, advertise: advertise ?? `tcp://${host.includes(':') ? `[${host}]` : host}:*` };
}

export interface LookupOptions {
  /** Default `up`; `all` for every state. */
  state?: Provider['state'] | 'all';
  tag?: string;
  protocol?: Protocol;
}

interface CacheEntry {
  at: number;
  providers: Provider[];
}

export class SwitchboardClient {
  readonly pool: GatewayPool;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #watches = new Set<Watch>();
  readonly #heartbeats = new Set<HeartbeatPublisher>();
  /** Providers announced by this client, deregistered on close when `deregisterOnClose`. */
  readonly #announced = new Set<string>();
  readonly #deregisterOnClose: boolean;
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    process.removeListener('SIGTERM', this.#onSignal);
    process.removeListener('SIGINT', this.#onSignal);
    // Deregister, then end the process the way the signal would have without us.
    void this.close().finally(() => process.kill(process.pid, signal));
  };
  #closing: Promise<void> | null = null;

  constructor(opts: ClientOptions) {
    this.pool = new GatewayPool(opts.gateways, opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, opts.token);
    this.#cacheMs = opts.lookupCacheMs ?? DEFAULT_LOOKUP_CACHE_MS;
    this.#deregisterOnClose = opts.deregisterOnClose ?? false;
  }

  /** Registers or updates a provider; resolves once durable. With `id`, under that id; without, the server's stable id. */
  async register(input: ProviderInput, id?: string): Promise<Provider> {
    const res = id
      ? await this.pool.request<Provider>('PUT', `/v1/providers/${encodeURIComponent(id)}`, input)
      : await this.pool.request<Provider>('POST', '/v1/providers', input);
    return res.body;
  }

  async deregister(id: string): Promise<void> {
    await this.pool.request('DELETE', `/v1/providers/${encodeURIComponent(id)}`);
    this.#announced.delete(id);
  }

  async get(id: string): Promise<Provider> {
    return (await this.pool.request<Provider>('GET', `/v1/providers/${encodeURIComponent(id)}`)).body;
  }

  /** A TTL check pass. */
  async pass(id: string): Promise<void> {
    await this.pool.request('PUT', `/v1/providers/${encodeURIComponent(id)}/ttl`);
  }

  /**
   * Registers this process as a provider watched by ZeroMQ heartbeats: binds a PUB socket, starts beating, and
   * registers with a `zmq` check on that endpoint. The socket binds every interface and is advertised as
   * `tcp://<input.host>:<port>` (loopback only when `input.host` is loopback); `heartbeatBind` and
   * `heartbeatAdvertise` (`*` as the port means the bound one) override that. The publisher stops on `close()`; a
   * crash of this process is seen by the worker within milliseconds.
   */
  async announce(
    input: Omit<ProviderInput, 'check'>,
    opts: {
      id?: string;
      heartbeatBind?: string;
      heartbeatAdvertise?: string;
      beatIntervalMs?: number;
      checkIntervalMs?: number;
      misses?: number;
    } = {},
  ): Promise<Provider & { heartbeat: HeartbeatPublisher }> {
    const where = heartbeatEndpoints(input.host, opts.heartbeatBind, opts.heartbeatAdvertise);
    const heartbeat = new HeartbeatPublisher({ bind: where.bind, intervalMs: opts.beatIntervalMs ?? 250 });
    const bound = await heartbeat.start();
    const port = bound.slice(bound.lastIndexOf(':') + 1);
    const endpoint = where.advertise ? where.advertise.replace(/:\*$/, `:${port}`) : bound;
    this.#heartbeats.add(heartbeat);
    try {
      const check = {
        type: 'zmq' as const,
        endpoint,
        intervalMs: opts.checkIntervalMs ?? 1000,
        misses: opts.misses ?? 3,
      };
      const provider = await this.register({ ...input, check }, opts.id);
      heartbeat.add(provider.id);
      this.#announced.add(provider.id);
      if (this.#deregisterOnClose && this.#announced.size === 1) {
        process.once('SIGTERM', this.#onSignal);
        process.once('SIGINT', this.#onSignal);
      }
      return { ...provider, heartbeat };
    } catch (err) {
      heartbeat.close();
      this.#heartbeats.delete(heartbeat);
      throw err;
    }
  }

  /**
   * The providers of `service` (by default those `up`). Served from a running watch of that service when there
   * is one, else from a gateway and cached for `lookupCacheMs`; if no gateway answers, the last answer is returned
   * rather than nothing (stale is better than empty for a phonebook).
   */
  async lookup(service: string, opts: LookupOptions = {}): Promise<Provider[]> {
    const state = opts.state ?? 'up';
    const keep = (p: Provider): boolean =>
      (state === 'all' || p.state === state) &&
      (opts.tag === undefined || p.tags.includes(opts.tag)) &&
      (opts.protocol === undefined || p.protocol === opts.protocol);
    for (const w of this.#watches) {
      if (w.view.epoch !== null && (w.services.length === 0 || w.services.includes(service)))
        return w.providers(service).filter(keep);
    }
    const cached = this.#cache.get(service);
    if (cached && Date.now() - cached.at < this.#cacheMs) return cached.providers.filter(keep);
    try {
      const res = await this.pool.request<{ providers: Provider[] }>(
        'GET',
        `/v1/services/${encodeURIComponent(service)}`,
      );
      this.#cache.set(service, { at: Date.now(), providers: res.body.providers });
      return res.body.providers.filter(keep);
    } catch (err) {
      if (cached) return cached.providers.filter(keep);
      throw err;
    }
  }

  /** Follows changes, failing over between gateways. Iterate it, or use `on()`; `close()` it when done. */
  watch(opts: WatchOptions = {}): Watch {
    const watch = new Watch(this.pool, opts);
    this.#watches.add(watch);
    const close = watch.close.bind(watch);
    watch.close = () => {
      this.#watches.delete(watch);
      close();
    };
    return watch;
  }

  /**
   * Stops every watch and heartbeat publisher this client started; with `deregisterOnClose`, deregisters the
   * providers it announced first (bounded by `DEREGISTER_ON_CLOSE_TIMEOUT_MS`). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    process.removeListener('SIGTERM', this.#onSignal);
    process.removeListener('SIGINT', this.#onSignal);
    for (const w of [...this.#watches]) w.close();
    if (this.#deregisterOnClose && this.#announced.size > 0) {
      const ids = [...this.#announced];
      const done = Promise.allSettled(ids.map((id) => this.deregister(id)));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, DEREGISTER_ON_CLOSE_TIMEOUT_MS)));
      await Promise.race([done, timeout]);
      clearTimeout(timer);
    }
    this.#announced.clear();
    for (const h of this.#heartbeats) h.close();
    this.#heartbeats.clear();
  }
}

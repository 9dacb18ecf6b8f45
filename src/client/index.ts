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
export { SwitchboardError, NoGatewayError } from './errors.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
export const DEFAULT_LOOKUP_CACHE_MS = 1000;

export interface ClientOptions {
  /** Gateway base URLs (or addresses with their ZeroMQ feed endpoints), tried in order. */
  gateways: Array<string | GatewayAddress>;
  requestTimeoutMs?: number;
  /** How long a lookup answered over HTTP is reused. A watched service is always served from the watch. */
  lookupCacheMs?: number;
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

  constructor(opts: ClientOptions) {
    this.pool = new GatewayPool(opts.gateways, opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.#cacheMs = opts.lookupCacheMs ?? DEFAULT_LOOKUP_CACHE_MS;
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
  }

  async get(id: string): Promise<Provider> {
    return (await this.pool.request<Provider>('GET', `/v1/providers/${encodeURIComponent(id)}`)).body;
  }

  /** A TTL check pass. */
  async pass(id: string): Promise<void> {
    await this.pool.request('PUT', `/v1/providers/${encodeURIComponent(id)}/ttl`);
  }

  /**
   * Registers this process as a provider watched by ZeroMQ heartbeats: binds a PUB socket (`heartbeatBind`, any
   * free port on 127.0.0.1 by default), starts beating, and registers with a `zmq` check on that endpoint. The
   * publisher stops on `close()`; a crash of this process is seen by the worker within milliseconds.
   */
  async announce(
    input: Omit<ProviderInput, 'check'>,
    opts: {
      id?: string;
      heartbeatBind?: string;
      beatIntervalMs?: number;
      checkIntervalMs?: number;
      misses?: number;
    } = {},
  ): Promise<Provider & { heartbeat: HeartbeatPublisher }> {
    const heartbeat = new HeartbeatPublisher({
      bind: opts.heartbeatBind ?? 'tcp://127.0.0.1:*',
      intervalMs: opts.beatIntervalMs ?? 250,
    });
    const endpoint = await heartbeat.start();
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

  /** Stops every watch and heartbeat publisher this client started. */
  close(): void {
    for (const w of [...this.#watches]) w.close();
    for (const h of this.#heartbeats) h.close();
    this.#heartbeats.clear();
  }
}

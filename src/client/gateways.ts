/**
 * The client's list of gateways. Requests go to the current gateway; a network failure, a timeout or a 503 moves to
 * the next one. Gateways are interchangeable replicas, so any of them answers any request.
 */
import { NoGatewayError, SwitchboardError } from './errors.ts';

/** Statuses that say "not this gateway, not now" rather than "not this request". */
const RETRY_ELSEWHERE = new Set([502, 503, 504]);

export interface GatewayAddress {
  /** Base URL of the REST API, e.g. http://127.0.0.1:7700 */
  url: string;
  /** The gateway's native ZeroMQ feed (PUB) and snapshot (ROUTER) endpoints, for `watch({ transport: 'zmq' })`. */
  pub?: string;
  snapshot?: string;
}

export class GatewayPool {
  readonly gateways: readonly GatewayAddress[];
  #current = 0;
  readonly #timeoutMs: number;
  /** Headers sent with every request and WebSocket: the token, when the gateways have ACLs on. */
  readonly authHeaders: Readonly<Record<string, string>>;

  constructor(gateways: Array<string | GatewayAddress>, timeoutMs: number, token?: string) {
    if (gateways.length === 0) throw new TypeError('at least one gateway is needed');
    this.gateways = gateways
      .map((g) => (typeof g === 'string' ? { url: g } : g))
      .map((g) => ({ ...g, url: g.url.replace(/\/+$/, '') }));
    this.#timeoutMs = timeoutMs;
    this.authHeaders = Object.freeze<Record<string, string>>(token ? { authorization: `Bearer ${token}` } : {});
  }

  get current(): GatewayAddress {
    return this.gateways[this.#current];
  }

  /** Moves to the next gateway (after `from`, so concurrent failures move once). */
  advance(from: GatewayAddress): GatewayAddress {
    if (this.current === from) this.#current = (this.#current + 1) % this.gateways.length;
    return this.current;
  }

  /** JSON request with failover; resolves with the parsed body (undefined for 204). */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T; headers: Headers }> {
    const causes: unknown[] = [];
    for (let attempt = 0; attempt < this.gateways.length; attempt++) {
      const gateway = this.current;
      let res: Response;
      try {
        res = await fetch(`${gateway.url}${path}`, {
          method,
          headers: body === undefined ? this.authHeaders : { ...this.authHeaders, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (err) {
        causes.push(err);
        this.advance(gateway);
        continue;
      }
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? (JSON.parse(text) as unknown) : undefined;
      } catch {
        // Not a gateway's answer (an HTML 502 from a proxy, a half-written body): this gateway cannot serve it now.
        causes.push(
          new SwitchboardError(
            res.status,
            'SB_BAD_RESPONSE',
            `${gateway.url} answered ${res.status} with a body that is not JSON`,
          ),
        );
        this.advance(gateway);
        continue;
      }
      if (res.status >= 400) {
        const e = (parsed ?? {}) as { code?: string; message?: string };
        const error = new SwitchboardError(res.status, e.code ?? 'SB_HTTP_ERROR', e.message ?? res.statusText);
        // 502/503/504: this gateway (or the proxy before it) cannot serve it now; another may.
        if (RETRY_ELSEWHERE.has(res.status) && attempt < this.gateways.length - 1) {
          causes.push(error);
          this.advance(gateway);
          continue;
        }
        throw error;
      }
      return { status: res.status, body: parsed as T, headers: res.headers };
    }
    throw new NoGatewayError(causes);
  }
}

/**
 * The token check of every public route (Consul's ACL model; the records and the decision are bridge/acl.ts).
 *
 * - A token travels as `Authorization: Bearer <secret>`, `X-Switchboard-Token` (or Consul's `X-Consul-Token`), and
 *   on the two streams also as `?token=` (a browser's WebSocket and EventSource cannot set headers).
 * - `ROUTE_NEEDS` is the one place that says what each route needs. A route missing from it fails the gateway at
 *   startup, so a new route cannot ship unguarded.
 * - No token, or one the gateway does not know: 401 SB_UNAUTHENTICATED. A known token without the right: 403
 *   SB_PERMISSION_DENIED naming the service (or `admin`). Lists are filtered to what the token may read instead.
 * - With ACLs off every check passes and nothing is filtered (a loopback-only gateway, `switchboard start`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AclIndex, AclNeed, ResolvedToken } from '../bridge/index.ts';
import { whoOf, type Who } from './audit.ts';
import { httpError } from './errors.ts';
import { routeUrl } from './route-url.ts';

/**
 * What a route needs:
 * - `public`: nothing (health, readiness, API docs, the dashboard's static files, refusals that say nothing);
 * - `token`: any known token; the answer is filtered to the services it may read (lists, streams, Consul reads);
 * - `read:name`: read on the service in the `:name` parameter;
 * - `read:provider`: read on the service of the provider in `:id`;
 * - `write:provider`: write on the service of the provider in `:id` (when it exists) and on the body's `service`
 *   (checked once the body is parsed), so a PUT cannot move an id out of a service it may not write;
 * - `admin`: a token with an admin policy.
 */
export type RouteNeed = 'public' | 'token' | 'read:name' | 'read:provider' | 'write:provider' | 'admin';

/** Every route of the gateway, `METHOD pattern` → its need. Prefix patterns (ending in `*`) cover a subtree. */
export const ROUTE_NEEDS: Readonly<Record<string, RouteNeed>> = {
  // Operations: Consul keeps health endpoints open, and so do we (they carry no registry data).
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  // Leader internals and gateway counters: any token (a scrape config sends one as `authorization`).
  'GET /metrics': 'token',
  'GET /docs*': 'public',
  // The dashboard's static files (it asks for a token itself, then calls the API with it).
  'GET /': 'public',
  'GET /ui*': 'public',
  // Lookups
  'GET /v1/services': 'token',
  'GET /v1/services/:name': 'read:name',
  'GET /v1/providers/:id': 'read:provider',
  'GET /v1/sd/prometheus': 'token',
  // Writes
  'PUT /v1/providers/:id': 'write:provider',
  'POST /v1/providers': 'write:provider',
  // A batch: any token here; each item is checked as its single route would be (its own 403 in the results).
  'PUT /v1/providers': 'token',
  'DELETE /v1/providers/:id': 'write:provider',
  'PUT /v1/providers/:id/ttl': 'write:provider',
  'PUT /v1/providers/:id/maintenance': 'write:provider',
  // Streams: filtered to what the token reads; a named service it may not read is refused.
  'GET /v1/watch': 'token',
  'GET /v1/events': 'token',
  // Consul's read API: filtered like Consul does (an unreadable service reads as empty).
  'GET /v1/catalog/services': 'token',
  'GET /v1/catalog/service/:name': 'token',
  'GET /v1/health/service/:name': 'token',
  'GET /v1/health/checks/:name': 'token',
  'GET /v1/agent/self': 'token',
  'GET /v1/catalog/datacenters': 'token',
  // Consul answers this one without a token too.
  'GET /v1/status/leader': 'public',
  // Consul writes answer 405 whoever asks: refusing them says nothing.
  'PUT /v1/agent/*': 'public',
  'PUT /v1/catalog/*': 'public',
  'PUT /v1/health/*': 'public',
  'PUT /v1/kv/*': 'public',
  'PUT /v1/session/*': 'public',
  'PUT /v1/txn/*': 'public',
  'PUT /v1/event/*': 'public',
  'PUT /v1/operator/*': 'public',
  // Operator actions
  'GET /v1/admin/cluster': 'admin',
  'POST /v1/admin/release-guard': 'admin',
  'GET /v1/admin/snapshot': 'admin',
  // Tokens and policies; a token may always read itself.
  'GET /v1/acl/token/self': 'token',
  'GET /v1/acl/tokens': 'admin',
  'POST /v1/acl/tokens': 'admin',
  'GET /v1/acl/tokens/:accessor': 'admin',
  'PUT /v1/acl/tokens/:accessor': 'admin',
  'DELETE /v1/acl/tokens/:accessor': 'admin',
  'GET /v1/acl/policies': 'admin',
  'GET /v1/acl/policies/:name': 'admin',
  'PUT /v1/acl/policies/:name': 'admin',
  'DELETE /v1/acl/policies/:name': 'admin',
};

/** Consul's write refusals are registered for several methods under one pattern; one entry (PUT) stands for all. */
const SAME_AS_PUT = new Set(['POST', 'DELETE', 'PATCH']);

/** The need of a route (method and pattern as Fastify registers it), or undefined when the table misses it. */
export function routeNeed(method: string, url: string): RouteNeed | undefined {
  const exact = ROUTE_NEEDS[`${method} ${url}`];
  if (exact) return exact;
  for (const m of SAME_AS_PUT.has(method) ? [method, 'PUT'] : [method]) {
    for (const [key, need] of Object.entries(ROUTE_NEEDS)) {
      if (!key.endsWith('*')) continue;
      const [km, kp] = key.split(' ');
      if (km === m && url.startsWith(kp.slice(0, -1))) return need;
    }
  }
  return undefined;
}

/** Where the token check reads the current tokens and policies: the follower's replica of them. */
export interface AclSource {
  readonly acl: AclIndex;
  /** Called after each new ACL state (open streams re-check their tokens); absent for a fixed state. */
  onAcl?(listener: () => void): () => void;
}

/** Headers a token may come in, in order of preference. */
const TOKEN_HEADERS = ['x-switchboard-token', 'x-consul-token'] as const;
/** Routes where `?token=` is accepted: browsers cannot set headers on a WebSocket or an EventSource. */
const QUERY_TOKEN_ROUTES = new Set(['/v1/watch', '/v1/events']);

/** The secret a request carries, or undefined. */
export function tokenOf(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  for (const h of TOKEN_HEADERS) {
    const v = request.headers[h];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  if (QUERY_TOKEN_ROUTES.has(routeUrl(request) ?? '')) {
    const q = (request.query as { token?: unknown } | undefined)?.token;
    if (typeof q === 'string' && q !== '') return q;
  }
  return undefined;
}

/** A URL fit for a log line: the value of `token=` replaced. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The token that authenticated this request (null with ACLs off, or on a public route without one). */
    aclToken: ResolvedToken | null;
  }
}

/** `read` on `service`, as the decision names it. */
const read = (service: string): AclNeed => ({ access: 'read', service });
const write = (service: string): AclNeed => ({ access: 'write', service });

export interface GatewayAclOptions {
  /** ACLs on: every route but the public ones needs a token. */
  enabled: boolean;
  source: AclSource;
  /** The service of a registered provider (from the replica). */
  serviceOf: (id: string) => string | undefined;
}

export class GatewayAcl {
  readonly enabled: boolean;
  readonly #source: AclSource;
  readonly #serviceOf: (id: string) => string | undefined;
  /** Secrets of live requests, for stream filters that follow ACL changes (never logged, gone with the request). */
  readonly #secrets = new WeakMap<FastifyRequest, string>();

  constructor(opts: GatewayAclOptions) {
    this.enabled = opts.enabled;
    this.#source = opts.source;
    this.#serviceOf = opts.serviceOf;
  }

  /** The current tokens and policies (empty until the follower has fetched them). */
  get index(): AclIndex {
    return this.#source.acl;
  }

  /**
   * Hooks on the root instance (call before the routes): every route must be in `ROUTE_NEEDS`; onRequest
   * authenticates and checks what is known before the body; preHandler checks a write's body `service`.
   */
  install(app: FastifyInstance): void {
    app.decorateRequest('aclToken', null);
    app.addHook('onRoute', (route) => {
      for (const m of Array.isArray(route.method) ? route.method : [route.method]) {
        const method = m === 'HEAD' ? 'GET' : m;
        if (method !== 'OPTIONS' && routeNeed(method, route.url) === undefined)
          throw new Error(`route ${m} ${route.url} has no entry in ROUTE_NEEDS (src/gateway/acl.ts)`);
      }
    });
    if (!this.enabled) return;
    // Callback hooks, not async ones: they run on every request, and a promise per hook per request shows in
    // the lookup profile.
    app.addHook('onRequest', (request, _reply, done) => {
      try {
        this.#onRequest(request);
      } catch (err) {
        done(err as Error);
        return;
      }
      done();
    });
    app.addHook('preHandler', (request, _reply, done) => {
      try {
        if (request.aclToken !== null && this.#need(request) === 'write:provider') {
          const service = (request.body as { service?: unknown } | undefined)?.service;
          if (typeof service === 'string') this.require(request, write(service));
        }
      } catch (err) {
        done(err as Error);
        return;
      }
      done();
    });
  }

  #need(request: FastifyRequest): RouteNeed {
    const url = routeUrl(request);
    // No route (404), or a CORS preflight: nothing to guard.
    if (url === undefined || request.method === 'OPTIONS') return 'public';
    return routeNeed(request.method === 'HEAD' ? 'GET' : request.method, url) ?? 'admin';
  }

  #onRequest(request: FastifyRequest): void {
    const need = this.#need(request);
    if (need === 'public') return;
    this.authenticate(request);
    const params = request.params as { id?: string; name?: string } | undefined;
    switch (need) {
      case 'admin':
        return this.require(request, { access: 'admin' });
      case 'read:name':
        if (params?.name) this.require(request, read(params.name));
        return;
      case 'read:provider':
      case 'write:provider': {
        const service = params?.id ? this.#serviceOf(params.id) : undefined;
        if (service) this.require(request, need === 'read:provider' ? read(service) : write(service));
        return;
      }
      case 'token':
        return;
    }
  }

  /** The request's token, resolved; 401 when it carries none or one the gateway does not know. */
  authenticate(request: FastifyRequest): ResolvedToken {
    const secret = tokenOf(request);
    if (secret === undefined)
      throw httpError(
        'SB_UNAUTHENTICATED',
        'this gateway requires a token: send Authorization: Bearer <secret> (or X-Switchboard-Token)',
      );
    const token = this.index.resolve(secret);
    if (!token) throw httpError('SB_UNAUTHENTICATED', 'the token is not known to this gateway (revoked, or mistyped)');
    request.aclToken = token;
    request.tokenAccessor = token.accessor;
    this.#secrets.set(request, secret);
    return token;
  }

  /** 403 naming what is missing, unless the request's token allows `need` (always allowed with ACLs off). */
  require(request: FastifyRequest, need: AclNeed): void {
    if (!this.enabled) return;
    const token = request.aclToken ?? this.authenticate(request);
    if (token.allows(need)) return;
    throw httpError(
      'SB_PERMISSION_DENIED',
      need.access === 'admin'
        ? `token ${token.accessor} lacks admin (an admin policy), which this route needs`
        : `token ${token.accessor} lacks ${need.access} on service '${need.service}'`,
    );
  }

  /** May this request read `service`? (true with ACLs off) */
  canRead(request: FastifyRequest, service: string): boolean {
    return !this.enabled || (request.aclToken?.allows(read(service)) ?? false);
  }

  /**
   * A blocking query's check again, once its wait is over: the answer is filtered by the token as it is now, so a
   * token revoked (401) or narrowed (403, or fewer services listed) while the query waited sees no more than it may.
   */
  reauthorize(request: FastifyRequest): void {
    if (this.enabled && request.aclToken !== null) this.#onRequest(request);
  }

  /**
   * The check of a stream being opened: read on every service it names, and on at least one service when it names
   * none (a stream that could carry nothing is refused now, as it would be ended at the next ACL change).
   */
  requireStream(request: FastifyRequest, services: readonly string[] | undefined): void {
    if (!this.enabled) return;
    for (const service of services ?? []) this.require(request, read(service));
    const why = this.streamAccess(request)?.revocation(services?.length ? new Set(services) : null);
    if (why) throw httpError(why.code, why.message);
  }

  /**
   * What a stream that outlives its request may read, following ACL changes (see {@link StreamAccess}). Null with
   * ACLs off (everything passes).
   */
  streamAccess(request: FastifyRequest): StreamAccess | null {
    if (!this.enabled) return null;
    const token = request.aclToken ?? this.authenticate(request);
    return new StreamAccess(this.#source, this.#secrets.get(request) ?? '', token, whoOf(request));
  }
}

/** Why an open stream ends after an ACL change: the token is gone (401), or reads none of what it watches (403). */
export interface StreamRevocation {
  code: 'SB_UNAUTHENTICATED' | 'SB_PERMISSION_DENIED';
  status: 401 | 403;
  message: string;
}

/**
 * The token of an open stream (WebSocket, SSE), re-resolved once per ACL version and never per event: each event
 * is filtered by what the token reads now, and after every ACL change the hub asks {@link revocation} whether the
 * stream may go on at all (Consul and etcd end a watch whose token is revoked).
 */
export class StreamAccess {
  /** Who opened the stream, for the audit line of its end. */
  readonly who: Who;
  readonly #source: AclSource;
  readonly #secret: string;
  #index: AclIndex;
  #token: ResolvedToken | undefined;

  constructor(source: AclSource, secret: string, token: ResolvedToken, who: Who) {
    this.#source = source;
    this.#secret = secret;
    this.#index = source.acl;
    this.#token = token;
    this.who = who;
  }

  #current(): ResolvedToken | undefined {
    const index = this.#source.acl;
    if (index !== this.#index) {
      this.#index = index;
      this.#token = index.resolve(this.#secret);
    }
    return this.#token;
  }

  /** May the stream carry events of `service` now? */
  reads(service: string): boolean {
    return this.#current()?.allows(read(service)) ?? false;
  }

  /** Null while the stream may go on; else why it ends. `services`: its filter (null: every service). */
  revocation(services: ReadonlySet<string> | null): StreamRevocation | null {
    const token = this.#current();
    const accessor = this.who.token ?? '?';
    if (!token) return { code: 'SB_UNAUTHENTICATED', status: 401, message: `token ${accessor} was deleted (revoked)` };
    if (services === null ? token.readsAny() : [...services].some((s) => token.allows(read(s)))) return null;
    return {
      code: 'SB_PERMISSION_DENIED',
      status: 403,
      message:
        services === null
          ? `token ${accessor} reads no service`
          : `token ${accessor} reads none of ${[...services].join(', ')}`,
    };
  }
}

/** The OpenAPI security schemes: a bearer token, the same secret in a header, and `?token=` on the streams. */
export const SECURITY_SCHEMES = {
  bearer: {
    type: 'http',
    scheme: 'bearer',
    description: 'With ACLs on: `Authorization: Bearer <secret>` (a token secret, see /v1/acl/tokens)',
  },
  tokenHeader: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Switchboard-Token',
    description: "The token secret in a header (Consul's `X-Consul-Token` is accepted too)",
  },
  tokenQuery: {
    type: 'apiKey',
    in: 'query',
    name: 'token',
    description:
      'The token secret in the query: only on the streams (WebSocket, SSE), where browsers cannot set headers',
  },
} as const;

/**
 * A route's schema as the OpenAPI document shows it: its `security` from `ROUTE_NEEDS` (none for public routes)
 * and the 401/403 answers a guarded route can give.
 */
export function documentSecurity(
  schema: Record<string, unknown> | undefined,
  method: string | string[],
  url: string,
  errorRef: unknown,
): Record<string, unknown> | undefined {
  if (!schema) return schema;
  const m = Array.isArray(method) ? method[0] : method;
  const need = routeNeed(m === 'HEAD' ? 'GET' : m, url);
  if (need === undefined || need === 'public') return { ...schema, security: [] };
  const security: Array<Record<string, string[]>> = [{ bearer: [] }, { tokenHeader: [] }];
  if (QUERY_TOKEN_ROUTES.has(url)) security.push({ tokenQuery: [] });
  const response = { ...(schema.response as Record<string, unknown> | undefined) };
  response[401] ??= errorRef;
  response[403] ??= errorRef;
  return { ...schema, security, response };
}

/**
 * What keeps web pages a user opens from using the gateway behind the user's back:
 * - a Host allow-list (DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends
 *   `Host: evil.example`), 403 SB_FORBIDDEN_HOST;
 * - an Origin allow-list on the streams (WebSocket and SSE ignore CORS: a foreign page could read them) and on
 *   every state-changing request, 403 SB_FORBIDDEN_ORIGIN. A request without Origin is not from a browser page
 *   and passes (curl, SDKs, the CLI);
 * - state-changing requests with a body a page can send cross-site without a preflight (text/plain, forms) are
 *   refused, 415 SB_UNSUPPORTED_MEDIA_TYPE, unless they carry a token header (which forces a preflight);
 * - CORS on REST (`@fastify/cors`) with the same origin list, so allowed pages can read answers.
 * Same origin is always allowed, so the built-in dashboard works. The hooks run first in the request's life; the
 * token check (acl.ts) comes after them.
 */
import { hostname, networkInterfaces } from 'node:os';
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isUnspecifiedHost, normalizeHost } from '../bridge/index.ts';
import { httpError } from './errors.ts';
import { routeUrl } from './route-url.ts';

/** Hosts every gateway answers to: the loopback names. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'];
/** Routes whose answers are streams a foreign page could read, CORS or not. */
const STREAM_ROUTES = new Set(['/v1/watch', '/v1/events']);
const STATE_CHANGING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);
/** Content types a page may send cross-site without a CORS preflight. */
const SIMPLE_TYPES = new Set(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']);
/** Headers that make a request non-simple (a preflight first) and will carry tokens. */
export const TOKEN_HEADERS = ['authorization', 'x-switchboard-token', 'x-consul-token'];

export interface BrowserGuardOptions {
  /** Origins (`https://app.example:8443`) allowed besides the gateway's own; `*` allows any. */
  allowedOrigins: readonly string[];
  /** Host names (no port) the gateway answers to; `*` allows any. */
  allowedHosts: readonly string[];
  /** The gateway serves HTTPS: same origin is `https://<host>`. */
  tls: boolean;
}

/**
 * The default Host allow-list: loopback names and the listen address; on 0.0.0.0 / :: every address of this
 * machine's interfaces and its host name.
 */
export function defaultAllowedHosts(listenHost: string): string[] {
  const hosts = new Set(LOOPBACK_HOSTS);
  const h = normalizeHost(listenHost) ?? listenHost;
  if (isUnspecifiedHost(h)) {
    hosts.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) hosts.add(normalizeHost(a.address) ?? a.address);
  } else hosts.add(h.toLowerCase());
  return [...hosts];
}

/** A configured host name, as hostOfHeader spells it (lower case, no brackets, no trailing dot). */
function hostName(name: string): string {
  const bare = name
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  return normalizeHost(bare) ?? bare;
}

/** The host part of a Host header (`[::1]:7700` → `::1`), lower case, no trailing dot. */
export function hostOfHeader(header: string): string {
  let host = header.trim().toLowerCase();
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']') === -1 ? undefined : host.indexOf(']'));
  else if (host.includes(':')) host = host.slice(0, host.lastIndexOf(':'));
  if (host.endsWith('.')) host = host.slice(0, -1);
  return normalizeHost(host) ?? host;
}

function normalizeOrigin(origin: string): string | null {
  try {
    const u = new URL(origin);
    return u.origin === 'null' ? null : u.origin;
  } catch {
    return null;
  }
}

/** Allowed Host headers remembered verbatim (an attacker sending many distinct ones only empties the set). */
const MAX_REMEMBERED_HOSTS = 64;

export class BrowserGuard {
  readonly #anyHost: boolean;
  readonly #hosts: Set<string>;
  readonly #anyOrigin: boolean;
  readonly #origins: Set<string>;
  readonly #scheme: string;
  readonly #allowedHeaders = new Set<string>();

  constructor(opts: BrowserGuardOptions) {
    this.#anyHost = opts.allowedHosts.includes('*');
    this.#hosts = new Set(opts.allowedHosts.map((h) => hostName(h)));
    this.#anyOrigin = opts.allowedOrigins.includes('*');
    this.#origins = new Set();
    for (const o of opts.allowedOrigins) {
      if (o === '*') continue;
      const n = normalizeOrigin(o);
      if (!n) throw new Error(`allowed origin '${o}' is not an origin (e.g. https://app.example:8443)`);
      this.#origins.add(n);
    }
    this.#scheme = opts.tls ? 'https:' : 'http:';
  }

  /** Why this Host header is refused, or null. No Host header (HTTP/1.0) is not a browser: allowed. */
  hostRefusal(host: string | undefined): string | null {
    if (this.#anyHost || host === undefined || host === '') return null;
    // Nearly every request repeats one of a few Host headers: remember the allowed ones as sent.
    if (this.#allowedHeaders.has(host)) return null;
    const name = hostOfHeader(host);
    if (this.#hosts.has(name)) {
      if (this.#allowedHeaders.size >= MAX_REMEMBERED_HOSTS) this.#allowedHeaders.clear();
      this.#allowedHeaders.add(host);
      return null;
    }
    return `Host '${host.slice(0, 255)}' is not one this gateway answers to; add it with --allowed-hosts (DNS rebinding protection)`;
  }

  /** True when a page of `origin` may use this gateway (its own origin, or listed). */
  originAllowed(origin: string, host: string | undefined): boolean {
    if (this.#anyOrigin) return true;
    const n = normalizeOrigin(origin);
    if (n === null) return false;
    if (this.#origins.has(n)) return true;
    const u = new URL(n);
    return host !== undefined && u.protocol === this.#scheme && u.host === host.toLowerCase();
  }

  /** The onRequest check: Host, then Origin on streams and writes, then simple bodies on writes. */
  check(request: FastifyRequest): void {
    const host = request.headers.host;
    const hostWhy = this.hostRefusal(host);
    if (hostWhy) throw httpError('SB_FORBIDDEN_HOST', hostWhy);
    if (request.method === 'OPTIONS') return;
    const changes = STATE_CHANGING.has(request.method);
    const route = routeUrl(request);
    const origin = request.headers.origin;
    if (origin !== undefined && (changes || (route !== undefined && STREAM_ROUTES.has(route)))) {
      if (!this.originAllowed(origin, host))
        throw httpError(
          'SB_FORBIDDEN_ORIGIN',
          `origin '${origin.slice(0, 255)}' may not use this gateway; the operator can allow it with --allowed-origins`,
        );
    }
    if (!changes) return;
    const type = request.headers['content-type']?.split(';')[0].trim().toLowerCase();
    if (type !== undefined && SIMPLE_TYPES.has(type) && !TOKEN_HEADERS.some((h) => request.headers[h] !== undefined))
      throw httpError(
        'SB_UNSUPPORTED_MEDIA_TYPE',
        `a ${request.method} body must be application/json (got ${type}): a web page can send ${type} from any site`,
      );
  }

  /** Registers CORS (same list) and the onRequest check on the root instance; call before the routes. */
  async install(app: FastifyInstance): Promise<void> {
    await app.register(cors, {
      origin: (origin, cb) =>
        cb(null, origin === undefined ? false : this.#anyOrigin || this.#origins.has(normalizeOrigin(origin) ?? '')),
      methods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'],
      allowedHeaders: ['content-type', 'last-event-id', ...TOKEN_HEADERS],
      exposedHeaders: ['x-switchboard-index', 'x-switchboard-stale', 'retry-after'],
      maxAge: 600,
    });
    // A callback hook, not an async one: it runs on every request, and a promise per request is measurable.
    app.addHook('onRequest', (request, _reply, done) => {
      try {
        this.check(request);
      } catch (err) {
        done(err as Error);
        return;
      }
      done();
    });
  }
}

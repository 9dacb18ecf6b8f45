/**
 * The audit log: every write and admin action (and every stream a revocation ends, subscribers.ts), once, at info
 * level, as one structured line
 * `{ audit: true, who, action, method, route, service?, provider?, status, result }`, and counted in
 * `switchboard_audit_events_total{action,result}`. Refusals (403, 415, 429, 400) are logged too: they are what an
 * operator looks for after an incident. `who` is the remote address, its client key and, with ACLs on, the
 * accessor id of the request's token (set by the token check, acl.ts).
 */
import type {
  FastifyInstance,
  FastifyRequest,
  onResponseHookHandler,
  onSendHookHandler,
  preHandlerHookHandler,
} from 'fastify';
import type { Logger, Metrics } from '../bridge/index.ts';
import { clientKey } from './clients.ts';
import { routeUrl } from './route-url.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Accessor id of the token that authenticated this request (set by the token check, acl.ts). */
    tokenAccessor: string | null;
  }
}

/** Route pattern and method → action name. Only these routes are audited. */
const ACTIONS: Record<string, string> = {
  'PUT /v1/providers/:id': 'provider.register',
  'POST /v1/providers': 'provider.register',
  'DELETE /v1/providers/:id': 'provider.deregister',
  'PUT /v1/providers/:id/ttl': 'provider.ttl',
  'PUT /v1/providers/:id/maintenance': 'provider.maintenance',
  'POST /v1/admin/release-guard': 'admin.release-guard',
  'GET /v1/admin/cluster': 'admin.cluster',
  'GET /v1/admin/snapshot': 'admin.snapshot',
  'POST /v1/acl/tokens': 'acl.token.create',
  'PUT /v1/acl/tokens/:accessor': 'acl.token.update',
  'DELETE /v1/acl/tokens/:accessor': 'acl.token.delete',
  'PUT /v1/acl/policies/:name': 'acl.policy.put',
  'DELETE /v1/acl/policies/:name': 'acl.policy.delete',
};
/** An open WebSocket or SSE stream ended because its token was revoked or narrowed (subscribers.ts). */
export const STREAM_REVOKED = 'stream.revoked';
const RESULTS = ['ok', 'refused', 'failed'] as const;

export interface Who {
  address: string;
  client: string;
  token?: string;
}

export function whoOf(request: FastifyRequest): Who {
  const who: Who = { address: request.ip, client: clientKey(request.ip) };
  if (request.tokenAccessor) who.token = request.tokenAccessor;
  return who;
}

function resultOf(status: number): (typeof RESULTS)[number] {
  return status < 400 ? 'ok' : status < 500 ? 'refused' : 'failed';
}

/** One audited action: what the line carries besides `audit: true` and the `result` derived from `status`. */
export interface AuditEntry {
  who: Who;
  action: string;
  method: string;
  route: string;
  service?: string;
  provider?: string;
  status: number;
}

/** Logs one audit line (info level, one shape for every action) and counts it. */
export function recordAudit(log: Logger | null, metrics: Metrics, entry: AuditEntry): void {
  const result = resultOf(entry.status);
  metrics.inc('switchboard_audit_events_total', { action: entry.action, result });
  if (log?.isLevelEnabled('info')) log.info({ audit: true, ...entry, result }, `audit ${entry.action} ${result}`);
}

export interface AuditDeps {
  log: Logger | false;
  metrics: Metrics;
  /** The service of a registered provider, for actions that name only an id. */
  serviceOf(id: string): string | undefined;
}

export function installAudit(app: FastifyInstance, deps: AuditDeps): void {
  const { metrics } = deps;
  const target = new WeakMap<FastifyRequest, { service?: string; provider?: string }>();
  for (const action of new Set([...Object.values(ACTIONS), STREAM_REVOKED]))
    for (const result of RESULTS)
      metrics.counter(
        'switchboard_audit_events_total',
        'Writes and admin actions, by action and result (ok, refused: 4xx, failed: 5xx)',
        { action, result },
      );
  app.decorateRequest('tokenAccessor', null);
  const log = deps.log ? deps.log.child({ component: 'audit' }) : null;
  const actionOf = (request: FastifyRequest): string | undefined =>
    ACTIONS[`${request.method} ${routeUrl(request) ?? ''}`];
  // Before the handler: the service is still known for a provider about to be deregistered.
  // Callback hooks, not async ones: every write runs them, and a promise and a microtask per hook show.
  const remember: preHandlerHookHandler = (request, _reply, done) => {
    if (actionOf(request) !== undefined) {
      const id = (request.params as { id?: string } | undefined)?.id;
      const service = (request.body as { service?: unknown } | undefined)?.service;
      target.set(request, {
        ...(typeof service === 'string' ? { service } : id ? { service: deps.serviceOf(id) } : {}),
        ...(id ? { provider: id } : {}),
      });
    }
    done();
  };
  // A server-chosen id is known only from the answer.
  const learnId: onSendHookHandler = (request, _reply, payload, done) => {
    if (request.method === 'POST' && routeUrl(request) === '/v1/providers' && typeof payload === 'string') {
      const id = /"id":"([^"]{1,256})"/.exec(payload)?.[1];
      const t = target.get(request);
      if (id && t) t.provider = id;
    }
    done(null, payload);
  };
  const record: onResponseHookHandler = (request, reply, done) => {
    const action = actionOf(request);
    if (action === undefined) return done();
    const t = target.get(request) ?? {};
    const provider = t.provider ?? (request.params as { id?: string } | undefined)?.id;
    recordAudit(log, metrics, {
      who: whoOf(request),
      action,
      method: request.method,
      route: routeUrl(request) ?? '',
      ...(t.service ? { service: t.service } : {}),
      ...(provider ? { provider } : {}),
      status: reply.statusCode,
    });
    done();
  };
  // Only audited routes carry the hooks: lookups and streams, the bulk of the traffic, pay nothing for them.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!methods.some((m) => ACTIONS[`${m} ${route.url}`] !== undefined)) return;
    route.preHandler = [...hookList(route.preHandler), remember];
    route.onSend = [...hookList(route.onSend), learnId];
    route.onResponse = [...hookList(route.onResponse), record];
  });
}

/** A route option's hooks as a list (Fastify takes one function or an array). */
function hookList<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}

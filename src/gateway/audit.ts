/**
 * The audit log: every write and admin action, once, at info level, as one structured line
 * `{ audit: true, who, action, method, route, service?, provider?, status, result }`, and counted in
 * `switchboard_audit_events_total{action,result}`. Refusals (403, 415, 429, 400) are logged too: they are what an
 * operator looks for after an incident. `who` is the remote address, its client key and, with ACLs on, the
 * accessor id of the request's token (set by the token check, acl.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
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
/** ACTIONS by route pattern, then method: looked up on every request without building a key string. */
const ACTIONS_BY_ROUTE = new Map<string, Map<string, string>>();
for (const [key, action] of Object.entries(ACTIONS)) {
  const [method, url] = key.split(' ');
  const byMethod = ACTIONS_BY_ROUTE.get(url) ?? new Map<string, string>();
  byMethod.set(method, action);
  ACTIONS_BY_ROUTE.set(url, byMethod);
}
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

export interface AuditDeps {
  log: Logger | false;
  metrics: Metrics;
  /** The service of a registered provider, for actions that name only an id. */
  serviceOf(id: string): string | undefined;
}

export function installAudit(app: FastifyInstance, deps: AuditDeps): void {
  const { metrics } = deps;
  const target = new WeakMap<FastifyRequest, { service?: string; provider?: string }>();
  for (const action of new Set(Object.values(ACTIONS)))
    for (const result of RESULTS)
      metrics.counter(
        'switchboard_audit_events_total',
        'Writes and admin actions, by action and result (ok, refused: 4xx, failed: 5xx)',
        { action, result },
      );
  app.decorateRequest('tokenAccessor', null);
  const log = deps.log ? deps.log.child({ component: 'audit' }) : null;
  const actionOf = (request: FastifyRequest): string | undefined =>
    ACTIONS_BY_ROUTE.get(routeUrl(request) ?? '')?.get(request.method);
  // Before the handler: the service is still known for a provider about to be deregistered.
  // Callback-style hooks: an async hook costs a promise and a microtask on every request, audited or not.
  app.addHook('preHandler', (request, _reply, done) => {
    if (actionOf(request) !== undefined) {
      const id = (request.params as { id?: string } | undefined)?.id;
      const service = (request.body as { service?: unknown } | undefined)?.service;
      target.set(request, {
        ...(typeof service === 'string' ? { service } : id ? { service: deps.serviceOf(id) } : {}),
        ...(id ? { provider: id } : {}),
      });
    }
    done();
  });
  // A server-chosen id is known only from the answer.
  app.addHook('onSend', (request, _reply, payload, done) => {
    if (request.method === 'POST' && routeUrl(request) === '/v1/providers' && typeof payload === 'string') {
      const id = /"id":"([^"]{1,256})"/.exec(payload)?.[1];
      const t = target.get(request);
      if (id && t) t.provider = id;
    }
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    const action = actionOf(request);
    if (action === undefined) return done();
    const status = reply.statusCode;
    const result = resultOf(status);
    metrics.inc('switchboard_audit_events_total', { action, result });
    if (log?.isLevelEnabled('info')) {
      const t = target.get(request) ?? {};
      const id = (request.params as { id?: string } | undefined)?.id;
      const provider = t.provider ?? id;
      log.info(
        {
          audit: true,
          who: whoOf(request),
          action,
          method: request.method,
          route: routeUrl(request),
          ...(t.service ? { service: t.service } : {}),
          ...(provider ? { provider } : {}),
          status,
          result,
        },
        `audit ${action} ${result}`,
      );
    }
    done();
  });
}

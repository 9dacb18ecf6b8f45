/**
 * Builds the gateway's Fastify application without listening, so tests can `inject()` and the OpenAPI document
 * can be generated from the very same route schemas.
 */
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import { ERROR_CODES, type Logger } from '../bridge/index.ts';
import type { GatewayContext } from './context.ts';
import { adminRoutes } from './routes/admin.ts';
import { healthRoutes } from './routes/health.ts';
import { providerRoutes } from './routes/providers.ts';
import { serviceRoutes } from './routes/services.ts';
import { eventRoutes } from './routes/events.ts';
import { watchRoutes } from './routes/watch.ts';
import { consulRoutes } from './routes/consul.ts';
import { aclRoutes } from './routes/acl.ts';
import { prometheusSdRoutes } from './routes/prometheus-sd.ts';
import { attachSidecars, type SidecarOptions } from './sidecars.ts';
import { dashboardRoutes } from './ui/plugin.ts';
import { ErrorResponse } from './schemas.ts';
import { httpError } from './errors.ts';
import { frameworkErrors, mapFrameworkErrors } from './framework-errors.ts';
import { validatorCompiler } from './validation.ts';
import { installAudit } from './audit.ts';
import { documentSecurity, SECURITY_SCHEMES } from './acl.ts';
import { Type } from 'typebox';
import { BrowserGuard, defaultAllowedHosts, type BrowserGuardOptions } from './browser-guard.ts';
import {
  DEFAULT_WRITE_RATE_LIMIT,
  DEFAULT_WRITE_RATE_WINDOW_MS,
  installWriteLimits,
  type WriteLimitOptions,
} from './rate-limits.ts';
import type { TlsMaterial } from './tls.ts';
import { routeUrl } from './route-url.ts';

export const API_VERSION = '1.0.0';
/** Routes that hold a stream open; left out of the request-duration histogram. */
const STREAM_ROUTES = new Set(['/v1/events', '/v1/watch']);
/**
 * A client has this long to send its request line, headers and body. It bounds what a client that trickles its
 * request can hold; it does not limit answers (a blocking query waits up to 10 minutes for its answer).
 */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Provider ids are up to 128 characters; Fastify's default (100) would answer 414 below that. */
const MAX_PARAM_LENGTH = 256;
/** Reads that need a synced replica: before the first snapshot they would answer empty lists that look real. */
const NEEDS_REPLICA = /^\/v1\/(services|providers\/)/;

function errorCodeTable(): string {
  const rows = Object.entries(ERROR_CODES).map(
    ([code, spec]) => `| \`${code}\` | ${spec.statusCode} | ${spec.description} |`,
  );
  return ['| code | status | meaning |', '|---|---|---|', ...rows].join('\n');
}

export interface AppOptions extends Omit<SidecarOptions, 'log'> {
  log: Logger | false;
  bodyLimit: number;
  /** HTTPS (and WSS) with these; mTLS when it carries a client CA. Plain HTTP when absent. */
  tls?: TlsMaterial;
  /** Origin and Host allow-lists; default: same origin only, loopback host names. */
  browser?: Partial<Omit<BrowserGuardOptions, 'tls'>>;
  /** Per-client write rate limit; default `DEFAULT_WRITE_RATE_LIMIT` per `DEFAULT_WRITE_RATE_WINDOW_MS`. */
  writeLimit?: WriteLimitOptions;
}

export async function buildApp(ctx: GatewayContext, opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.log ? { loggerInstance: opts.log } : { logger: false }),
    bodyLimit: opts.bodyLimit,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
    // Node checks these timeouts every connectionsCheckingInterval (30 s by default): check often enough to matter.
    serverFactory: (handler) => {
      const timeouts = {
        requestTimeout: REQUEST_TIMEOUT_MS,
        headersTimeout: REQUEST_TIMEOUT_MS,
        connectionsCheckingInterval: 1000,
      };
      return opts.tls ? createHttpsServer({ ...timeouts, ...opts.tls }, handler) : createServer(timeouts, handler);
    },
    // Like Fastify's own message, but an unknown field is named too: "body must NOT have additional properties ('chek')".
    schemaErrorFormatter: (errors, dataVar) => {
      const first = errors[0];
      if (!first) return new Error(`${dataVar} is invalid`);
      const extra = (first.params as { additionalProperty?: string }).additionalProperty;
      return new Error(`${dataVar}${first.instancePath} ${first.message}${extra ? ` ('${extra}')` : ''}`);
    },
    // Per-request log lines would dominate the logs under load; errors still go through the error handler.
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;

  app.setValidatorCompiler(validatorCompiler);
  mapFrameworkErrors(app);
  // Before the browser guard: its onRequest hook marks upgrade requests, so a refused upgrade's socket is closed.
  await app.register(websocket, {
    // Clients only send small control messages (resume, ping).
    options: { maxPayload: 64 * 1024 },
    // An unclean disconnect is routine for a watcher, not an error worth a stack trace.
    errorHandler: (err, socket, request) => {
      request.log.debug({ err }, 'WebSocket error');
      socket.terminate();
    },
  });
  // First in every request's life: Host, Origin and cross-site bodies (browser-guard.ts), then per-route limits.
  await new BrowserGuard({
    allowedOrigins: opts.browser?.allowedOrigins ?? [],
    allowedHosts: opts.browser?.allowedHosts ?? defaultAllowedHosts('127.0.0.1'),
    tls: opts.tls !== undefined,
  }).install(app);
  await installWriteLimits(
    app,
    opts.writeLimit ?? { max: DEFAULT_WRITE_RATE_LIMIT, windowMs: DEFAULT_WRITE_RATE_WINDOW_MS },
  );
  // After Host/Origin and the write budget: a refused browser request never reaches the token check.
  ctx.acl.install(app);
  installAudit(app, {
    log: opts.log,
    metrics: ctx.metrics,
    serviceOf: (id) => ctx.follower.replica.provider(id)?.service,
  });
  app.addSchema(ErrorResponse);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Switchboard',
        version: API_VERSION,
        description: `Service discovery on ZeroMQ: register providers, watch their health, look them up, follow changes.\n\n## Error codes\nEvery error answers \`{ statusCode, error, message, code }\`.\n\n${errorCodeTable()}`,
      },
      tags: [
        { name: 'providers', description: 'Register, update, deregister and inspect providers' },
        { name: 'services', description: 'Look up services and their providers' },
        {
          name: 'watch',
          description: 'Follow changes: WebSocket and Server-Sent Events (blocking queries live under services)',
        },
        { name: 'operations', description: 'Health, readiness and metrics of the gateway' },
        { name: 'integrations', description: "Other tools' formats: Prometheus HTTP service discovery" },
        { name: 'consul', description: "Consul's HTTP API, read-only: catalog and health reads, blocking queries" },
        {
          name: 'acl',
          description: 'Tokens and policies (with ACLs on, every route but health and docs needs a token)',
        },
      ],
      components: { securitySchemes: SECURITY_SCHEMES as never },
    },
    // Every operation says which token it needs (acl.ts's ROUTE_NEEDS), and lists the 401/403 that follow.
    transform: ({ schema, url, route }) => ({
      schema: documentSecurity(
        schema as Record<string, unknown> | undefined,
        route.method,
        url,
        Type.Ref('Error'),
      ) as never,
      url,
    }),
    // Shared schemas keep their $id as their name in components (Error, not def-0).
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  // The machine-readable table of error codes travels in the document too.
  app.addHook('onReady', async () => {
    const doc = app.swagger() as { 'x-error-codes'?: unknown };
    doc['x-error-codes'] = Object.fromEntries(
      Object.entries(ERROR_CODES).map(([code, s]) => [code, { statusCode: s.statusCode, description: s.description }]),
    );
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  // How long each request took to answer, by route pattern (never the raw URL: ids would make a series each).
  // Blocking queries count their wait. Streams (SSE, WebSocket) last as long as their client: not a latency.
  ctx.metrics.histogram(
    'switchboard_http_request_duration_seconds',
    'HTTP requests answered, by method, route pattern and status code',
    ['method', 'route', 'status_code'],
  );
  // One series per method, route pattern and status: bounded, so each is looked up once and kept.
  const durations = new Map<string, (seconds: number) => void>();
  app.addHook('onResponse', (request, reply, done) => {
    const route = routeUrl(request) ?? 'unmatched';
    if (STREAM_ROUTES.has(route)) return done();
    const key = `${request.method} ${route} ${reply.statusCode}`;
    let observe = durations.get(key);
    if (observe === undefined) {
      observe = ctx.metrics.series('switchboard_http_request_duration_seconds', {
        method: request.method,
        route,
        status_code: String(reply.statusCode),
      });
      durations.set(key, observe);
    }
    observe(reply.elapsedTime / 1000);
    done();
  });

  app.setNotFoundHandler((request) => {
    throw httpError('SB_ROUTE_NOT_FOUND', `${request.method} ${request.url.split('?')[0]}`);
  });
  // Callback hooks rather than async ones: both run on every request.
  app.addHook('onRequest', (request, _reply, done) => {
    if (!ctx.follower.replica.loaded && request.method === 'GET' && NEEDS_REPLICA.test(request.url))
      return done(
        httpError('SB_NOT_READY', 'the gateway has not received the registry from a leader yet; retry shortly'),
      );
    done();
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    if (request.url.startsWith('/docs')) return done(null, payload);
    if (!reply.hasHeader('x-switchboard-index')) reply.header('x-switchboard-index', String(ctx.follower.replica.rev));
    if (ctx.follower.stale) reply.header('x-switchboard-stale', 'true');
    done(null, payload);
  });

  await app.register(async (scope) => providerRoutes(scope, ctx));
  await app.register(async (scope) => serviceRoutes(scope, ctx));
  await app.register(async (scope) => healthRoutes(scope, ctx));
  await app.register(async (scope) => adminRoutes(scope, ctx));
  await app.register(async (scope) => watchRoutes(scope, ctx));
  await app.register(async (scope) => eventRoutes(scope, ctx));
  await app.register(async (scope) => prometheusSdRoutes(scope, ctx));
  await app.register(async (scope) => consulRoutes(scope, ctx));
  await app.register(async (scope) => aclRoutes(scope, ctx));
  attachSidecars(app, ctx, { log: opts.log, dns: opts.dns, dnsTtlS: opts.dnsTtlS, leader: opts.leader });
  await app.register(dashboardRoutes);
  return app;
}

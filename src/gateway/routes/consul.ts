/**
 * A read-only subset of Consul's HTTP API, the part that service-discovery consumers use (Prometheus
 * consul_sd_configs, Traefik's Consul catalog provider, Spring Cloud Consul, Consul client libraries): catalog
 * and health reads with blocking queries. Field names and types follow Consul's API documentation. Every
 * provider appears as a service instance on a node named after its host, with one check that carries its state.
 * Writes to Consul paths answer 405 naming our own route: registering through Consul's API would bypass our
 * checks model.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { ServiceName, VERSION, type Provider } from '../../bridge/index.ts';
import { waitForChange } from '../blocking-query.ts';
import type { GatewayContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { bareHost, byId, consulStatus, uuidFrom } from '../integrations.ts';
import { errorResponses, WAIT_PATTERN } from '../schemas.ts';

/** The datacenter every answer names (Consul clients need one; Switchboard has no datacenters). */
export const CONSUL_DATACENTER = 'dc1';
export const CONSUL_NODE_NAME = 'switchboard';
/** Consul's own default when a blocking query gives no `wait`. */
export const CONSUL_DEFAULT_WAIT_MS = 5 * 60_000;

const StringMap = Type.Record(Type.String(), Type.String());
const Index = Type.Integer({ minimum: 0 });

/** Query parameters Consul clients send; unknown ones (`dc`, `stale`, `consistent`, `near`, …) are accepted. */
const ConsulQuery = Type.Object(
  {
    index: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Blocking query: X-Consul-Index of the last answer' }),
    ),
    wait: Type.Optional(Type.String({ pattern: WAIT_PATTERN, description: 'Blocking query timeout (default 5m)' })),
    tag: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { description: 'Every tag given' })),
    passing: Type.Optional(Type.String({ description: 'Present (or true): only instances whose checks all pass' })),
  },
  { additionalProperties: true },
);
type ConsulQuery = Static<typeof ConsulQuery>;
const NameParams = Type.Object({ name: ServiceName });

const CatalogEntry = Type.Object({
  ID: Type.String(),
  Node: Type.String(),
  Address: Type.String(),
  Datacenter: Type.String(),
  TaggedAddresses: StringMap,
  NodeMeta: StringMap,
  ServiceKind: Type.String(),
  ServiceID: Type.String(),
  ServiceName: Type.String(),
  ServiceTags: Type.Array(Type.String()),
  ServiceAddress: Type.String(),
  ServiceTaggedAddresses: Type.Record(Type.String(), Type.Object({ Address: Type.String(), Port: Type.Integer() })),
  ServiceWeights: Type.Object({ Passing: Type.Integer(), Warning: Type.Integer() }),
  ServiceMeta: StringMap,
  ServicePort: Type.Integer(),
  ServiceEnableTagOverride: Type.Boolean(),
  CreateIndex: Index,
  ModifyIndex: Index,
});

const HealthCheck = Type.Object({
  Node: Type.String(),
  CheckID: Type.String(),
  Name: Type.String(),
  Status: Type.Union([Type.Literal('passing'), Type.Literal('warning'), Type.Literal('critical')]),
  Notes: Type.String(),
  Output: Type.String(),
  ServiceID: Type.String(),
  ServiceName: Type.String(),
  ServiceTags: Type.Array(Type.String()),
  Type: Type.String(),
  CreateIndex: Index,
  ModifyIndex: Index,
});

const HealthEntry = Type.Object({
  Node: Type.Object({
    ID: Type.String(),
    Node: Type.String(),
    Address: Type.String(),
    Datacenter: Type.String(),
    TaggedAddresses: StringMap,
    Meta: StringMap,
    CreateIndex: Index,
    ModifyIndex: Index,
  }),
  Service: Type.Object({
    ID: Type.String(),
    Service: Type.String(),
    Tags: Type.Array(Type.String()),
    Address: Type.String(),
    TaggedAddresses: Type.Record(Type.String(), Type.Object({ Address: Type.String(), Port: Type.Integer() })),
    Meta: StringMap,
    Port: Type.Integer(),
    Weights: Type.Object({ Passing: Type.Integer(), Warning: Type.Integer() }),
    EnableTagOverride: Type.Boolean(),
    CreateIndex: Index,
    ModifyIndex: Index,
  }),
  Checks: Type.Array(HealthCheck),
});

const AgentSelf = Type.Object({
  Config: Type.Object({
    Datacenter: Type.String(),
    PrimaryDatacenter: Type.String(),
    NodeName: Type.String(),
    NodeID: Type.String(),
    Server: Type.Boolean(),
    Revision: Type.String(),
    Version: Type.String(),
  }),
  Member: Type.Object({
    Name: Type.String(),
    Addr: Type.String(),
    Port: Type.Integer(),
    Tags: StringMap,
    Status: Type.Integer(),
  }),
  Meta: StringMap,
});

const WEIGHTS = { Passing: 1, Warning: 1 };

function taggedAddresses(p: Provider): Record<string, { Address: string; Port: number }> {
  const host = bareHost(p.host);
  return { lan: { Address: host, Port: p.port }, wan: { Address: host, Port: p.port } };
}

function nodeOf(p: Provider): Static<typeof HealthEntry>['Node'] {
  const host = bareHost(p.host);
  return {
    ID: uuidFrom(host),
    Node: host,
    Address: host,
    Datacenter: CONSUL_DATACENTER,
    TaggedAddresses: { lan: host, wan: host },
    Meta: {},
    CreateIndex: p.rev,
    ModifyIndex: p.rev,
  };
}

/** The one check per instance: our state, as Consul's maintenance check when the provider is in maintenance. */
function checkOf(p: Provider): Static<typeof HealthCheck> {
  const maintenance = p.state === 'maintenance';
  return {
    Node: bareHost(p.host),
    CheckID: maintenance ? `_service_maintenance:${p.id}` : `service:${p.id}`,
    Name: maintenance ? 'Service Maintenance Mode' : `Switchboard ${p.check?.type ?? 'no'} check`,
    Status: consulStatus(p.state),
    Notes: maintenance ? (p.lastCheck?.output ?? '') : '',
    Output: p.lastCheck?.output ?? `switchboard state: ${p.state}`,
    ServiceID: p.id,
    ServiceName: p.service,
    ServiceTags: p.tags,
    Type: p.check?.type ?? '',
    CreateIndex: p.rev,
    ModifyIndex: p.rev,
  };
}

export function catalogEntry(p: Provider): Static<typeof CatalogEntry> {
  const node = nodeOf(p);
  return {
    ID: node.ID,
    Node: node.Node,
    Address: node.Address,
    Datacenter: CONSUL_DATACENTER,
    TaggedAddresses: node.TaggedAddresses,
    NodeMeta: {},
    ServiceKind: '',
    ServiceID: p.id,
    ServiceName: p.service,
    ServiceTags: p.tags,
    ServiceAddress: bareHost(p.host),
    ServiceTaggedAddresses: taggedAddresses(p),
    ServiceWeights: WEIGHTS,
    ServiceMeta: p.meta,
    ServicePort: p.port,
    ServiceEnableTagOverride: false,
    CreateIndex: p.rev,
    ModifyIndex: p.rev,
  };
}

export function healthEntry(p: Provider): Static<typeof HealthEntry> {
  return {
    Node: nodeOf(p),
    Service: {
      ID: p.id,
      Service: p.service,
      Tags: p.tags,
      Address: bareHost(p.host),
      TaggedAddresses: taggedAddresses(p),
      Meta: p.meta,
      Port: p.port,
      Weights: WEIGHTS,
      EnableTagOverride: false,
      CreateIndex: p.rev,
      ModifyIndex: p.rev,
    },
    Checks: [checkOf(p)],
  };
}

/** Our route for each kind of Consul write, so the 405 tells the caller where to go instead. */
function ourRouteFor(url: string): string {
  if (/\/(?:agent\/service|catalog)\/register/.test(url)) return 'PUT /v1/providers/:id or POST /v1/providers';
  if (/\/(?:agent\/service|catalog)\/deregister/.test(url)) return 'DELETE /v1/providers/:id';
  if (/\/maintenance/.test(url)) return 'PUT /v1/providers/:id/maintenance';
  if (/\/agent\/check\/(?:pass|update)/.test(url)) return 'PUT /v1/providers/:id/ttl';
  return 'the REST API under /v1/providers';
}

export async function consulRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const replica = ctx.follower.replica;
  const tags = ['consul'];

  /**
   * Consul's blocking query: with `index` above 0, hold until the watched data's index passes it or `wait` ends.
   * An index above ours (another store, a reset) answers at once, as Consul does, so the client re-reads.
   */
  async function block(request: FastifyRequest, service: string | null, query: ConsulQuery): Promise<void> {
    const { index } = query;
    if (index === undefined || index === 0 || index > ctx.changes.indexOf(service)) return;
    await waitForChange(ctx, request, service, index, query.wait, CONSUL_DEFAULT_WAIT_MS);
  }

  /** X-Consul-Index (Consul indexes start at 1), whether a leader is known, and how long since we heard it. */
  function consulHeaders(reply: FastifyReply, service: string | null): void {
    const status = ctx.follower.status();
    reply.header('x-consul-index', String(Math.max(1, ctx.changes.indexOf(service))));
    reply.header('x-consul-knownleader', status.leaderReachable ? 'true' : 'false');
    reply.header('x-consul-lastcontact', String(status.lastContactMs ?? 0));
  }

  /** Consul filters what a token may not read out of its answers, and says so in a header. */
  function readable(request: FastifyRequest, reply: FastifyReply, service: string): boolean {
    if (ctx.acl.canRead(request, service)) return true;
    reply.header('x-consul-results-filtered-by-acls', 'true');
    return false;
  }

  const passing = (q: ConsulQuery): boolean => q.passing !== undefined && q.passing !== 'false' && q.passing !== '0';
  const withTags = (p: Provider, wanted: string[] | undefined): boolean =>
    wanted === undefined || wanted.every((t) => p.tags.includes(t));

  app.get(
    '/v1/catalog/services',
    {
      schema: {
        tags,
        summary: 'Consul: every service and the tags its instances carry',
        querystring: ConsulQuery,
        response: { 200: Type.Record(Type.String(), Type.Array(Type.String())), ...errorResponses(400, 503) },
      },
    },
    async (request, reply) => {
      await block(request, null, request.query);
      const out: Record<string, string[]> = {};
      for (const name of replica.serviceNames()) {
        if (!readable(request, reply, name)) continue;
        const seen = new Set<string>();
        for (const p of replica.service(name)) for (const t of p.tags) seen.add(t);
        out[name] = [...seen].sort();
      }
      consulHeaders(reply, null);
      return out;
    },
  );

  app.get(
    '/v1/catalog/service/:name',
    {
      schema: {
        tags,
        summary: "Consul: a service's instances as catalog entries (every state)",
        params: NameParams,
        querystring: ConsulQuery,
        response: { 200: Type.Array(CatalogEntry), ...errorResponses(400, 503) },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      await block(request, name, request.query);
      consulHeaders(reply, name);
      if (!readable(request, reply, name)) return [];
      return replica
        .service(name)
        .filter((p) => withTags(p, request.query.tag))
        .sort(byId)
        .map(catalogEntry);
    },
  );

  app.get(
    '/v1/health/service/:name',
    {
      schema: {
        tags,
        summary: "Consul: a service's instances with their node and checks",
        description:
          'Our states map to check statuses: up → passing, pending → warning, down and maintenance → critical. `?passing` keeps passing instances only; `?tag=` (repeatable) keeps instances carrying every tag.',
        params: NameParams,
        querystring: ConsulQuery,
        response: { 200: Type.Array(HealthEntry), ...errorResponses(400, 503) },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      await block(request, name, request.query);
      consulHeaders(reply, name);
      if (!readable(request, reply, name)) return [];
      const onlyPassing = passing(request.query);
      return replica
        .service(name)
        .filter((p) => withTags(p, request.query.tag) && (!onlyPassing || p.state === 'up'))
        .sort(byId)
        .map(healthEntry);
    },
  );

  app.get(
    '/v1/health/checks/:name',
    {
      schema: {
        tags,
        summary: "Consul: the checks of a service's instances",
        params: NameParams,
        querystring: ConsulQuery,
        response: { 200: Type.Array(HealthCheck), ...errorResponses(400, 503) },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      await block(request, name, request.query);
      consulHeaders(reply, name);
      if (!readable(request, reply, name)) return [];
      return replica
        .service(name)
        .sort(byId)
        .map((p) => checkOf(p));
    },
  );

  app.get(
    '/v1/agent/self',
    {
      schema: {
        tags,
        summary: "Consul: the agent's configuration (what clients read to learn the datacenter)",
        response: { 200: AgentSelf },
      },
    },
    async (request) => ({
      Config: {
        Datacenter: CONSUL_DATACENTER,
        PrimaryDatacenter: CONSUL_DATACENTER,
        NodeName: CONSUL_NODE_NAME,
        NodeID: uuidFrom(CONSUL_NODE_NAME),
        Server: false,
        Revision: 'switchboard',
        Version: VERSION,
      },
      Member: {
        Name: CONSUL_NODE_NAME,
        Addr: request.socket.localAddress ?? '127.0.0.1',
        Port: request.socket.localPort ?? 0,
        Tags: { role: 'switchboard-gateway', dc: CONSUL_DATACENTER },
        Status: 1,
      },
      Meta: {},
    }),
  );

  app.get(
    '/v1/catalog/datacenters',
    { schema: { tags, summary: 'Consul: the one datacenter', response: { 200: Type.Array(Type.String()) } } },
    async () => [CONSUL_DATACENTER],
  );

  app.get(
    '/v1/status/leader',
    {
      schema: {
        tags,
        summary: 'Consul: the leader address, or an empty string while no leader is reachable',
        response: { 200: Type.String() },
      },
    },
    async (request, reply) => {
      // Consul answers a JSON string; the leader sits behind us, so we name ourselves while we reach it.
      const self = `${request.socket.localAddress ?? '127.0.0.1'}:${request.socket.localPort ?? 0}`;
      return reply.type('application/json').send(JSON.stringify(ctx.follower.leaderReachable ? self : ''));
    },
  );

  // Not `acl`: /v1/acl/ is Switchboard's own token and policy API.
  for (const prefix of ['agent', 'catalog', 'health', 'kv', 'session', 'txn', 'event', 'operator']) {
    app.route({
      method: ['PUT', 'POST', 'DELETE', 'PATCH'],
      url: `/v1/${prefix}/*`,
      schema: {
        tags,
        summary: `Consul writes under /v1/${prefix}/: refused (read-only), naming our own route`,
        response: { ...errorResponses(405) },
      },
      // Refused before the body is parsed: Consul's write bodies (KV values, any bytes) need not be JSON.
      onRequest: async (request, reply) => {
        reply.header('allow', 'GET');
        throw httpError(
          'SB_READ_ONLY',
          `Switchboard serves Consul's API read-only; use ${ourRouteFor(request.url)} on this gateway instead`,
        );
      },
      handler: async () => undefined,
    });
  }
}

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Provider } from '../../bridge/index.ts';
import { waitForChange } from '../blocking-query.ts';
import { DEFAULT_WAIT_MS, type GatewayContext } from '../context.ts';
import { AnswerCache, DEFAULT_LOOKUP_CACHE_BYTES } from '../answer-cache.ts';
import {
  errorResponses,
  metaFilters,
  ServiceParams,
  ServiceQuery,
  ServiceResponse,
  ServicesQuery,
  ServicesResponse,
} from '../schemas.ts';

export async function serviceRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const replica = ctx.follower.replica;
  const tags = ['services'];
  // Lookups far outnumber changes: the serialized answer of GET /v1/services/:name (per service, filters and
  // stale flag) is kept until the next change of any kind, so a repeated lookup skips filter, sort and
  // serialization (most of its cost at 100 providers). Cleared on every event and resync; bounded in bytes, since
  // distinct filters over a large service would otherwise each pin a copy of it.
  const answers = new AnswerCache(ctx.lookupCacheBytes ?? DEFAULT_LOOKUP_CACHE_BYTES);
  replica.onEvent(() => answers.clear());
  replica.onReset(() => answers.clear());

  /** Blocking query: hold the request until `service` changes past `index` or the wait is over. */
  async function block(
    request: FastifyRequest,
    service: string | null,
    index: number | undefined,
    wait: string | undefined,
  ): Promise<void> {
    if (index !== undefined) await waitForChange(ctx, request, service, index, wait, DEFAULT_WAIT_MS);
  }

  app.get(
    '/v1/services',
    {
      schema: {
        tags,
        summary: 'All services with provider counts',
        querystring: ServicesQuery,
        response: { 200: ServicesResponse, ...errorResponses(400, 503) },
      },
    },
    async (request, reply) => {
      await block(request, null, request.query.index, request.query.wait);
      const services = replica
        .serviceNames()
        .filter((name) => ctx.acl.canRead(request, name))
        .map((name) => {
          const providers = replica.service(name);
          return { name, providers: providers.length, up: providers.filter((p) => p.state === 'up').length };
        });
      reply.header('x-switchboard-index', String(ctx.changes.indexOf(null)));
      return { rev: replica.rev, stale: ctx.follower.stale, services };
    },
  );

  app.get(
    '/v1/services/:name',
    {
      schema: {
        tags,
        summary: 'Providers of one service',
        description:
          'Filters: state, protocol, tag (repeatable: all must match), meta.<key>=<value> (repeatable). Blocking query: with `index` (from X-Switchboard-Index) the answer waits until this service changes past it, or `wait` passes.',
        params: ServiceParams,
        querystring: ServiceQuery,
        response: { 200: ServiceResponse, ...errorResponses(400, 503) },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const { state, protocol, tag: tags = [], index, wait } = request.query;
      const meta = metaFilters(request.query);
      await block(request, name, index, wait);
      reply.header('x-switchboard-index', String(ctx.changes.indexOf(name)));
      const stale = ctx.follower.stale;
      const key = JSON.stringify([name, state, protocol, tags, meta, stale]);
      let body = answers.get(key);
      if (body === undefined) {
        const providers = replica
          .service(name)
          .filter(
            (p: Provider) =>
              (state === undefined || p.state === state) &&
              (protocol === undefined || p.protocol === protocol) &&
              tags.every((t) => p.tags.includes(t)) &&
              meta.every(([k, v]) => p.meta[k] === v),
          )
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        // The route's own response serializer, so the cached text is exactly what Fastify would have sent.
        body = Buffer.from(reply.serialize({ rev: replica.rev, stale, service: name, providers }) as string);
        answers.set(key, body);
      }
      // Bytes are sent as they are (Fastify skips serialization for a Buffer).
      return reply.type('application/json; charset=utf-8').send(body as never);
    },
  );
}

/**
 * Prometheus HTTP service discovery (`http_sd_configs`): one target group per provider, its `host:port` as the
 * target and everything we know as `__meta_switchboard_*` labels, which relabelling can keep or drop. Only `up`
 * providers by default: Prometheus should not scrape what we already know is down.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ProviderState, ServiceName, type Provider } from '../../bridge/index.ts';
import type { GatewayContext } from '../context.ts';
import { byId, hostPort, labelName } from '../integrations.ts';
import { errorResponses } from '../schemas.ts';

export const META_PREFIX = '__meta_switchboard_';

const PrometheusSdQuery = Type.Object(
  {
    service: Type.Optional(ServiceName),
    state: Type.Optional(
      Type.Union([ProviderState, Type.Literal('any')], { description: 'Only providers in this state (default up)' }),
    ),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only providers carrying this tag' })),
  },
  { additionalProperties: false },
);

const TargetGroup = Type.Object({
  targets: Type.Array(Type.String(), { description: 'host:port' }),
  labels: Type.Record(Type.String(), Type.String()),
});

/** The labels of one provider; tags as `,a,b,` (consul_sd's form, so `regex: .*,a,.*` works) and one label each. */
export function prometheusLabels(p: Provider): Record<string, string> {
  const labels: Record<string, string> = {
    [`${META_PREFIX}service`]: p.service,
    [`${META_PREFIX}id`]: p.id,
    [`${META_PREFIX}state`]: p.state,
    [`${META_PREFIX}protocol`]: p.protocol,
    [`${META_PREFIX}host`]: p.host,
    [`${META_PREFIX}port`]: String(p.port),
    [`${META_PREFIX}tags`]: p.tags.length ? `,${p.tags.join(',')},` : '',
  };
  for (const tag of p.tags) labels[`${META_PREFIX}tag_${labelName(tag)}`] = 'true';
  for (const [k, v] of Object.entries(p.meta)) labels[`${META_PREFIX}meta_${labelName(k)}`] = v;
  return labels;
}

export async function prometheusSdRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const replica = ctx.follower.replica;
  app.get(
    '/v1/sd/prometheus',
    {
      schema: {
        tags: ['integrations'],
        summary: 'Prometheus HTTP service discovery (http_sd_configs)',
        description:
          'Target groups in the http_sd format: one per provider, labels `__meta_switchboard_{service,id,state,protocol,host,port,tags}`, `__meta_switchboard_tag_<tag>` and `__meta_switchboard_meta_<key>`. Only `up` providers unless `state` says otherwise (`any` for all).',
        querystring: PrometheusSdQuery,
        response: { 200: Type.Array(TargetGroup), ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { service, tag } = request.query;
      const state = request.query.state ?? 'up';
      const providers = service === undefined ? [...replica.providers()] : replica.service(service);
      return providers
        .filter(
          (p) =>
            (state === 'any' || p.state === state) &&
            (tag === undefined || p.tags.includes(tag)) &&
            ctx.acl.canRead(request, p.service),
        )
        .sort(byId)
        .map((p) => ({ targets: [hostPort(p)], labels: prometheusLabels(p) }));
    },
  );
}

import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { MassDownGuardStatus, StoreHealth } from '../../bridge/index.ts';
import type { GatewayContext } from '../context.ts';
import { leaderMetrics, mergeMetrics } from '../leader-metrics.ts';
import { Health, Readiness } from '../schemas.ts';

/** Readiness plus the leader's mass-down guard: still ready (reads are served), but operators must see the hold. */
const ReadinessWithGuard = Type.Object({
  ...Readiness.properties,
  massDownGuard: Type.Union([MassDownGuardStatus, Type.Null()], {
    description: 'The leader holds down transitions while active (a likely network or worker cut-off); null if unknown',
  }),
  leaderStore: Type.Union([StoreHealth, Type.Null()], {
    description:
      "The leader's store as of its last answer: while it fails commits the gateway is not ready (writes get SB_STORE_UNAVAILABLE); null if unknown",
  }),
  reason: Type.Optional(Type.String({ description: 'Why the gateway is not ready' })),
});

export async function healthRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['operations'];

  app.get(
    '/healthz',
    { schema: { tags, summary: 'The gateway process is alive', response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags,
        summary: 'Ready: the replica is loaded and in sync with a reachable leader',
        response: { 200: ReadinessWithGuard, 503: ReadinessWithGuard },
      },
    },
    async (_request, reply) => {
      const status = ctx.follower.status();
      const store = ctx.leader.store;
      const storeFailing = store?.healthy === false && status.leaderReachable;
      const ready = status.loaded && !status.stale && !storeFailing;
      const reason = !status.loaded
        ? 'the replica is not loaded yet'
        : status.stale
          ? 'no contact with the leader: reads are served but may be stale'
          : storeFailing
            ? `the leader cannot write its store: ${store.error ?? 'failing'}`
            : undefined;
      return reply
        .code(ready ? 200 : 503)
        .send({ ready, ...status, massDownGuard: ctx.leader.guard, leaderStore: store, ...(reason ? { reason } : {}) });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags,
        summary: 'Prometheus metrics of the gateway, and of the leader under switchboard_leader_*',
        produces: ['text/plain'],
        response: { 200: Type.String({ description: 'Prometheus text exposition format' }) },
      },
    },
    async (_request, reply) => {
      const [local, leader] = await Promise.all([ctx.metrics.render(), leaderMetrics(ctx.leader)]);
      return reply.type(ctx.metrics.contentType).send(mergeMetrics(local, leader));
    },
  );
}

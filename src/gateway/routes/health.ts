import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { GatewayContext } from '../context.ts';
import { Health, Readiness } from '../schemas.ts';

export async function healthRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['operations'];

  app.get('/healthz', { schema: { tags, summary: 'The gateway process is alive', response: { 200: Health } } }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    {
      schema: {
        tags,
        summary: 'Ready: the replica is loaded and in sync with a reachable leader',
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const status = ctx.follower.status();
      const ready = status.loaded && !status.stale;
      return reply.code(ready ? 200 : 503).send({ ready, ...status });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags,
        summary: 'Prometheus metrics',
        produces: ['text/plain'],
        response: { 200: Type.String({ description: 'Prometheus text exposition format' }) },
      },
    },
    async (_request, reply) => reply.type('text/plain; version=0.0.4').send(ctx.metrics.render()),
  );
}

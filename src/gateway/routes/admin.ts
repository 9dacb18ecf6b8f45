import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { GatewayContext } from '../context.ts';
import { errorResponses } from '../schemas.ts';

/** Operator actions forwarded to the leader. */
export async function adminRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/v1/admin/release-guard',
    {
      schema: {
        tags: ['operations'],
        summary: 'Release the mass-down guard',
        description:
          'While the leader holds down transitions (mass-down guard active), publish them all now: the operator says the providers are really gone. ' +
          'A no-op when the guard is not active.',
        response: {
          200: Type.Object({ rev: Type.Integer({ description: 'Revision once the released downs are stored' }) }),
          ...errorResponses(503),
        },
      },
    },
    async () => {
      const ack = await ctx.writes.write({ type: 'guard.release' });
      return { rev: ack.rev };
    },
  );
}

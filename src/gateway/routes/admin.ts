import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { snapshotFile, SnapshotFile } from '../../bridge/index.ts';
import type { GatewayContext } from '../context.ts';
import { errorResponses } from '../schemas.ts';
import { httpError } from '../errors.ts';

/** Operator actions forwarded to the leader. */
export async function adminRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/v1/admin/cluster',
    {
      schema: {
        tags: ['operations'],
        summary: 'The leader, its standbys, its store and its workers',
        description:
          'Asked of the active leader at each call: its epoch and revision, every live worker with the number of providers it watches, checked providers waiting for a worker, ' +
          'where the registry is stored, and every leader process in line for the leadership (etcd store; the active one first, with its term). ' +
          '503 `SB_LEADER_UNAVAILABLE` when no leader answers.',
        response: {
          200: Type.Object({
            session: Type.String({ description: 'Changes each time the leader process restarts' }),
            epoch: Type.String(),
            rev: Type.Integer(),
            providers: Type.Integer(),
            workers: Type.Array(Type.Object({ id: Type.String(), tasks: Type.Integer(), lastSeenMs: Type.Number() })),
            unassigned: Type.Integer(),
            store: Type.Object({
              kind: Type.Union([Type.Literal('sqlite'), Type.Literal('etcd')]),
              path: Type.String({ description: 'The SQLite file, or the etcd URL and key prefix' }),
            }),
            active: Type.Object({
              endpoint: Type.String({ description: 'Control endpoint of the active leader' }),
              session: Type.String(),
              term: Type.Integer({ description: "The election key's create revision in etcd; 0 with SQLite" }),
            }),
            candidates: Type.Array(
              Type.Object({ endpoint: Type.String(), term: Type.Integer(), active: Type.Boolean() }),
              { description: 'Every leader process in line, the active one first' },
            ),
          }),
          ...errorResponses(503),
        },
      },
    },
    async () => {
      const reply = await ctx.writes.ask({ type: 'cluster' });
      if (reply.type !== 'cluster.reply')
        throw httpError('SB_LEADER_FAILED', `unexpected reply '${reply.type}' from the leader`);
      const { type: _t, reqId: _r, ...status } = reply;
      return status;
    },
  );

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
          ...errorResponses(403, 415, 429, 503),
        },
      },
    },
    async () => {
      const ack = await ctx.writes.write({ type: 'guard.release' });
      return { rev: ack.rev };
    },
  );

  app.get(
    '/v1/admin/snapshot',
    {
      schema: {
        tags: ['operations'],
        summary: 'An online snapshot of the registry',
        description:
          "The leader's committed state at one revision, asked of the leader at each call (whichever store it uses); " +
          'nothing is stopped. This is the file `switchboard snapshot save` writes and `switchboard snapshot restore` reads.',
        response: { 200: SnapshotFile, ...errorResponses(503) },
      },
    },
    async () => {
      const reply = await ctx.writes.ask({ type: 'snapshot' });
      if (reply.type !== 'snapshot.reply')
        throw httpError('SB_LEADER_FAILED', `unexpected reply '${reply.type}' from the leader`);
      // Tokens (secrets as hashes only) and policies travel with the providers, asked of the leader too.
      const acl = await ctx.writes.ask({ type: 'acl.get' });
      if (acl.type !== 'acl.reply')
        throw httpError('SB_LEADER_FAILED', `unexpected reply '${acl.type}' from the leader`);
      return snapshotFile(reply.epoch, reply.rev, reply.providers, { acl: acl.state });
    },
  );
}

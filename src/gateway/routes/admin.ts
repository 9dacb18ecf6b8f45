import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { snapshotFile, SnapshotFile, type Provider } from '../../bridge/index.ts';
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

  const snapshots = new AdminSnapshots(ctx);
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
    () => snapshots.get(),
  );
}

/**
 * The leader refuses a peer the revision it sent that peer less than a second ago, and a second request from a peer
 * while its first waits (SB_BUSY, snapshot-replies.ts), and every request through this gateway is one peer. So two
 * calls within a second, or at once, answered 503 (found by test/fuzz/rest.test.ts). Calls at once share one request,
 * and the providers are answered again for REUSE_MS while the replica knows of nothing newer. Tokens and policies
 * are small and change apart from the revision: they are asked each time.
 */
class AdminSnapshots {
  static readonly REUSE_MS = 1000;
  readonly #ctx: GatewayContext;
  #inFlight: Promise<Registry> | undefined;
  #last: Registry | undefined;
  #forget: NodeJS.Timeout | undefined;

  constructor(ctx: GatewayContext) {
    this.#ctx = ctx;
  }

  async get(): Promise<SnapshotFile> {
    const [registry, acl] = await Promise.all([this.#registry(), this.#ctx.writes.ask({ type: 'acl.get' })]);
    if (acl.type !== 'acl.reply') throw httpError('SB_LEADER_FAILED', `unexpected reply '${acl.type}' from the leader`);
    // Tokens (secrets as hashes only) and policies travel with the providers.
    return snapshotFile(registry.epoch, registry.rev, registry.providers, { acl: acl.state });
  }

  #registry(): Promise<Registry> {
    const last = this.#last;
    const replica = this.#ctx.follower.replica;
    if (last && last.epoch === replica.epoch && replica.rev <= last.rev) return Promise.resolve(last);
    this.#inFlight ??= this.#ask().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  async #ask(): Promise<Registry> {
    const reply = await this.#ctx.writes.ask({ type: 'snapshot' });
    if (reply.type !== 'snapshot.reply')
      throw httpError('SB_LEADER_FAILED', `unexpected reply '${reply.type}' from the leader`);
    const registry = { epoch: reply.epoch, rev: reply.rev, providers: reply.providers };
    this.#last = registry;
    clearTimeout(this.#forget);
    // Not kept longer: a registry's snapshot is large.
    this.#forget = setTimeout(() => (this.#last = undefined), AdminSnapshots.REUSE_MS).unref();
    return registry;
  }
}

/** The providers of one leader snapshot. */
interface Registry {
  epoch: string;
  rev: number;
  providers: Provider[];
}

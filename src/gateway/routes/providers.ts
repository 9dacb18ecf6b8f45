import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { STATUS_CODES } from 'node:http';
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import {
  checkTargets,
  describeRefusal,
  HttpCheck,
  normalizeHost,
  Provider,
  ProviderInput,
  TcpCheck,
  TtlCheck,
  ZmqCheck,
} from '../../bridge/index.ts';
import type { GatewayContext } from '../context.ts';
import { httpError } from '../errors.ts';
import {
  BATCH_BODY_LIMIT,
  BatchRegistration,
  BatchResult,
  errorResponses,
  MaintenanceBody,
  ProviderParams,
  type BatchProvider,
} from '../schemas.ts';

/** Each check variant on its own: the union's error would name a field of the first variant (`endpoint`). */
const CHECK_VARIANTS: Record<
  string,
  {
    Check(v: unknown): boolean;
    Errors(v: unknown): Iterable<{ instancePath: string; message: string; keyword: string; params: unknown }>;
  }
> = {
  zmq: Compile(ZmqCheck),
  http: Compile(HttpCheck),
  tcp: Compile(TcpCheck),
  ttl: Compile(TtlCheck),
};

/** preValidation: a check with a known `type` is validated against that type, so the 400 names the real field. */
async function validateCheck(request: { body: unknown }): Promise<void> {
  const check = (request.body as { check?: unknown } | null)?.check;
  if (!check || typeof check !== 'object' || Array.isArray(check)) return;
  const variant = CHECK_VARIANTS[String((check as { type?: unknown }).type)];
  if (!variant || variant.Check(check)) return;
  for (const e of variant.Errors(check)) {
    const extra = (e.params as { additionalProperties?: string[] }).additionalProperties;
    const detail =
      e.keyword === 'additionalProperties' && extra
        ? `must NOT have additional property '${extra.join(', ')}'`
        : e.message;
    throw httpError('FST_ERR_VALIDATION', `body/check${e.instancePath} ${detail}`);
  }
}

/** preHandler: one spelling per address (`127.1` is `127.0.0.1`), and no port or garbage in `host`. */
async function canonicalHost(request: { body: unknown }): Promise<void> {
  const body = request.body as ProviderInput;
  const host = normalizeHost(body.host);
  if (host === null)
    throw httpError('FST_ERR_VALIDATION', 'body/host must be a hostname or an IP address, without a port');
  body.host = host;
}

/** With ACLs on, the provider records the token that registered it (the leader counts it against its quota). */
function owner(request: FastifyRequest): { owner?: string } {
  return request.tokenAccessor ? { owner: request.tokenAccessor } : {};
}

export async function providerRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['providers'];
  /** preHandler: a check may not aim at link-local, metadata, ipc://, the gateway itself (check-policy.ts). */
  const checkTarget = async (request: { body: unknown }): Promise<void> => {
    await canonicalHost(request);
    const refused = ctx.checkPolicy.refuseTargets(checkTargets(request.body as ProviderInput));
    if (refused) throw httpError('SB_CHECK_TARGET_REFUSED', describeRefusal(refused));
  };

  app.put(
    '/v1/providers/:id',
    {
      schema: {
        tags,
        summary: 'Register or update a provider under a chosen id',
        description: 'Answers once the leader has stored the provider durably: 201 when new, 200 when updated.',
        params: ProviderParams,
        body: ProviderInput,
        response: { 200: Provider, 201: Provider, ...errorResponses(400, 403, 409, 413, 415, 429, 503) },
      },
      preValidation: validateCheck,
      preHandler: checkTarget,
    },
    async (request, reply) => {
      const ack = await ctx.writes.writeProvider({
        type: 'put',
        id: request.params.id,
        input: request.body,
        ...owner(request),
      });
      return reply.code(ack.status).send(ack.provider);
    },
  );

  app.post(
    '/v1/providers',
    {
      schema: {
        tags,
        summary: 'Register a provider; the server chooses its id',
        description:
          'The id is stable for the same service, host, port and protocol: registering again answers 200 with the same id.',
        body: ProviderInput,
        response: { 200: Provider, 201: Provider, ...errorResponses(400, 403, 409, 413, 415, 429, 503) },
      },
      preValidation: validateCheck,
      preHandler: checkTarget,
    },
    async (request, reply) => {
      const ack = await ctx.writes.writeProvider({ type: 'put', input: request.body, ...owner(request) });
      return reply.code(ack.status).send(ack.provider);
    },
  );

  /** One provider of a batch: the single route's checks and write, its error as a result instead of a throw. */
  const registerOne = async (
    http: FastifyRequest,
    item: BatchProvider,
  ): Promise<Static<typeof BatchResult>['results'][number]> => {
    try {
      const { id, ...input } = item;
      // As the single route's ACL check: write on the body's service, and on the current one of an existing id.
      ctx.acl.require(http, { access: 'write', service: input.service });
      const current = id === undefined ? undefined : ctx.follower.replica.provider(id)?.service;
      if (current !== undefined) ctx.acl.require(http, { access: 'write', service: current });
      const request = { body: input };
      await validateCheck(request);
      await checkTarget(request);
      const ack = await ctx.writes.writeProvider(
        id === undefined
          ? { type: 'put', input: request.body, ...owner(http) }
          : { type: 'put', id, input: request.body, ...owner(http) },
      );
      return { status: ack.status, provider: ack.provider };
    } catch (err) {
      const e = err as { statusCode?: number; code?: string; message?: string };
      const statusCode = e.statusCode ?? 500;
      if (statusCode >= 500 && !e.code?.startsWith('SB_')) throw err;
      const error = {
        statusCode,
        error: STATUS_CODES[statusCode] ?? 'Error',
        message: e.message ?? '',
        code: e.code ?? 'SB_LEADER_FAILED',
      };
      return { status: statusCode, error };
    }
  };

  app.put(
    '/v1/providers',
    {
      bodyLimit: BATCH_BODY_LIMIT,
      schema: {
        tags,
        summary: 'Register or update many providers at once',
        description:
          `Each provider is registered as \`PUT /v1/providers/:id\` would (without \`id\`: as \`POST /v1/providers\`), ` +
          `and the writes of the batch reach the leader together. Answers 200 once every provider has its result, ` +
          `in the order sent: \`status\` 201 or 200 with the stored \`provider\`, or the single route's error ` +
          `status with its \`error\` (same codes). A malformed body is refused whole (400).`,
        body: BatchRegistration,
        response: { 200: BatchResult, ...errorResponses(400, 403, 413, 415, 429) },
      },
    },
    async (request) => ({ results: await Promise.all(request.body.map((item) => registerOne(request, item))) }),
  );

  app.get(
    '/v1/providers/:id',
    {
      schema: {
        tags,
        summary: 'One provider',
        params: ProviderParams,
        response: { 200: Provider, ...errorResponses(400, 404, 503) },
      },
    },
    async (request) => {
      const provider = ctx.follower.replica.provider(request.params.id);
      if (!provider) throw httpError('SB_PROVIDER_NOT_FOUND', request.params.id);
      return provider;
    },
  );

  app.delete(
    '/v1/providers/:id',
    {
      schema: {
        tags,
        summary: 'Deregister a provider',
        params: ProviderParams,
        response: { 204: Type.Null({ description: 'Deregistered' }), ...errorResponses(400, 403, 404, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      await ctx.writes.write({ type: 'delete', id: request.params.id });
      return reply.code(204).send(null);
    },
  );

  app.put(
    '/v1/providers/:id/ttl',
    {
      schema: {
        tags,
        summary: 'TTL check pass',
        description: 'A provider with a `ttl` check calls this at least every `ttlMs` to stay up.',
        params: ProviderParams,
        response: {
          204: Type.Null({ description: 'Pass recorded' }),
          ...errorResponses(400, 403, 404, 409, 415, 429, 503),
        },
      },
    },
    async (request, reply) => {
      await ctx.writes.write({ type: 'ttl', id: request.params.id });
      return reply.code(204).send(null);
    },
  );

  app.put(
    '/v1/providers/:id/maintenance',
    {
      schema: {
        tags,
        summary: 'Put a provider in or out of maintenance',
        description: 'In maintenance a provider is not `up` in lookups, whatever its checks say; it stays registered.',
        params: ProviderParams,
        body: MaintenanceBody,
        response: { 200: Provider, ...errorResponses(400, 403, 404, 413, 415, 429, 503) },
      },
    },
    async (request) => {
      const { enabled, reason } = request.body;
      const ack = await ctx.writes.writeProvider({
        type: 'maintenance',
        id: request.params.id,
        enabled,
        ...(reason === undefined ? {} : { reason }),
      });
      return ack.provider;
    },
  );
}

/**
 * `/v1/acl/*`: tokens and policies over REST (Consul's ACL API, reduced). Each change is forwarded to the leader as
 * one `acl.write` and answered once it is durable and visible on this gateway (read-your-writes: the follower
 * fetches the new ACL version before the answer). A token's secret is made here and shown once, in the answer to
 * its creation; stores and replicas keep only its hash.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import {
  MAX_ACL_PROVIDER_QUOTA,
  ACL_POLICY_NAME_PATTERN,
  AclPolicy,
  AclRule,
  AclToken,
  hashAclSecret,
  newAclAccessor,
  newAclSecret,
  type AclOp,
} from '../../bridge/index.ts';
import type { GatewayContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { errorResponses } from '../schemas.ts';

const Description = Type.Optional(Type.String({ maxLength: 512 }));
const Policies = Type.Array(Type.String({ pattern: ACL_POLICY_NAME_PATTERN }), {
  maxItems: 64,
  description: 'Names of the policies the token holds',
});
const MaxProviders = Type.Integer({
  minimum: 0,
  maximum: MAX_ACL_PROVIDER_QUOTA,
  description: "Providers this token may have registered at once (absent: the leader's --acl-max-providers)",
});

/** A token as the API shows it: never its secret (nor the secret's hash). */
export const AclTokenView = Type.Object({
  accessor: AclToken.properties.accessor,
  description: Description,
  policies: Policies,
  maxProviders: Type.Optional(MaxProviders),
  createdAt: AclToken.properties.createdAt,
});
export type AclTokenView = Static<typeof AclTokenView>;

const CreatedToken = Type.Object({
  ...AclTokenView.properties,
  secret: Type.String({ description: 'The token itself (send it as Authorization: Bearer). Shown only this once.' }),
});

const TokenCreateBody = Type.Object(
  { description: Description, policies: Policies, maxProviders: Type.Optional(MaxProviders) },
  { additionalProperties: false },
);
const TokenUpdateBody = Type.Object(
  {
    description: Description,
    policies: Type.Optional(Policies),
    maxProviders: Type.Optional(
      Type.Union([MaxProviders, Type.Null()], { description: "null goes back to the leader's default" }),
    ),
  },
  { additionalProperties: false },
);
const PolicyBody = Type.Object(
  {
    description: AclPolicy.properties.description,
    rules: Type.Array(AclRule, {
      maxItems: 1000,
      description:
        'Per service (`{service, access}`) or name prefix (`{prefix, access}`, `""` for every service); access is read, write or deny. An exact service rule beats any prefix, a longer prefix a shorter one, deny beats write beats read.',
    }),
    admin: Type.Optional(Type.Boolean({ description: 'Tokens and policies, guard release, cluster view, snapshots' })),
  },
  { additionalProperties: false },
);
const AccessorParams = Type.Object({ accessor: AclToken.properties.accessor });
const NameParams = Type.Object({ name: Type.String({ pattern: ACL_POLICY_NAME_PATTERN }) });

function view(token: AclToken): AclTokenView {
  const { secretHash: _hash, ...rest } = token;
  return rest;
}

export async function aclRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['acl'];
  const index = () => ctx.acl.index;

  /** Sends one change to the leader; resolves once it is durable and this gateway holds it. */
  async function change(request: FastifyRequest, op: AclOp): Promise<void> {
    const ack = await ctx.writes.ask({ type: 'acl.write', op });
    if (ack.type !== 'ack') throw httpError('SB_LEADER_FAILED', `unexpected reply '${ack.type}' from the leader`);
    try {
      await ctx.follower.refreshAcl(ack.aclVersion);
    } catch (err) {
      // Stored all the same: other gateways (and this one, at the next pong) will see it.
      request.log.warn({ err: (err as Error).message }, 'ACL change stored but not fetched back yet');
    }
  }

  app.get(
    '/v1/acl/token/self',
    {
      schema: {
        tags,
        summary: 'The token this request carries',
        response: { 200: AclTokenView, ...errorResponses(401) },
      },
    },
    async (request) => {
      const token = ctx.acl.enabled ? index().token(ctx.acl.authenticate(request).accessor) : undefined;
      if (!token)
        throw httpError('SB_ACL_NOT_FOUND', 'ACLs are off on this gateway: requests carry no token to describe');
      return view(token);
    },
  );

  app.get(
    '/v1/acl/tokens',
    {
      schema: {
        tags,
        summary: 'Every token (without secrets)',
        response: { 200: Type.Array(AclTokenView), ...errorResponses(401, 403) },
      },
    },
    async () =>
      [...index().tokens()].sort((a, b) => a.createdAt - b.createdAt || (a.accessor < b.accessor ? -1 : 1)).map(view),
  );

  app.post(
    '/v1/acl/tokens',
    {
      schema: {
        tags,
        summary: 'Create a token; the answer carries its secret, shown only this once',
        body: TokenCreateBody,
        response: { 201: CreatedToken, ...errorResponses(400, 401, 403, 409, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const secret = newAclSecret();
      const token: AclToken = {
        accessor: newAclAccessor(),
        secretHash: hashAclSecret(secret),
        ...(request.body.description === undefined ? {} : { description: request.body.description }),
        policies: request.body.policies,
        ...(request.body.maxProviders === undefined ? {} : { maxProviders: request.body.maxProviders }),
        createdAt: Date.now(),
      };
      await change(request, { op: 'token.create', token });
      return reply.code(201).send({ ...view(token), secret });
    },
  );

  const token = (accessor: string): AclToken => {
    const found = index().token(accessor);
    if (!found) throw httpError('SB_ACL_NOT_FOUND', `no token with accessor '${accessor}'`);
    return found;
  };

  app.get(
    '/v1/acl/tokens/:accessor',
    {
      schema: {
        tags,
        summary: 'One token (without its secret)',
        params: AccessorParams,
        response: { 200: AclTokenView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => view(token(request.params.accessor)),
  );

  app.put(
    '/v1/acl/tokens/:accessor',
    {
      schema: {
        tags,
        summary: "Change a token's description, policies or quota (the fields given)",
        params: AccessorParams,
        body: TokenUpdateBody,
        response: { 200: AclTokenView, ...errorResponses(400, 401, 403, 404, 409, 415, 429, 503) },
      },
    },
    async (request) => {
      const { accessor } = request.params;
      await change(request, { op: 'token.update', accessor, ...request.body });
      return view(token(accessor));
    },
  );

  app.delete(
    '/v1/acl/tokens/:accessor',
    {
      schema: {
        tags,
        summary: 'Revoke a token (refused for the last token holding admin)',
        params: AccessorParams,
        response: {
          204: Type.Null({ description: 'Revoked' }),
          ...errorResponses(400, 401, 403, 404, 409, 415, 429, 503),
        },
      },
    },
    async (request, reply) => {
      await change(request, { op: 'token.delete', accessor: request.params.accessor });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/acl/policies',
    {
      schema: {
        tags,
        summary: 'Every policy',
        response: { 200: Type.Array(AclPolicy), ...errorResponses(401, 403) },
      },
    },
    async () => [...index().policies()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  );

  const policy = (name: string): AclPolicy => {
    const found = index().policy(name);
    if (!found) throw httpError('SB_ACL_NOT_FOUND', `no policy named '${name}'`);
    return found;
  };

  app.get(
    '/v1/acl/policies/:name',
    {
      schema: {
        tags,
        summary: 'One policy',
        params: NameParams,
        response: { 200: AclPolicy, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => policy(request.params.name),
  );

  app.put(
    '/v1/acl/policies/:name',
    {
      schema: {
        tags,
        summary: 'Create or replace a policy',
        description: '201 when new, 200 when it replaced a policy of that name.',
        params: NameParams,
        body: PolicyBody,
        response: { 200: AclPolicy, 201: AclPolicy, ...errorResponses(400, 401, 403, 409, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const existed = index().policy(name) !== undefined;
      const body: AclPolicy = { name, ...request.body };
      await change(request, { op: 'policy.put', policy: body });
      return reply.code(existed ? 200 : 201).send(index().policy(name) ?? body);
    },
  );

  app.delete(
    '/v1/acl/policies/:name',
    {
      schema: {
        tags,
        summary: 'Delete a policy (refused while a token holds it, and for global-management)',
        params: NameParams,
        response: {
          204: Type.Null({ description: 'Deleted' }),
          ...errorResponses(400, 401, 403, 404, 409, 415, 429, 503),
        },
      },
    },
    async (request, reply) => {
      await change(request, { op: 'policy.delete', name: request.params.name });
      return reply.code(204).send(null);
    },
  );
}

/**
 * `switchboard acl token …` and `switchboard acl policy …`: tokens and policies through a gateway's /v1/acl API.
 * Needs an admin token (`--token` or SWITCHBOARD_TOKEN), like every ACL route but `token self`.
 */
import { call, EXIT, intFlag, UsageError, type Ctx, type HumanCommand } from './api.ts';
import { fields, table } from './table.ts';

interface TokenView {
  accessor: string;
  description?: string;
  policies: string[];
  maxProviders?: number;
  createdAt: number;
  secret?: string;
}

type Rule = { service: string; access: string } | { prefix: string; access: string };

interface PolicyView {
  name: string;
  description?: string;
  rules: Rule[];
  admin?: boolean;
}

const ACCESS = ['read', 'write', 'deny'];

/** `service=billing:write`, `prefix=bill:read`, `prefix=:read` (every service). */
export function parseRule(text: string): Rule {
  const m = /^(service|prefix)=([^:]*):([a-z]+)$/.exec(text);
  if (!m || !ACCESS.includes(m[3]) || (m[1] === 'service' && m[2] === ''))
    throw new UsageError(
      `--rule wants service=NAME:ACCESS or prefix=PREFIX:ACCESS with ACCESS read, write or deny; got '${text}'`,
    );
  return m[1] === 'service' ? { service: m[2], access: m[3] } : { prefix: m[2], access: m[3] };
}

const ruleText = (r: Rule): string => ('service' in r ? `service=${r.service}` : `prefix=${r.prefix}`) + `:${r.access}`;

function tokenFields(t: TokenView): string {
  const pairs: Array<[string, string]> = [
    ['accessor', t.accessor],
    ['description', t.description ?? '-'],
    ['policies', t.policies.join(', ') || '-'],
    ['max providers', t.maxProviders === undefined ? 'default' : String(t.maxProviders)],
    ['created', new Date(t.createdAt).toISOString()],
  ];
  if (t.secret) pairs.push(['secret', `${t.secret}   (shown only now: keep it)`]);
  return fields(pairs);
}

function policyFields(p: PolicyView): string {
  return fields([
    ['name', p.name],
    ['description', p.description ?? '-'],
    ['admin', p.admin ? 'yes' : 'no'],
    ['rules', p.rules.map(ruleText).join(', ') || '-'],
  ]);
}

const one = (positionals: string[], what: string): string => {
  if (positionals.length !== 1) throw new UsageError(`give exactly one ${what}`);
  return encodeURIComponent(positionals[0]);
};

function tokenBody(v: Record<string, unknown>, create: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (typeof v.description === 'string') body.description = v.description;
  if (Array.isArray(v.policy)) body.policies = v.policy;
  else if (create) body.policies = [];
  if (v['max-providers'] === 'default' && !create) body.maxProviders = null;
  else {
    const max = intFlag(v['max-providers'], 'max-providers');
    if (max !== undefined) body.maxProviders = max;
  }
  return body;
}

async function tokenCommand(ctx: Ctx, verb: string, v: Record<string, unknown>, args: string[]): Promise<number> {
  const show = (t: TokenView): void => ctx.out(ctx.json ? JSON.stringify(t) + '\n' : tokenFields(t));
  switch (verb) {
    case 'create': {
      if (args.length) throw new UsageError(`unexpected argument '${args[0]}'`);
      show((await call<TokenView>(ctx, 'POST', '/v1/acl/tokens', tokenBody(v, true))).body);
      return EXIT.OK;
    }
    case 'list': {
      const tokens = (await call<TokenView[]>(ctx, 'GET', '/v1/acl/tokens')).body;
      if (ctx.json) ctx.out(JSON.stringify(tokens) + '\n');
      else
        ctx.out(
          table(
            ['ACCESSOR', 'POLICIES', 'MAX', 'DESCRIPTION'],
            tokens.map((t) => [
              t.accessor,
              t.policies.join(',') || '-',
              t.maxProviders === undefined ? '-' : String(t.maxProviders),
              t.description ?? '-',
            ]),
          ),
        );
      return EXIT.OK;
    }
    case 'read': {
      const path = args[0] === 'self' ? '/v1/acl/token/self' : `/v1/acl/tokens/${one(args, 'accessor')}`;
      show((await call<TokenView>(ctx, 'GET', path)).body);
      return EXIT.OK;
    }
    case 'update': {
      const body = tokenBody(v, false);
      if (Object.keys(body).length === 0)
        throw new UsageError('give what to change: --policy, --description or --max-providers');
      show((await call<TokenView>(ctx, 'PUT', `/v1/acl/tokens/${one(args, 'accessor')}`, body)).body);
      return EXIT.OK;
    }
    case 'delete': {
      await call(ctx, 'DELETE', `/v1/acl/tokens/${one(args, 'accessor')}`);
      ctx.out(ctx.json ? JSON.stringify({ accessor: args[0], deleted: true }) + '\n' : `deleted token ${args[0]}\n`);
      return EXIT.OK;
    }
  }
  throw new UsageError(`unknown token command '${verb}': create, list, read, update or delete`);
}

async function policyCommand(ctx: Ctx, verb: string, v: Record<string, unknown>, args: string[]): Promise<number> {
  switch (verb) {
    case 'create': {
      const name = one(args, 'policy name');
      const rules = ((v.rule as string[] | undefined) ?? []).map(parseRule);
      if (rules.length === 0 && v.admin !== true) throw new UsageError('give at least one --rule, or --admin');
      const body = {
        rules,
        ...(v.admin === true ? { admin: true } : {}),
        ...(typeof v.description === 'string' ? { description: v.description } : {}),
      };
      const res = await call<PolicyView>(ctx, 'PUT', `/v1/acl/policies/${name}`, body);
      ctx.out(ctx.json ? JSON.stringify(res.body) + '\n' : policyFields(res.body));
      return EXIT.OK;
    }
    case 'list': {
      const policies = (await call<PolicyView[]>(ctx, 'GET', '/v1/acl/policies')).body;
      if (ctx.json) ctx.out(JSON.stringify(policies) + '\n');
      else
        ctx.out(
          table(
            ['NAME', 'ADMIN', 'RULES', 'DESCRIPTION'],
            policies.map((p) => [
              p.name,
              p.admin ? 'yes' : 'no',
              p.rules.map(ruleText).join(',') || '-',
              p.description ?? '-',
            ]),
          ),
        );
      return EXIT.OK;
    }
    case 'read': {
      const res = await call<PolicyView>(ctx, 'GET', `/v1/acl/policies/${one(args, 'policy name')}`);
      ctx.out(ctx.json ? JSON.stringify(res.body) + '\n' : policyFields(res.body));
      return EXIT.OK;
    }
    case 'delete': {
      await call(ctx, 'DELETE', `/v1/acl/policies/${one(args, 'policy name')}`);
      ctx.out(ctx.json ? JSON.stringify({ name: args[0], deleted: true }) + '\n' : `deleted policy ${args[0]}\n`);
      return EXIT.OK;
    }
  }
  throw new UsageError(`unknown policy command '${verb}': create, list, read or delete`);
}

export const ACL_COMMAND: HumanCommand = {
  summary: 'Manage tokens and policies (needs an admin token): acl token … | acl policy …',
  usage: [
    'switchboard acl token create [--policy NAME]... [--description TEXT] [--max-providers N]',
    '       switchboard acl token list | read ACCESSOR|self | delete ACCESSOR',
    '       switchboard acl token update ACCESSOR [--policy NAME]... [--description TEXT] [--max-providers N|default]',
    '       switchboard acl policy create NAME [--rule service=billing:write]... [--rule prefix=bill:read]... [--admin]',
    '       switchboard acl policy list | read NAME | delete NAME',
  ].join('\n'),
  options: {
    policy: { type: 'string', multiple: true },
    description: { type: 'string' },
    'max-providers': { type: 'string' },
    rule: { type: 'string', multiple: true },
    admin: { type: 'boolean' },
  },
  help: [
    '  --policy NAME     A policy the token holds (repeatable; update replaces the list)',
    '  --description T   What the token or policy is for',
    "  --max-providers N Providers the token may have registered at once (default: the leader's)",
    '  --rule R          service=NAME:ACCESS or prefix=PREFIX:ACCESS, ACCESS read|write|deny (repeatable);',
    '                    prefix=:read reads every service',
    '  --admin           The policy grants admin: tokens, policies, guard release, cluster, snapshots',
    '  A token create prints its secret once: keep it (the gateway stores only its hash).',
  ],
  async run(ctx, v, positionals) {
    const [kind, verb, ...args] = positionals;
    if (kind === 'token' && verb) return tokenCommand(ctx, verb, v, args);
    if (kind === 'policy' && verb) return policyCommand(ctx, verb, v, args);
    throw new UsageError('give token or policy, then a command (e.g. switchboard acl token list)');
  },
};

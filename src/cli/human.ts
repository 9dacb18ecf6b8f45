/**
 * The operator's commands of the `switchboard` binary, talking to a gateway over its REST API: `ls`, `get`,
 * `register`, `deregister`, `maint`, `watch`. Tables for humans, `--json` for scripts, and exit codes a script
 * can branch on (EXIT below, documented in docs/cli.md).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Provider } from '../bridge/index.ts';
import { ago, fields, table } from './table.ts';
import {
  ApiError,
  call,
  DEFAULT_CLI_TIMEOUT_MS,
  DEFAULT_GATEWAY,
  EXIT,
  intFlag,
  UsageError,
  type Ctx,
  type HumanCommand,
  type Io,
  type Options,
} from './api.ts';
import { ACL_COMMAND } from './acl.ts';

export { DEFAULT_CLI_TIMEOUT_MS, DEFAULT_GATEWAY, EXIT, UsageError };

const COMMON: Options = {
  gateway: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const COMMON_HELP = [
  `  --gateway URL     Gateway to talk to (default ${DEFAULT_GATEWAY}) [SWITCHBOARD_GATEWAY]`,
  '  --token TOKEN     Access token, sent as Authorization: Bearer (for gateways with ACLs) [SWITCHBOARD_TOKEN]',
  '  --json            Machine-readable output (one JSON document; NDJSON for watch)',
  `  --timeout MS      Request timeout (default ${DEFAULT_CLI_TIMEOUT_MS}) [SWITCHBOARD_TIMEOUT_MS]`,
  '  --version         Print the version',
  '  --help            Show this help',
];

const address = (p: Pick<Provider, 'host' | 'port'>): string =>
  p.host.includes(':') && !p.host.startsWith('[') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`;

function checkText(p: Provider): string {
  const c = p.check;
  if (!c) return 'none';
  switch (c.type) {
    case 'zmq':
      return `zmq ${c.endpoint}${c.intervalMs ? ` every ${c.intervalMs} ms` : ''}`;
    case 'http':
      return `http ${c.url}${c.intervalMs ? ` every ${c.intervalMs} ms` : ''}`;
    case 'tcp':
      return `tcp${c.intervalMs ? ` every ${c.intervalMs} ms` : ''}`;
    case 'ttl':
      return `ttl ${c.ttlMs} ms`;
  }
}

function providerRows(providers: Provider[]): string {
  return table(
    ['ID', 'STATE', 'ADDRESS', 'PROTOCOL', 'CHECK', 'TAGS', 'SINCE'],
    providers.map((p) => [
      p.id,
      p.state,
      address(p),
      p.protocol,
      p.check?.type ?? '-',
      p.tags.join(',') || '-',
      ago(p.stateSince),
    ]),
  );
}

function providerFields(p: Provider): string {
  const pairs: Array<[string, string]> = [
    ['id', p.id],
    ['service', p.service],
    ['address', address(p)],
    ['protocol', p.protocol],
    ['state', `${p.state} (since ${new Date(p.stateSince).toISOString()}, ${ago(p.stateSince)})`],
    ['check', checkText(p)],
    ['tags', p.tags.join(', ') || '-'],
    [
      'meta',
      Object.entries(p.meta)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '-',
    ],
  ];
  if (p.lastCheck)
    pairs.push([
      'last check',
      `${p.lastCheck.ok ? 'ok' : 'failed'} ${ago(p.lastCheck.at)}${p.lastCheck.output ? `: ${p.lastCheck.output}` : ''}`,
    ]);
  pairs.push(['registered', new Date(p.registeredAt).toISOString()], ['rev', String(p.rev)]);
  return fields(pairs);
}

const ID_ARG = (positionals: string[], what: string): string => {
  if (positionals.length !== 1) throw new UsageError(`give exactly one ${what}`);
  return positionals[0];
};

function parseMeta(items: string[]): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--meta wants key=value, got '${item}'`);
    meta[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return meta;
}

/** The body of `register`: a JSON file (`-` for stdin) if given, then the flags on top of it. */
function registrationBody(v: Record<string, unknown>): { id?: string; body: Record<string, unknown> } {
  let body: Record<string, unknown> = {};
  if (typeof v.file === 'string') {
    const text = v.file === '-' ? readFileSync(0, 'utf8') : readFileSync(v.file, 'utf8');
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`--file ${v.file} is not JSON: ${(err as Error).message}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new UsageError(`--file ${v.file} must hold one JSON object`);
  }
  let id = typeof body.id === 'string' ? body.id : undefined;
  delete body.id;
  if (typeof v.id === 'string') id = v.id;
  for (const k of ['service', 'host', 'protocol'] as const) if (typeof v[k] === 'string') body[k] = v[k];
  const port = intFlag(v.port, 'port');
  if (port !== undefined) body.port = port;
  if (Array.isArray(v.tag)) body.tags = v.tag;
  if (Array.isArray(v.meta)) body.meta = { ...(body.meta as object), ...parseMeta(v.meta as string[]) };
  const interval = intFlag(v['interval-ms'], 'interval-ms');
  const checks = [v['check-zmq'], v['check-http'], v['check-tcp'], v['check-ttl']].filter((c) => c !== undefined);
  if (checks.length > 1) throw new UsageError('give at most one --check-* flag');
  const every = interval === undefined ? {} : { intervalMs: interval };
  if (typeof v['check-zmq'] === 'string') body.check = { type: 'zmq', endpoint: v['check-zmq'], ...every };
  if (typeof v['check-http'] === 'string') body.check = { type: 'http', url: v['check-http'], ...every };
  if (v['check-tcp'] === true) body.check = { type: 'tcp', ...every };
  if (v['check-ttl'] !== undefined) body.check = { type: 'ttl', ttlMs: intFlag(v['check-ttl'], 'check-ttl') };
  body.protocol ??= 'http';
  const missing = ['service', 'host', 'port'].filter((k) => body[k] === undefined);
  if (missing.length) throw new UsageError(`missing ${missing.map((m) => `--${m}`).join(', ')} (or give --file)`);
  return { id, body };
}

export const HUMAN_COMMANDS: Record<string, HumanCommand> = {
  ls: {
    summary: 'List services, or the providers of one service.',
    usage: 'switchboard ls [SERVICE] [--state up|down|pending|maintenance] [--tag T] [--protocol P]',
    options: { state: { type: 'string' }, tag: { type: 'string' }, protocol: { type: 'string' } },
    help: [
      '  --state STATE     Only providers in this state (with SERVICE)',
      '  --tag TAG         Only providers carrying this tag (with SERVICE)',
      '  --protocol P      Only providers of this protocol (with SERVICE)',
    ],
    async run(ctx, v, positionals) {
      if (positionals.length > 1) throw new UsageError('give at most one service');
      if (positionals.length === 0) {
        if (v.state !== undefined || v.tag !== undefined || v.protocol !== undefined)
          throw new UsageError('--state, --tag and --protocol filter the providers of one SERVICE');
        const res = await call<{ rev: number; services: Array<{ name: string; providers: number; up: number }> }>(
          ctx,
          'GET',
          '/v1/services',
        );
        if (ctx.json) ctx.out(JSON.stringify(res.body) + '\n');
        else if (res.body.services.length === 0) ctx.err('no services registered\n');
        else
          ctx.out(
            table(
              ['SERVICE', 'PROVIDERS', 'UP'],
              res.body.services.map((s) => [s.name, String(s.providers), String(s.up)]),
            ),
          );
        return EXIT.OK;
      }
      const q = new URLSearchParams();
      for (const k of ['state', 'tag', 'protocol']) if (typeof v[k] === 'string') q.set(k, v[k]);
      const qs = q.size ? `?${q.toString()}` : '';
      const res = await call<{ providers: Provider[] }>(
        ctx,
        'GET',
        `/v1/services/${encodeURIComponent(positionals[0])}${qs}`,
      );
      if (ctx.json) ctx.out(JSON.stringify(res.body) + '\n');
      else if (res.body.providers.length === 0) ctx.err(`no providers of '${positionals[0]}' match\n`);
      else ctx.out(providerRows(res.body.providers));
      return EXIT.OK;
    },
  },
  get: {
    summary: 'Show one provider.',
    usage: 'switchboard get ID',
    options: {},
    help: [],
    async run(ctx, _v, positionals) {
      const id = ID_ARG(positionals, 'provider id');
      const res = await call<Provider>(ctx, 'GET', `/v1/providers/${encodeURIComponent(id)}`);
      ctx.out(ctx.json ? JSON.stringify(res.body) + '\n' : providerFields(res.body));
      return EXIT.OK;
    },
  },
  register: {
    summary: 'Register or update a provider, from flags or a JSON file; answers once durable.',
    usage:
      'switchboard register --service S --host H --port P [--protocol http] [--id ID] [--tag T]... [--meta K=V]... [--check-…] | --file provider.json',
    options: {
      file: { type: 'string', short: 'f' },
      id: { type: 'string' },
      service: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      protocol: { type: 'string' },
      tag: { type: 'string', multiple: true },
      meta: { type: 'string', multiple: true },
      'check-zmq': { type: 'string' },
      'check-http': { type: 'string' },
      'check-tcp': { type: 'boolean' },
      'check-ttl': { type: 'string' },
      'interval-ms': { type: 'string' },
    },
    help: [
      '  --file FILE       JSON body ({ service, host, port, protocol, check?, tags?, meta?, id? }); - reads stdin',
      '  --id ID           Register under this id (PUT); without it the gateway picks a stable one (POST)',
      '  --service S --host H --port P --protocol http|rpc-server|rpc-publisher (default http)',
      '  --tag T           A tag (repeatable)',
      '  --meta K=V        A meta entry (repeatable)',
      '  --check-zmq ENDPOINT | --check-http URL | --check-tcp | --check-ttl MS   How liveness is watched',
      '  --interval-ms MS  Check interval (zmq, http, tcp)',
      '  Flags override the fields of --file.',
    ],
    async run(ctx, v, positionals) {
      if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
      const { id, body } = registrationBody(v);
      const res = id
        ? await call<Provider>(ctx, 'PUT', `/v1/providers/${encodeURIComponent(id)}`, body)
        : await call<Provider>(ctx, 'POST', '/v1/providers', body);
      if (ctx.json) ctx.out(JSON.stringify(res.body) + '\n');
      else
        ctx.out(
          `${res.status === 201 ? 'registered' : 'updated'} ${res.body.id} (${res.body.service} at ${address(res.body)}, state ${res.body.state}, rev ${res.body.rev})\n`,
        );
      return EXIT.OK;
    },
  },
  deregister: {
    summary: 'Remove a provider.',
    usage: 'switchboard deregister ID',
    options: {},
    help: [],
    async run(ctx, _v, positionals) {
      const id = ID_ARG(positionals, 'provider id');
      await call(ctx, 'DELETE', `/v1/providers/${encodeURIComponent(id)}`);
      ctx.out(ctx.json ? JSON.stringify({ id, deregistered: true }) + '\n' : `deregistered ${id}\n`);
      return EXIT.OK;
    },
  },
  maint: {
    summary: 'Put a provider in maintenance (out of up lookups) or take it out.',
    usage: 'switchboard maint ID on|off [--reason TEXT]',
    options: { reason: { type: 'string' } },
    help: ['  --reason TEXT     Why (shown in the provider and in Consul-compatible reads)'],
    async run(ctx, v, positionals) {
      if (positionals.length !== 2 || !['on', 'off'].includes(positionals[1]))
        throw new UsageError('give a provider id and on or off');
      const [id, mode] = positionals;
      const body = { enabled: mode === 'on', ...(typeof v.reason === 'string' ? { reason: v.reason } : {}) };
      const res = await call<Provider>(ctx, 'PUT', `/v1/providers/${encodeURIComponent(id)}/maintenance`, body);
      ctx.out(ctx.json ? JSON.stringify(res.body) + '\n' : `${id}: maintenance ${mode} (state ${res.body.state})\n`);
      return EXIT.OK;
    },
  },
  watch: {
    summary: 'Follow changes live (all services, or the ones named) until Ctrl-C; fails over and resumes.',
    usage: 'switchboard watch [SERVICE...]',
    options: {},
    help: [],
    async run(ctx, _v, positionals) {
      // The Node client's watch: WebSocket, resumes from its last revision after a reconnect.
      const { SwitchboardClient } = await import('../client/index.ts');
      const client = new SwitchboardClient({
        gateways: [ctx.gateway],
        requestTimeoutMs: ctx.timeoutMs,
        ...(ctx.token ? { token: ctx.token } : {}),
      });
      const watch = client.watch({ services: positionals, retryDelayMs: 1000 });
      const stop = (): void => watch.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const time = (at: number): string => new Date(at).toISOString().slice(11, 23);
      try {
        for await (const u of watch) {
          if (ctx.json) {
            ctx.out(JSON.stringify(u.type === 'event' ? { type: 'event', ...u.event } : u) + '\n');
            continue;
          }
          switch (u.type) {
            case 'snapshot':
              if (u.providers.length) ctx.out(providerRows(u.providers));
              ctx.err(`watching ${positionals.join(', ') || 'every service'} from rev ${u.rev} (Ctrl-C to stop)\n`);
              break;
            case 'event': {
              const e = u.event;
              ctx.out(
                `${time(e.at)}  ${e.change.padEnd(12)}  ${e.service}  ${e.provider.id}  ${address(e.provider)}  ${e.provider.state}  rev ${e.rev}\n`,
              );
              break;
            }
            case 'failover':
              ctx.err(`reconnected to ${u.gateway}\n`);
              break;
          }
        }
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await client.close();
      }
      return EXIT.OK;
    },
  },
  acl: ACL_COMMAND,
};

export function humanHelp(name: string): string {
  const c = HUMAN_COMMANDS[name];
  return [`Usage: ${c.usage}`, '', c.summary, '', 'Flags:', ...c.help, ...COMMON_HELP, ''].join('\n');
}

/** Runs one operator command; resolves with the process exit code. */
export async function runHuman(name: string, argv: string[], io: Io): Promise<number> {
  const command = HUMAN_COMMANDS[name];
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...COMMON, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    io.err(`switchboard ${name}: ${(err as Error).message}\n\n${humanHelp(name)}`);
    return EXIT.USAGE;
  }
  const v = parsed.values as Record<string, unknown>;
  if (v.help) {
    io.out(humanHelp(name));
    return EXIT.OK;
  }
  const gateway = (typeof v.gateway === 'string' ? v.gateway : process.env.SWITCHBOARD_GATEWAY) || DEFAULT_GATEWAY;
  const ctx: Ctx = {
    ...io,
    gateway: gateway.replace(/\/+$/, ''),
    token: (typeof v.token === 'string' ? v.token : process.env.SWITCHBOARD_TOKEN) || undefined,
    json: v.json === true,
    timeoutMs: DEFAULT_CLI_TIMEOUT_MS,
  };
  try {
    if (!/^https?:\/\/[^\s]+$/.test(ctx.gateway))
      throw new UsageError(`--gateway must be an http(s) URL, got '${gateway}'`);
    ctx.timeoutMs =
      intFlag(v.timeout ?? (process.env.SWITCHBOARD_TIMEOUT_MS || undefined), 'timeout') ?? DEFAULT_CLI_TIMEOUT_MS;
    return await command.run(ctx, v, parsed.positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`switchboard ${name}: ${err.message}\n\n${humanHelp(name)}`);
      return EXIT.USAGE;
    }
    if (err instanceof ApiError) {
      io.err(`switchboard ${name}: ${err.message}\n`);
      if (err.status === 404) return EXIT.NOT_FOUND;
      if (err.status >= 400 && err.status < 500) return EXIT.REJECTED;
      return EXIT.FAILED;
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      io.err(`switchboard ${name}: ${(err as Error).message}\n`);
      return EXIT.USAGE;
    }
    throw err;
  }
}

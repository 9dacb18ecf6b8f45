#!/usr/bin/env node
/**
 * The `switchboard` binary: one role per subcommand, or all of them in one process (`start`). Logs (pino JSON)
 * go to stderr; stdout carries only the lines that say where each role listens.
 */
import type { Handle, Logger } from '../bridge/index.ts';
import type { start as StartGateway } from '../gateway/index.ts';
import type { start as StartLeader } from '../leader/index.ts';
import type { start as StartWorker } from '../worker/index.ts';
import { VERSION } from '../bridge/version.ts';
import { FLAGS, helpText, parseFlags, UsageError, type FlagKey, type FlagValue } from './flags.ts';
import { HUMAN_COMMANDS, runHuman } from './human.ts';
import { SNAPSHOT_SUMMARY } from './snapshot.ts';
import { KEYGEN_SUMMARY } from './keygen.ts';

interface Command {
  summary: string;
  flags: FlagKey[];
  run(values: Partial<Record<FlagKey, FlagValue>>, log: Logger, positionals: string[]): Promise<Handle[]>;
}

/** Exit code of a leader whose store kept failing past --store-fail-exit-ms (EX_TEMPFAIL: try again later). */
const STORE_FAILED_EXIT_CODE = 75;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const list = (v: unknown): string[] | undefined => (Array.isArray(v) ? (v as string[]) : undefined);

/** Gateway security options (see the README's Security section). */
const GATEWAY_SECURITY_FLAGS: FlagKey[] = [
  'acl',
  'insecure',
  'tlsCert',
  'tlsKey',
  'tlsClientCa',
  'allowedOrigins',
  'allowedHosts',
  'writeRateLimit',
  'writeRateWindowMs',
  'maxWatchers',
  'maxWatchersPerClient',
  'checkAllowCidr',
  'feedCurveSecretKey',
  'feedCurveAllow',
  'maxFeedConnectionsPerClient',
];

function securityConfig(v: Partial<Record<FlagKey, FlagValue>>): {
  acl?: 'on' | 'off';
  insecure?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  allowedOrigins?: string[];
  allowedHosts?: string[];
  writeRateLimit?: number;
  writeRateWindowMs?: number;
  maxWatchers?: number;
  maxWatchersPerAddress?: number;
  checkAllowCidr?: string[];
  feedCurveSecretKey?: string;
  feedCurveAllow?: string;
  maxFeedConnectionsPerClient?: number;
} {
  return {
    acl: v.acl === 'on' || v.acl === 'off' ? v.acl : undefined,
    insecure: v.insecure === true || v.insecure === 'true' || v.insecure === '1',
    tlsCert: str(v.tlsCert),
    tlsKey: str(v.tlsKey),
    tlsClientCa: str(v.tlsClientCa),
    allowedOrigins: list(v.allowedOrigins),
    allowedHosts: list(v.allowedHosts),
    writeRateLimit: int(v.writeRateLimit),
    writeRateWindowMs: int(v.writeRateWindowMs),
    maxWatchers: int(v.maxWatchers),
    maxWatchersPerAddress: int(v.maxWatchersPerClient),
    checkAllowCidr: list(v.checkAllowCidr),
    feedCurveSecretKey: str(v.feedCurveSecretKey),
    feedCurveAllow: str(v.feedCurveAllow),
    maxFeedConnectionsPerClient: int(v.maxFeedConnectionsPerClient),
  };
}

// The roles (Fastify, SQLite, ZeroMQ, …) load only when a role runs, so `ls`, `get` or `--version` start quickly.
const startLeader: typeof StartLeader = async (...args) => (await import('../leader/index.ts')).start(...args);
const startWorker: typeof StartWorker = async (...args) => (await import('../worker/index.ts')).start(...args);
const startGateway: typeof StartGateway = async (...args) => (await import('../gateway/index.ts')).start(...args);

/** Health-check policy of the leader: auto-deregistration and the mass-down guard. */
function leaderHealthFlags(v: Partial<Record<FlagKey, FlagValue>>): {
  deregisterAfterMs?: number;
  massDownPercent?: number;
} {
  return { deregisterAfterMs: int(v.deregisterAfterMs), massDownPercent: int(v.massDownPercent) };
}

/** Tokens and policies of the leader: the bootstrap token's secret and the default quota per token. */
function leaderAclFlags(v: Partial<Record<FlagKey, FlagValue>>): {
  bootstrapTokenFile?: string;
  aclMaxProviders?: number;
} {
  return { bootstrapTokenFile: str(v.bootstrapTokenFile), aclMaxProviders: int(v.aclMaxProviders) };
}

/** Gateway options for the change feeds (native ZeroMQ endpoints, history for resumes). */
function feedConfig(v: Partial<Record<FlagKey, FlagValue>>): {
  zmqPub?: string;
  zmqSnapshot?: string;
  historySize?: number;
  dns?: string;
  dnsTtlS?: number;
} {
  return {
    zmqPub: str(v.zmqPub),
    zmqSnapshot: str(v.zmqSnapshot),
    historySize: int(v.historySize),
    dns: str(v.dns),
    dnsTtlS: int(v.dnsTtl),
  };
}

/** The gateway's settings from its flags, following the leader at `leader` (events at `leaderEvents`). */
function gatewayConfig(v: Partial<Record<FlagKey, FlagValue>>, leader?: string, leaderEvents?: string) {
  return {
    leader,
    leaderEvents,
    httpHost: str(v.httpHost),
    httpPort: int(v.httpPort),
    writeTimeoutMs: int(v.writeTimeoutMs),
    curveSecretKey: str(v.curveSecretKey),
    curveServerKey: str(v.curveServerKey),
    ...feedConfig(v),
    ...securityConfig(v),
  };
}

/**
 * `switchboard start` with a key pair: every role uses it. The leader admits its own key (and --curve-allow's);
 * the worker and the gateways hold the same pair and expect the leader's key, which is theirs.
 */
async function startCurveKeys(v: Partial<Record<FlagKey, FlagValue>>) {
  const curveKeyFile = str(v.curveSecretKey);
  if (!curveKeyFile) return {};
  const { readKeyPair } = await import('../bridge/curve.ts');
  return { curveSecretKey: curveKeyFile, curveServerKey: readKeyPair('--curve-secret-key', curveKeyFile).publicKey };
}

/** Only when DNS is on, so scripts that parse the other lines see nothing new otherwise. */
function dnsLine(app: { switchboardDns: { address: string | null } }): string | null {
  const address = app.switchboardDns.address;
  return address ? `switchboard gateway dns: ${address} (udp, tcp)` : null;
}

/** A line of its own after `switchboard gateway: url=`, so that line keeps the format scripts parse. */
function feedLine(feed: { pub: string | null; snapshot: string | null }): string {
  return `switchboard gateway feed: pub=${feed.pub ?? 'off'} snapshot=${feed.snapshot ?? 'off'}`;
}

/** The one line an expected start failure deserves (no stack), or undefined for anything else. */
function startupLine(err: unknown): string | undefined {
  const e = err as { name?: string; message?: string; code?: unknown; address?: unknown; port?: unknown };
  if (e?.name === 'StartupError') return e.message;
  if (e?.code === 'EADDRINUSE' && typeof e.address === 'string') {
    const address = typeof e.port === 'number' ? `${e.address}:${e.port}` : e.address;
    return `cannot listen on ${address}: address already in use`;
  }
  return undefined;
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

const COMMANDS: Record<string, Command> = {
  heartbeat: {
    summary:
      'Publish ZeroMQ heartbeats for provider ids (a sidecar for a process that cannot): switchboard heartbeat --bind tcp://127.0.0.1:6001 ID...',
    flags: ['heartbeatBind', 'logLevel'],
    async run(v, _log, positionals) {
      if (positionals.length === 0) throw new UsageError('give at least one provider id to beat for');
      const { HeartbeatPublisher } = await import('../client/heartbeat.ts');
      const { makeHandle } = await import('../bridge/handle.ts');
      const publisher = new HeartbeatPublisher({ bind: str(v.heartbeatBind) ?? 'tcp://127.0.0.1:*', ids: positionals });
      const endpoint = await publisher.start();
      say(`switchboard heartbeat: endpoint=${endpoint} ids=${positionals.join(',')}`);
      return [makeHandle({}, async () => publisher.close())];
    },
  },
  start: {
    summary:
      'Run the whole system in one process: leader (embedded SQLite store), one worker and the gateway (--gateways N: N gateway processes sharing the HTTP port).',
    flags: [
      'dataDir',
      'bind',
      'publish',
      'httpHost',
      'httpPort',
      'workerTimeoutMs',
      'deregisterAfterMs',
      'massDownPercent',
      'bootstrapTokenFile',
      'aclMaxProviders',
      'writeTimeoutMs',
      'zmqPub',
      'zmqSnapshot',
      'historySize',
      'dns',
      'dnsTtl',
      ...GATEWAY_SECURITY_FLAGS,
      'checkMaxRpsPerHost',
      'curveSecretKey',
      'curveAllow',
      'gateways',
      'logLevel',
    ],
    async run(v, log) {
      const { clusterGatewayRole, reportReady, startGatewayCluster } = await import('./gateway-cluster.ts');
      const role = clusterGatewayRole();
      if (role) {
        // A gateway worker of `--gateways N`: the fixed-endpoint feeds are the first gateway's alone.
        const first = role.index === 0;
        const gateway = await startGateway(
          {
            ...gatewayConfig(v, role.leader, role.events),
            ...(await startCurveKeys(v)),
            ...(first ? {} : { zmqPub: 'off', zmqSnapshot: 'off', dns: undefined }),
          },
          { log: log.child({ gateway: role.index + 1 }) },
        );
        reportReady({ url: gateway.url, feed: gateway.feed, dns: dnsLine(gateway.app) });
        return [gateway];
      }
      const gateways = int(v.gateways) ?? 1;
      if (gateways < 1 || gateways > 64) throw new UsageError('--gateways takes 1 to 64');
      const handles: Handle[] = [];
      try {
        const curveClient = await startCurveKeys(v);
        const leader = await startLeader(
          {
            dataDir: str(v.dataDir),
            bind: str(v.bind),
            publish: str(v.publish),
            workerTimeoutMs: int(v.workerTimeoutMs),
            ...leaderHealthFlags(v),
            curveAllow: str(v.curveAllow),
            ...(curveClient.curveServerKey
              ? { curveSecretKey: curveClient.curveSecretKey, curveAllowKeys: [curveClient.curveServerKey] }
              : {}),
            ...leaderAclFlags(v),
          },
          { log },
        );
        handles.push(leader);
        // The worker applies the gateway's check rules again: loopback targets only if the gateway is loopback.
        const { isLoopbackHost } = await import('../bridge/check-policy.ts');
        const worker = await startWorker(
          {
            leader: leader.control,
            checkAllowCidr: list(v.checkAllowCidr),
            checkAllowLoopback: isLoopbackHost(str(v.httpHost) ?? '127.0.0.1'),
            checkMaxRpsPerHost: int(v.checkMaxRpsPerHost),
            ...curveClient,
          },
          { log },
        );
        handles.push(worker);
        let gateway: { url: string; feed: { pub: string | null; snapshot: string | null } };
        let dns: string | null = null;
        if (gateways === 1) {
          const inProcess = await startGateway(
            { ...gatewayConfig(v, leader.control, leader.events), ...curveClient },
            { log },
          );
          handles.push(inProcess);
          gateway = inProcess;
          dns = dnsLine(inProcess.app);
        } else {
          const group = await startGatewayCluster(gateways, leader, log);
          handles.push(group);
          gateway = group.ready;
          dns = group.ready.dns;
        }
        say(`switchboard leader: control=${leader.control} events=${leader.events} data=${str(v.dataDir) ?? './data'}`);
        say(`switchboard worker: id=${worker.id}`);
        say(`switchboard gateway: url=${gateway.url}${gateways > 1 ? ` processes=${gateways}` : ''}`);
        say(feedLine(gateway.feed));
        if (dns) say(dns);
        say('');
        say(`  dashboard    ${gateway.url}/ui/`);
        say(`  REST API     ${gateway.url}/v1/services`);
        say(`  API docs     ${gateway.url}/docs`);
        say(`  health       ${gateway.url}/healthz  ${gateway.url}/readyz  ${gateway.url}/metrics`);
        say(
          `  watch        ${gateway.url.replace(/^http/, 'ws')}/v1/watch (WebSocket)  ${gateway.url}/v1/events (SSE)`,
        );
        return handles.reverse();
      } catch (err) {
        for (const h of handles.reverse()) await h.close();
        throw err;
      }
    },
  },
  leader: {
    summary: 'Run the leader: the durable store, presence decisions, task assignment and the event feed.',
    flags: [
      'dataDir',
      'store',
      'storePrefix',
      'sessionTtl',
      'storeFailExitMs',
      'bind',
      'publish',
      'workerTimeoutMs',
      'deregisterAfterMs',
      'massDownPercent',
      'bootstrapTokenFile',
      'aclMaxProviders',
      'metricsPort',
      'metricsHost',
      'curveSecretKey',
      'curveAllow',
      'logLevel',
    ],
    async run(v, log) {
      const leader = await startLeader(
        {
          dataDir: str(v.dataDir),
          store: str(v.store),
          storePrefix: str(v.storePrefix),
          sessionTtlS: int(v.sessionTtl),
          storeFailExitMs: int(v.storeFailExitMs),
          bind: str(v.bind),
          publish: str(v.publish),
          workerTimeoutMs: int(v.workerTimeoutMs),
          metricsPort: int(v.metricsPort),
          metricsHost: str(v.metricsHost),
          curveSecretKey: str(v.curveSecretKey),
          curveAllow: str(v.curveAllow),
          ...leaderHealthFlags(v),
          ...leaderAclFlags(v),
        },
        // The node logged the one fatal line; exit so a supervisor restarts it or a standby takes over.
        { log, onFatal: () => process.exit(STORE_FAILED_EXIT_CODE) },
      );
      const where = str(v.store)?.startsWith('etcd://')
        ? `store=${str(v.store)}`
        : `data=${str(v.dataDir) ?? './data'}`;
      say(`switchboard leader: control=${leader.control} events=${leader.events} ${where}`);
      if (leader.metricsUrl) say(`switchboard leader metrics: url=${leader.metricsUrl}/metrics`);
      return [leader];
    },
  },
  worker: {
    summary: 'Run a worker: watches the providers the leader assigns and reports their presence.',
    flags: [
      'leader',
      'workerId',
      'metricsPort',
      'metricsHost',
      'checkAllowCidr',
      'checkMaxRpsPerHost',
      'curveSecretKey',
      'curveServerKey',
      'logLevel',
    ],
    async run(v, log) {
      const worker = await startWorker(
        {
          leader: str(v.leader),
          workerId: str(v.workerId),
          metricsPort: int(v.metricsPort),
          metricsHost: str(v.metricsHost),
          checkAllowCidr: list(v.checkAllowCidr),
          checkMaxRpsPerHost: int(v.checkMaxRpsPerHost),
          curveSecretKey: str(v.curveSecretKey),
          curveServerKey: str(v.curveServerKey),
        },
        { log },
      );
      say(`switchboard worker: id=${worker.id}`);
      if (worker.metricsUrl) say(`switchboard worker metrics: url=${worker.metricsUrl}/metrics`);
      return [worker];
    },
  },
  gateway: {
    summary: 'Run a gateway: the public REST API, served from a replica of the leader.',
    flags: [
      'leader',
      'leaderEvents',
      'httpHost',
      'httpPort',
      'writeTimeoutMs',
      'zmqPub',
      'zmqSnapshot',
      'historySize',
      'dns',
      'dnsTtl',
      ...GATEWAY_SECURITY_FLAGS,
      'curveSecretKey',
      'curveServerKey',
      'logLevel',
    ],
    async run(v, log) {
      const gateway = await startGateway(gatewayConfig(v, str(v.leader), str(v.leaderEvents)), { log });
      say(`switchboard gateway: url=${gateway.url}`);
      say(feedLine(gateway.feed));
      say(`switchboard gateway dashboard: ${gateway.url}/ui/`);
      const dns = dnsLine(gateway.app);
      if (dns) say(dns);
      return [gateway];
    },
  },
};

function usage(): string {
  const lines = ['Usage: switchboard <command> [flags]', '', 'Run a role:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Operate (talk to a gateway; --gateway URL or SWITCHBOARD_GATEWAY):');
  for (const [name, c] of Object.entries(HUMAN_COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push(`  ${'snapshot'.padEnd(10)} ${SNAPSHOT_SUMMARY}`);
  lines.push(`  ${'keygen'.padEnd(10)} ${KEYGEN_SUMMARY}`);
  lines.push('', "Run 'switchboard <command> --help' for its flags, 'switchboard --version' for the version.");
  return lines.join('\n') + '\n';
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  // --version works alone and on every command.
  if (name === '--version' || name === '-v' || name === 'version' || rest.includes('--version')) {
    process.stdout.write(`switchboard ${VERSION}\n`);
    return 0;
  }
  if (name === 'keygen')
    return (await import('./keygen.ts')).runKeygen(rest, {
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
    });
  if (name === 'snapshot')
    return (await import('./snapshot.ts')).runSnapshot(rest, {
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
    });
  if (Object.hasOwn(HUMAN_COMMANDS, name))
    return runHuman(name, rest, {
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
    });
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`switchboard: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseFlags(rest, command.flags, name === 'heartbeat');
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    // One line naming the flag at fault; the full help is one --help away.
    process.stderr.write(`switchboard ${name}: ${err.message} (see switchboard ${name} --help)\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(helpText(name, command.summary, command.flags));
    return 0;
  }
  const { createLogger } = await import('../bridge/log.ts');
  const { pino } = await import('pino');
  const log = createLogger({ level: str(parsed.values.logLevel) ?? 'info', destination: pino.destination(2) });
  // Signals are caught before the role starts: a supervisor (or a test) may send SIGTERM as soon as it reads the
  // "listening" line, before this function would otherwise have installed a handler; a stop asked for while
  // starting waits for the start to finish.
  let handles: Handle[] | undefined;
  let stopRequested: string | undefined;
  let stop: (signal: string) => void = (signal) => (stopRequested ??= signal);
  const onSigint = (): void => stop('SIGINT');
  const onSigterm = (): void => stop('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    handles = await command.run(parsed.values, log, parsed.positionals);
  } catch (err) {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    if (err instanceof UsageError) {
      process.stderr.write(`switchboard ${name}: ${err.message}\n\n${helpText(name, command.summary, command.flags)}`);
      return 2;
    }
    // An expected refusal (a store it cannot use, an address in use) is one line naming what is at fault; anything
    // else is a bug or a surprise, logged with its stack.
    const line = startupLine(err);
    if (line === undefined) log.fatal({ err }, `could not start ${name}`);
    process.stderr.write(`switchboard ${name}: ${line ?? (err as Error).message}\n`);
    return 1;
  }
  const running = handles;
  // SIGHUP reloads the leader's CURVE allow list; a process without one keeps Node's default (exit).
  const reloadable = running.filter((h): h is Handle & { reloadCurveAllow(): void } => 'reloadCurveAllow' in h);
  if (reloadable.some((h) => (h as { curvePublicKey?: string | null }).curvePublicKey))
    process.on('SIGHUP', () => {
      log.info('SIGHUP: reloading the CURVE allow list');
      for (const h of reloadable) h.reloadCurveAllow();
    });
  return new Promise<number>((resolve) => {
    let stopping = false;
    stop = (signal: string): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      const force = setTimeout(() => {
        log.error('clean shutdown took longer than 10 s; exiting');
        resolve(1);
      }, 10_000);
      force.unref();
      (async () => {
        for (const h of running) await h.close();
      })()
        .then(() => resolve(0))
        .catch((err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        });
    };
    if (stopRequested) stop(stopRequested);
  });
}

// A rejection nobody handled means some piece is in a state nobody planned for: say so and exit non-zero, so a
// supervisor restarts a clean process instead of one that limps on.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`switchboard: unhandled rejection: ${String((reason as Error)?.stack ?? reason)}\n`);
  process.exit(70);
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`switchboard: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);

export { FLAGS };

/**
 * Command-line flags: one table drives parsing, env fallbacks and `--help`. A flag wins over its environment
 * variable, which wins over the role's default.
 */
import { parseArgs } from 'node:util';

export interface Flag {
  name: string;
  env: string;
  /** `list`: repeatable, and each value may be a comma-separated list (so is the environment variable). */
  kind: 'string' | 'int' | 'bool' | 'list';
  help: string;
  /** Shown in --help; the role's config holds the real default. */
  default?: string;
  /** The only values a string flag takes. */
  choices?: readonly string[];
}

export const FLAGS = {
  dataDir: {
    name: 'data-dir',
    env: 'SWITCHBOARD_DATA_DIR',
    kind: 'string',
    help: 'Directory of the leader store',
    default: './data',
  },
  store: {
    name: 'store',
    env: 'SWITCHBOARD_STORE',
    kind: 'string',
    help: 'Leader store: sqlite (the file in --data-dir, one leader) or etcd://host:port[,host:port...] (any number of leaders, one active)',
    default: 'sqlite',
  },
  storePrefix: {
    name: 'store-prefix',
    env: 'SWITCHBOARD_STORE_PREFIX',
    kind: 'string',
    help: 'Key prefix of the etcd store (leaders sharing it share one registry)',
    default: '/switchboard/',
  },
  sessionTtl: {
    name: 'session-ttl',
    env: 'SWITCHBOARD_SESSION_TTL',
    kind: 'int',
    help: 'Seconds of silence to etcd after which a leader loses its leadership (failover time vs etcd load)',
    default: '2',
  },
  storeFailExitMs: {
    name: 'store-fail-exit-ms',
    env: 'SWITCHBOARD_STORE_FAIL_EXIT_MS',
    kind: 'int',
    help: 'A leader whose store keeps failing this long exits with code 75 (its commits are retried until then)',
    default: '30000',
  },
  bootstrapTokenFile: {
    name: 'bootstrap-token-file',
    env: 'SWITCHBOARD_BOOTSTRAP_TOKEN_FILE',
    kind: 'string',
    help: 'Leader: file holding the secret (16+ characters) of the admin token made when a store gets its ACLs; without it one is generated and logged once',
    default: 'generated',
  },
  aclMaxProviders: {
    name: 'acl-max-providers',
    env: 'SWITCHBOARD_ACL_MAX_PROVIDERS',
    kind: 'int',
    help: 'Leader: providers one token may have registered at once, unless the token sets its own maxProviders',
    default: '10000',
  },
  bind: {
    name: 'bind',
    env: 'SWITCHBOARD_BIND',
    kind: 'string',
    help: 'Leader control endpoint (ROUTER)',
    default: 'tcp://127.0.0.1:7710',
  },
  publish: {
    name: 'publish',
    env: 'SWITCHBOARD_PUBLISH',
    kind: 'string',
    help: 'Leader event endpoint (PUB)',
    default: 'bind port + 1',
  },
  leader: {
    name: 'leader',
    env: 'SWITCHBOARD_LEADER',
    kind: 'string',
    help: 'Leader control endpoint to connect to; with several leaders (HA) all of them, comma-separated',
    default: 'tcp://127.0.0.1:7710',
  },
  leaderEvents: {
    name: 'leader-events',
    env: 'SWITCHBOARD_LEADER_EVENTS',
    kind: 'string',
    help: 'Leader event endpoint',
    default: 'asked from the leader',
  },
  workerId: {
    name: 'worker-id',
    env: 'SWITCHBOARD_WORKER_ID',
    kind: 'string',
    help: 'Stable worker id (a restarted worker reclaims its tasks)',
    default: 'host-pid-random',
  },
  httpHost: {
    name: 'http-host',
    env: 'SWITCHBOARD_HTTP_HOST',
    kind: 'string',
    help: 'Gateway HTTP listen address',
    default: '127.0.0.1',
  },
  httpPort: {
    name: 'http-port',
    env: 'SWITCHBOARD_HTTP_PORT',
    kind: 'int',
    help: 'Gateway HTTP port (0: any free port)',
    default: '7700',
  },
  gateways: {
    name: 'gateways',
    env: 'SWITCHBOARD_GATEWAYS',
    kind: 'int',
    help: 'Gateway processes sharing the HTTP port (node:cluster; the native feed and DNS are served by the first); 1: the gateway runs in this process',
    default: '1',
  },
  workerTimeoutMs: {
    name: 'worker-timeout-ms',
    env: 'SWITCHBOARD_WORKER_TIMEOUT_MS',
    kind: 'int',
    help: 'Silence after which a worker is dead and its tasks move',
    default: '2000',
  },
  deregisterAfterMs: {
    name: 'deregister-after-ms',
    env: 'SWITCHBOARD_DEREGISTER_AFTER_MS',
    kind: 'int',
    help: 'Remove providers down this long (a check can set its own deregisterAfterMs)',
    default: 'off',
  },
  massDownPercent: {
    name: 'mass-down-percent',
    env: 'SWITCHBOARD_MASS_DOWN_PERCENT',
    kind: 'int',
    help: 'Hold downs when more than this % of checked providers would go down at once (100: guard off)',
    default: '50',
  },
  writeTimeoutMs: {
    name: 'write-timeout-ms',
    env: 'SWITCHBOARD_WRITE_TIMEOUT_MS',
    kind: 'int',
    help: 'How long a write waits for the leader',
    default: '5000',
  },
  zmqPub: {
    name: 'zmq-pub',
    env: 'SWITCHBOARD_ZMQ_PUB',
    kind: 'string',
    help: 'Gateway native ZeroMQ feed (PUB) endpoint, or off',
    default: 'tcp://127.0.0.1:7701',
  },
  zmqSnapshot: {
    name: 'zmq-snapshot',
    env: 'SWITCHBOARD_ZMQ_SNAPSHOT',
    kind: 'string',
    help: 'Gateway ZeroMQ snapshot (ROUTER) endpoint, or off',
    default: 'tcp://127.0.0.1:7702',
  },
  historySize: {
    name: 'history-size',
    env: 'SWITCHBOARD_HISTORY_SIZE',
    kind: 'int',
    help: 'Recent events the gateway keeps for resumes',
    default: '10000',
  },
  dns: {
    name: 'dns',
    env: 'SWITCHBOARD_DNS',
    kind: 'string',
    help: 'Gateway DNS server host:port on UDP and TCP (e.g. 127.0.0.1:8600), or off',
    default: 'off',
  },
  dnsTtl: {
    name: 'dns-ttl',
    env: 'SWITCHBOARD_DNS_TTL',
    kind: 'int',
    help: 'Seconds DNS answers may be cached',
    default: '5',
  },
  metricsPort: {
    name: 'metrics-port',
    env: 'SWITCHBOARD_METRICS_PORT',
    kind: 'int',
    help: 'Worker and leader: serve Prometheus metrics on http://metrics-host:PORT/metrics (0: any free port)',
    default: 'off',
  },
  metricsHost: {
    name: 'metrics-host',
    env: 'SWITCHBOARD_METRICS_HOST',
    kind: 'string',
    help: 'Worker and leader: address the metrics port listens on',
    default: '127.0.0.1',
  },
  heartbeatBind: {
    name: 'bind',
    env: 'SWITCHBOARD_HEARTBEAT_BIND',
    kind: 'string',
    help: 'Where the heartbeat PUB socket binds',
    default: 'tcp://127.0.0.1:* (any free port)',
  },
  tlsCert: {
    name: 'tls-cert',
    env: 'SWITCHBOARD_TLS_CERT',
    kind: 'string',
    help: 'Gateway: PEM certificate (chain) file; with --tls-key the gateway serves HTTPS and WSS',
    default: 'off (plain HTTP)',
  },
  tlsKey: {
    name: 'tls-key',
    env: 'SWITCHBOARD_TLS_KEY',
    kind: 'string',
    help: 'Gateway: PEM private key file of --tls-cert',
  },
  tlsClientCa: {
    name: 'tls-client-ca',
    env: 'SWITCHBOARD_TLS_CLIENT_CA',
    kind: 'string',
    help: 'Gateway: PEM CA file; clients must present a certificate it signed (mTLS)',
    default: 'off',
  },
  allowedOrigins: {
    name: 'allowed-origins',
    env: 'SWITCHBOARD_ALLOWED_ORIGINS',
    kind: 'list',
    help: 'Browser origins (https://app.example:8443) allowed besides the gateway itself: CORS, WebSocket, SSE, writes; * for any',
    default: 'same origin only',
  },
  allowedHosts: {
    name: 'allowed-hosts',
    env: 'SWITCHBOARD_ALLOWED_HOSTS',
    kind: 'list',
    help: 'Host header names the gateway answers to besides loopback names and the listen address (DNS rebinding protection); * for any',
    default: 'none',
  },
  writeRateLimit: {
    name: 'write-rate-limit',
    env: 'SWITCHBOARD_WRITE_RATE_LIMIT',
    kind: 'int',
    help: 'Writes per client per window, then 429 (loopback is one client, IPv6 counts per /64; 0: off)',
    default: '10000',
  },
  writeRateWindowMs: {
    name: 'write-rate-window-ms',
    env: 'SWITCHBOARD_WRITE_RATE_WINDOW_MS',
    kind: 'int',
    help: 'Window of --write-rate-limit',
    default: '1000',
  },
  maxWatchers: {
    name: 'max-watchers',
    env: 'SWITCHBOARD_MAX_WATCHERS',
    kind: 'int',
    help: 'WebSocket + SSE subscribers per gateway',
    default: '10000',
  },
  maxWatchersPerClient: {
    name: 'max-watchers-per-client',
    env: 'SWITCHBOARD_MAX_WATCHERS_PER_CLIENT',
    kind: 'int',
    help: 'WebSocket + SSE subscribers per client (loopback is one client, IPv6 counts per /64)',
    default: '256',
  },
  acl: {
    name: 'acl',
    env: 'SWITCHBOARD_ACL',
    kind: 'string',
    help: 'Gateway: tokens and ACLs on every route but health and docs (on), or none (off)',
    default: 'off when every listener (HTTP, feed, DNS) is loopback, else on',
    choices: ['on', 'off'],
  },
  insecure: {
    name: 'insecure',
    env: 'SWITCHBOARD_INSECURE',
    kind: 'bool',
    help: 'Gateway: leave ACLs off although a listener binds beyond loopback (logged as a warning)',
    default: 'false',
  },
  checkAllowCidr: {
    name: 'check-allow-cidr',
    env: 'SWITCHBOARD_CHECK_ALLOW_CIDR',
    kind: 'list',
    help: 'Ranges checks may reach although refused by default (link-local, metadata, loopback on a public gateway); ipc allows ipc:// endpoints',
    default: 'none',
  },
  checkMaxRpsPerHost: {
    name: 'check-max-rps-per-host',
    env: 'SWITCHBOARD_CHECK_MAX_RPS_PER_HOST',
    kind: 'int',
    help: 'Worker: http/tcp check requests per second to one target host; further ticks are skipped',
    default: '100',
  },
  curveSecretKey: {
    name: 'curve-secret-key',
    env: 'SWITCHBOARD_CURVE_SECRET_KEY',
    kind: 'string',
    help: "This process's key pair file (switchboard keygen): CURVE on every internal ZeroMQ socket (leader: server; worker, gateway: client)",
    default: 'off (plain ZeroMQ)',
  },
  curveAllow: {
    name: 'curve-allow',
    env: 'SWITCHBOARD_CURVE_ALLOW',
    kind: 'string',
    help: 'Leader: public keys of the workers and gateways it admits, one per line (# comments), or a directory of .pub files; SIGHUP reloads it',
    default: 'none (start: its own key only)',
  },
  curveServerKey: {
    name: 'curve-server-key',
    env: 'SWITCHBOARD_CURVE_SERVER_KEY',
    kind: 'string',
    help: "The leader's public key, or a file holding it (with several leaders, the one key they share)",
  },
  feedCurveSecretKey: {
    name: 'feed-curve-secret-key',
    env: 'SWITCHBOARD_FEED_CURVE_SECRET_KEY',
    kind: 'string',
    help: 'Gateway: key pair file for CURVE on the native ZeroMQ feed (PUB and snapshot); with --feed-curve-allow',
    default: 'off',
  },
  feedCurveAllow: {
    name: 'feed-curve-allow',
    env: 'SWITCHBOARD_FEED_CURVE_ALLOW',
    kind: 'string',
    help: 'Gateway: public keys of the feed subscribers it admits (file or directory, as --curve-allow)',
  },
  maxFeedConnectionsPerClient: {
    name: 'max-feed-connections-per-client',
    env: 'SWITCHBOARD_MAX_FEED_CONNECTIONS_PER_CLIENT',
    kind: 'int',
    help: 'ZeroMQ feed connections per client on each feed socket (loopback is one client, IPv6 counts per /64; 0: off)',
    default: '256',
  },
  keyOut: {
    name: 'out',
    env: 'SWITCHBOARD_KEYGEN_OUT',
    kind: 'string',
    help: 'Write the key pair to FILE (mode 0600) and its public key to FILE.pub; without it, print both',
  },
  logLevel: {
    name: 'log-level',
    env: 'SWITCHBOARD_LOG_LEVEL',
    kind: 'string',
    help: 'trace, debug, info, warn, error, fatal or silent',
    default: 'info',
    choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
  },
} as const satisfies Record<string, Flag>;

export type FlagKey = keyof typeof FLAGS;
export type FlagValue = string | number | boolean | string[];

export class UsageError extends Error {}

export function parseFlags(
  argv: string[],
  keys: FlagKey[],
  allowPositionals = false,
): { values: Partial<Record<FlagKey, FlagValue>>; help: boolean; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { help: { type: 'boolean' } };
  for (const key of keys)
    options[FLAGS[key].name] =
      (FLAGS[key] as Flag).kind === 'list'
        ? { type: 'string', multiple: true }
        : { type: (FLAGS[key] as Flag).kind === 'bool' ? 'boolean' : 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values: Partial<Record<FlagKey, FlagValue>> = {};
  for (const key of keys) {
    const flag: Flag = FLAGS[key];
    const given = (parsed.values as Record<string, string | boolean | string[] | undefined>)[flag.name];
    if (flag.kind === 'list') {
      const parts = (Array.isArray(given) ? given : [process.env[flag.env] ?? ''])
        .flatMap((v) => v.split(','))
        .map((v) => v.trim())
        .filter((v) => v !== '');
      if (parts.length > 0) values[key] = parts;
      continue;
    }
    const raw = (given as string | boolean | undefined) ?? process.env[flag.env];
    if (raw === undefined || raw === '') continue;
    if (flag.kind === 'int') {
      const n = Number(raw);
      if (!Number.isInteger(n))
        throw new UsageError(`--${flag.name} (or ${flag.env}) must be an integer, got '${raw}'`);
      values[key] = n;
    } else if (typeof raw === 'string' && flag.choices && !flag.choices.includes(raw)) {
      throw new UsageError(`--${flag.name} (or ${flag.env}) must be one of ${flag.choices.join(', ')}, got '${raw}'`);
    } else values[key] = raw;
  }
  return { values, help: parsed.values.help === true, positionals: parsed.positionals };
}

export function helpText(command: string, summary: string, keys: FlagKey[]): string {
  const lines = [`Usage: switchboard ${command} [flags]`, '', summary, '', 'Flags (environment variable in brackets):'];
  for (const key of keys) {
    const f: Flag = FLAGS[key];
    lines.push(`  --${f.name.padEnd(20)} ${f.help}${f.default ? ` (default: ${f.default})` : ''} [${f.env}]`);
  }
  lines.push(`  --${'help'.padEnd(20)} Show this help`);
  return lines.join('\n') + '\n';
}

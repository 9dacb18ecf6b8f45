import { Type, type Static } from 'typebox';
import { ConfigError, LeaderEndpointsSchema, parseCidr, validateConfig } from '../bridge/index.ts';

export const DEFAULT_HTTP_HOST = '127.0.0.1';
export const DEFAULT_HTTP_PORT = 7700;
export const DEFAULT_WRITE_TIMEOUT_MS = 5000;
export const DEFAULT_BODY_LIMIT = 64 * 1024;
/** How long an acknowledged write waits for the local replica, so the client reads its own write. */
export const DEFAULT_READ_YOUR_WRITES_MS = 1000;
/** Native ZeroMQ feed (PUB) and its snapshot endpoint (ROUTER); `off` switches one off. */
export const DEFAULT_ZMQ_PUB = 'tcp://127.0.0.1:7701';
export const DEFAULT_ZMQ_SNAPSHOT = 'tcp://127.0.0.1:7702';
/** With an ephemeral HTTP port (tests, several gateways on a host) the feed ports are ephemeral too. */
export const EPHEMERAL_ZMQ = 'tcp://127.0.0.1:*';
export const DEFAULT_ZMQ_SEND_HWM = 10_000;
export const DEFAULT_HISTORY_SIZE = 10_000;
export const DEFAULT_SSE_HEARTBEAT_MS = 15_000;
export const DEFAULT_WS_PING_INTERVAL_MS = 30_000;
export const DEFAULT_CLIENT_BUFFER_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_WATCHERS = 10_000;
export const DEFAULT_MAX_WATCHERS_PER_ADDRESS = 256;
/** ZeroMQ feed connections per client and socket (PUB, snapshot ROUTER), like WebSocket + SSE watchers. */
export const DEFAULT_MAX_FEED_CONNECTIONS_PER_CLIENT = 256;
/** The DNS interface is off unless asked for (`--dns 127.0.0.1:8600`). */
export const DEFAULT_DNS = 'off';
/** Seconds resolvers may cache an answer: short, since providers come and go in milliseconds. */
export const DEFAULT_DNS_TTL_S = 5;
/** Per-client writes per window (`@fastify/rate-limit`); 0 switches the limit off. */
export const DEFAULT_WRITE_RATE_LIMIT = 10_000;
export const DEFAULT_WRITE_RATE_WINDOW_MS = 1000;
const FEED_ENDPOINT = Type.String({ pattern: '^(?:off|(?:tcp|ipc|inproc)://[^\\s]+)$' });

export const GatewayConfigSchema = Type.Object(
  {
    /** The leader's control endpoint, or every leader candidate's (HA): a list, or separated by commas. */
    leader: LeaderEndpointsSchema,
    /** The leader's event endpoint; learnt from the leader when absent. */
    leaderEvents: Type.Optional(Type.String({ pattern: '^(?:tcp|ipc|inproc)://[^\\s]+$' })),
    httpHost: Type.String({ minLength: 1 }),
    /** 0 picks a free port. */
    httpPort: Type.Integer({ minimum: 0, maximum: 65535 }),
    writeTimeoutMs: Type.Integer({ minimum: 10, maximum: 600_000 }),
    readYourWritesMs: Type.Integer({ minimum: 0, maximum: 60_000 }),
    bodyLimit: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024 }),
    staleAfterMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
    zmqPub: FEED_ENDPOINT,
    zmqSnapshot: FEED_ENDPOINT,
    zmqSendHighWaterMark: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
    /** Recent events kept for resumes (WebSocket, SSE). 0 keeps none: every resume gets a snapshot. */
    historySize: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
    sseHeartbeatMs: Type.Integer({ minimum: 10, maximum: 3_600_000 }),
    wsPingIntervalMs: Type.Integer({ minimum: 10, maximum: 3_600_000 }),
    clientBufferBytes: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 * 1024 }),
    maxWatchers: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
    maxWatchersPerAddress: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
    /** `host:port` (IPv6 as `[::1]:8600`) for the DNS server on UDP and TCP, or `off`; port 0 picks a free one. */
    dns: Type.String({ pattern: '^(?:off|(?:[A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5})$' }),
    dnsTtlS: Type.Integer({ minimum: 0, maximum: 86_400 }),
    /** PEM files: HTTPS and WSS when both are set; with a client CA, clients must present a certificate (mTLS). */
    tlsCert: Type.Optional(Type.String({ minLength: 1 })),
    tlsKey: Type.Optional(Type.String({ minLength: 1 })),
    tlsClientCa: Type.Optional(Type.String({ minLength: 1 })),
    /** Browser origins allowed besides the gateway's own (CORS, WebSocket, SSE, writes); `*` allows any. */
    allowedOrigins: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { maxItems: 1000 }),
    /** Host names the gateway answers to besides loopback names and the listen address; `*` allows any. */
    allowedHosts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 1000 })),
    writeRateLimit: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
    writeRateWindowMs: Type.Integer({ minimum: 10, maximum: 3_600_000 }),
    /**
     * Tokens and ACLs on every public route (`--acl`). Absent: on unless every public listener (HTTP, native feed,
     * DNS) binds loopback, or `insecure` says otherwise.
     */
    acl: Type.Optional(Type.Union([Type.Literal('on'), Type.Literal('off')])),
    /** The operator accepts a non-loopback gateway without ACLs (`--insecure`); logged as a warning. */
    insecure: Type.Boolean(),
    /** CIDR ranges checks may reach despite the SSRF rules (`ipc` allows ipc:// endpoints). */
    checkAllowCidr: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 1000 }),
    /** Key pair file (switchboard keygen): talk to the leader over CURVE. */
    curveSecretKey: Type.Optional(Type.String({ minLength: 1 })),
    /** The leader's public key (40 z85 characters) or a file holding it; one key shared by every leader (HA). */
    curveServerKey: Type.Optional(Type.String({ minLength: 1 })),
    /** Key pair file: CURVE server on the public ZeroMQ feed (PUB and snapshot ROUTER). Off when absent. */
    feedCurveSecretKey: Type.Optional(Type.String({ minLength: 1 })),
    /** The feed subscribers' public keys admitted: a file (one per line) or a directory of such files. */
    feedCurveAllow: Type.Optional(Type.String({ minLength: 1 })),
    /** Connections per client on each feed socket (loopback is one client, IPv6 counts per /64); 0: no cap. */
    maxFeedConnectionsPerClient: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
  },
  { additionalProperties: false },
);
export type GatewayConfig = Static<typeof GatewayConfigSchema>;
export type GatewayConfigInput = Partial<GatewayConfig>;

export const GATEWAY_DEFAULTS = {
  leader: 'tcp://127.0.0.1:7710',
  httpHost: DEFAULT_HTTP_HOST,
  httpPort: DEFAULT_HTTP_PORT,
  writeTimeoutMs: DEFAULT_WRITE_TIMEOUT_MS,
  readYourWritesMs: DEFAULT_READ_YOUR_WRITES_MS,
  bodyLimit: DEFAULT_BODY_LIMIT,
  staleAfterMs: 2000,
  zmqPub: DEFAULT_ZMQ_PUB,
  zmqSnapshot: DEFAULT_ZMQ_SNAPSHOT,
  zmqSendHighWaterMark: DEFAULT_ZMQ_SEND_HWM,
  historySize: DEFAULT_HISTORY_SIZE,
  sseHeartbeatMs: DEFAULT_SSE_HEARTBEAT_MS,
  wsPingIntervalMs: DEFAULT_WS_PING_INTERVAL_MS,
  clientBufferBytes: DEFAULT_CLIENT_BUFFER_BYTES,
  maxWatchers: DEFAULT_MAX_WATCHERS,
  maxWatchersPerAddress: DEFAULT_MAX_WATCHERS_PER_ADDRESS,
  dns: DEFAULT_DNS,
  dnsTtlS: DEFAULT_DNS_TTL_S,
  allowedOrigins: [] as string[],
  writeRateLimit: DEFAULT_WRITE_RATE_LIMIT,
  writeRateWindowMs: DEFAULT_WRITE_RATE_WINDOW_MS,
  checkAllowCidr: [] as string[],
  maxFeedConnectionsPerClient: DEFAULT_MAX_FEED_CONNECTIONS_PER_CLIENT,
  insecure: false,
};

export function gatewayConfig(input: GatewayConfigInput): Readonly<GatewayConfig> {
  const feedDefaults = input.httpPort === 0 ? { zmqPub: EPHEMERAL_ZMQ, zmqSnapshot: EPHEMERAL_ZMQ } : {};
  const cfg = validateConfig('gateway', GatewayConfigSchema, { ...GATEWAY_DEFAULTS, ...feedDefaults }, input);
  if ((cfg.tlsCert === undefined) !== (cfg.tlsKey === undefined))
    throw new ConfigError('gateway', ['tlsCert and tlsKey (--tls-cert, --tls-key) go together']);
  if ((cfg.feedCurveSecretKey === undefined) !== (cfg.feedCurveAllow === undefined))
    throw new ConfigError('gateway', [
      'feedCurveSecretKey and feedCurveAllow (--feed-curve-secret-key, --feed-curve-allow) go together',
    ]);
  if (cfg.tlsClientCa !== undefined && cfg.tlsCert === undefined)
    throw new ConfigError('gateway', ['tlsClientCa (--tls-client-ca) needs --tls-cert and --tls-key']);
  for (const cidr of cfg.checkAllowCidr) {
    if (cidr === 'ipc') continue;
    try {
      parseCidr(cidr);
    } catch (err) {
      throw new ConfigError('gateway', [`checkAllowCidr (--check-allow-cidr): ${(err as Error).message}`]);
    }
  }
  return cfg;
}

/** The host of a listener: `host:port` (DNS), `tcp://host:port` (feed), or a bare host (HTTP); null when off. */
function listenerHost(endpoint: string): string | null {
  if (endpoint === 'off') return null;
  const m = /^(?:tcp:\/\/)?(\[[^\]]+\]|[^:/]+)(?::[0-9*]+)?$/.exec(endpoint);
  if (m) return m[1].replace(/^\[|\]$/g, '');
  // ipc:// and inproc:// reach only this machine.
  return /^(?:ipc|inproc):\/\//.test(endpoint) ? '127.0.0.1' : endpoint;
}

/** Whether ACLs are on, and why (the line the gateway logs once at startup). */
export function aclDecision(
  cfg: Pick<GatewayConfig, 'acl' | 'insecure' | 'httpHost' | 'zmqPub' | 'zmqSnapshot' | 'dns'>,
  isLoopback: (host: string) => boolean,
): { enabled: boolean; publicListeners: string[]; reason: string } {
  const listeners = { http: cfg.httpHost, 'zmq-pub': cfg.zmqPub, 'zmq-snapshot': cfg.zmqSnapshot, dns: cfg.dns };
  const publicListeners = Object.entries(listeners)
    .filter(([, endpoint]) => {
      const host = listenerHost(endpoint);
      return host !== null && !isLoopback(host);
    })
    .map(([name, endpoint]) => `${name}=${endpoint}`);
  if (cfg.acl !== undefined) return { enabled: cfg.acl === 'on', publicListeners, reason: `--acl ${cfg.acl}` };
  if (publicListeners.length === 0) return { enabled: false, publicListeners, reason: 'every listener binds loopback' };
  if (cfg.insecure) return { enabled: false, publicListeners, reason: '--insecure' };
  return { enabled: true, publicListeners, reason: 'a listener binds beyond loopback' };
}

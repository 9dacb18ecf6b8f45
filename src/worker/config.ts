import { Type, type Static } from 'typebox';
import { LeaderEndpointsSchema, validateConfig } from '../bridge/index.ts';

export const DEFAULT_LEADER_ENDPOINT = 'tcp://127.0.0.1:7710';
export const DEFAULT_PING_INTERVAL_MS = 500;
export const DEFAULT_FULL_REPORT_INTERVAL_MS = 5000;
export const DEFAULT_ENDPOINTS_PER_SOCKET = 1000;
/**
 * Freeze detection: ZMTP pings every 200 ms, a peer silent for 600 ms is dropped (and its providers go down), so a
 * frozen provider is down within a second. libzmq's own I/O thread answers pings, so a busy event loop does not
 * trip this (the application heartbeat catches a stuck loop instead).
 */
export const DEFAULT_ZMTP_HEARTBEAT_INTERVAL_MS = 200;
export const DEFAULT_ZMTP_HEARTBEAT_TIMEOUT_MS = 600;
/** Polled checks (http, tcp) in flight at once; a hanging target holds one slot only until its timeout. */
export const DEFAULT_MAX_CONCURRENT_CHECKS = 64;
/** A victim host gets at most this many check requests per second from one worker, however many registrations. */
export const DEFAULT_CHECK_MAX_RPS_PER_HOST = 100;

export const WorkerConfigSchema = Type.Object(
  {
    /** The leader's control endpoint, or every leader candidate's (HA): a list, or separated by commas. */
    leader: LeaderEndpointsSchema,
    /** Stable across restarts if set, so a restarted worker reclaims its tasks; random otherwise. */
    workerId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$' })),
    pingIntervalMs: Type.Integer({ minimum: 20, maximum: 60_000 }),
    fullReportIntervalMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
    endpointsPerSocket: Type.Integer({ minimum: 1, maximum: 60_000 }),
    zmtpHeartbeatIntervalMs: Type.Integer({ minimum: 10, maximum: 600_000 }),
    zmtpHeartbeatTimeoutMs: Type.Integer({ minimum: 10, maximum: 600_000 }),
    maxConcurrentChecks: Type.Integer({ minimum: 1, maximum: 10_000 }),
    /** Serve the worker's metrics on http://metricsHost:metricsPort/metrics; off when absent, 0 picks a port. */
    metricsPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    metricsHost: Type.String({ minLength: 1 }),
    /** CIDR ranges checks may reach despite the SSRF rules (`ipc` allows ipc:// endpoints). */
    checkAllowCidr: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 1000 }),
    /** Loopback check targets; default: allowed when the leader endpoint is loopback (a one-machine setup). */
    checkAllowLoopback: Type.Optional(Type.Boolean()),
    /** http/tcp check requests per second to one target host. */
    checkMaxRpsPerHost: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    /** Key pair file (switchboard keygen): talk to the leader over CURVE. */
    curveSecretKey: Type.Optional(Type.String({ minLength: 1 })),
    /** The leader's public key (40 z85 characters) or a file holding it; one key shared by every leader (HA). */
    curveServerKey: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type WorkerConfig = Static<typeof WorkerConfigSchema>;
export type WorkerConfigInput = Partial<WorkerConfig>;

export const WORKER_DEFAULTS = {
  leader: DEFAULT_LEADER_ENDPOINT,
  pingIntervalMs: DEFAULT_PING_INTERVAL_MS,
  fullReportIntervalMs: DEFAULT_FULL_REPORT_INTERVAL_MS,
  endpointsPerSocket: DEFAULT_ENDPOINTS_PER_SOCKET,
  zmtpHeartbeatIntervalMs: DEFAULT_ZMTP_HEARTBEAT_INTERVAL_MS,
  zmtpHeartbeatTimeoutMs: DEFAULT_ZMTP_HEARTBEAT_TIMEOUT_MS,
  maxConcurrentChecks: DEFAULT_MAX_CONCURRENT_CHECKS,
  metricsHost: '127.0.0.1',
  checkAllowCidr: [] as string[],
  checkMaxRpsPerHost: DEFAULT_CHECK_MAX_RPS_PER_HOST,
};

export function workerConfig(input: WorkerConfigInput): Readonly<WorkerConfig> {
  return validateConfig('worker', WorkerConfigSchema, WORKER_DEFAULTS, input);
}

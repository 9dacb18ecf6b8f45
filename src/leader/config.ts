import { Type, type Static } from 'typebox';
import { validateConfig } from '../bridge/index.ts';

const BindEndpoint = Type.String({ pattern: '^(?:tcp://[^\\s]+:(?:[0-9]{1,5}|\\*)|ipc://[^\\s]+|inproc://[^\\s]+)$' });

export const DEFAULT_LEADER_BIND = 'tcp://127.0.0.1:7710';
export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_WORKER_TIMEOUT_MS = 2000;
export const DEFAULT_BEACON_INTERVAL_MS = 500;
export const DEFAULT_REASSIGN_GRACE_MS = 1500;
export const DEFAULT_SWEEP_INTERVAL_MS = 250;
/** Mass-down guard: trips when more than this percentage of checked providers would go down in one window. */
export const DEFAULT_MASS_DOWN_PERCENT = 50;
/** ...and at least this many: one provider of one going down is not a mass event. */
export const DEFAULT_MASS_DOWN_MIN_PROVIDERS = 3;
export const DEFAULT_MASS_DOWN_WINDOW_MS = 2000;
/** How long a down that is not a closed connection waits to be counted with others before it is published. */
export const DEFAULT_MASS_DOWN_SETTLE_MS = 100;
/** A store that still fails commits after this long makes the leader exit (code 75) so a standby or a supervisor acts. */
export const DEFAULT_STORE_FAIL_EXIT_MS = 30_000;
/** The etcd election lease TTL, seconds: a dead or frozen leader is replaced about this long after it stopped. */
export const DEFAULT_SESSION_TTL_S = 2;
export const DEFAULT_METRICS_HOST = '127.0.0.1';
/** Providers one token may have registered at once, unless the token says otherwise (`maxProviders`). */
export const DEFAULT_ACL_MAX_PROVIDERS = 10_000;

export const LeaderConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1 }),
    /** ROUTER for workers and gateways. */
    bind: BindEndpoint,
    /** PUB for events; defaults to the bind port + 1. */
    publish: Type.Optional(BindEndpoint),
    workerTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
    beaconIntervalMs: Type.Integer({ minimum: 20, maximum: 60_000 }),
    /** After a restart, how long orphaned tasks wait for their old worker to say hello before being reassigned. */
    reassignGraceMs: Type.Integer({ minimum: 0, maximum: 600_000 }),
    sweepIntervalMs: Type.Integer({ minimum: 10, maximum: 10_000 }),
    historySize: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
    /** Remove providers down this long; a check's own `deregisterAfterMs` wins. Off when absent. */
    deregisterAfterMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 2_592_000_000 })),
    /** 100 turns the guard off (more than 100% can never go down). */
    massDownPercent: Type.Integer({ minimum: 1, maximum: 100 }),
    massDownMinProviders: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    massDownWindowMs: Type.Integer({ minimum: 10, maximum: 600_000 }),
    massDownSettleMs: Type.Integer({ minimum: 0, maximum: 60_000 }),
    /** Absent or `sqlite`: the SQLite file in `dataDir` (one leader). `etcd://h:p,h:p`: etcd, any number of leaders. */
    store: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** Key prefix in etcd. */
    storePrefix: Type.String({ pattern: '^/(?:.*/)?$', maxLength: 256 }),
    /** etcd election lease TTL in seconds. */
    sessionTtlS: Type.Integer({ minimum: 1, maximum: 300 }),
    storeFailExitMs: Type.Integer({ minimum: 0, maximum: 86_400_000 }),
    /** Serve the leader's Prometheus metrics on http://metricsHost:metricsPort/metrics (0: any free port). */
    metricsPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    metricsHost: Type.String({ minLength: 1 }),
    /**
     * The secret of the bootstrap token, read from this file (trimmed, at least 16 characters) the first time a store
     * gets its ACLs; absent: a secret is generated and logged once.
     */
    bootstrapTokenFile: Type.Optional(Type.String({ minLength: 1 })),
    /** Providers one token may have registered at once, unless the token has its own `maxProviders`. */
    aclMaxProviders: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
  },
  { additionalProperties: false },
);
export type LeaderConfig = Static<typeof LeaderConfigSchema>;
export type LeaderConfigInput = Partial<LeaderConfig>;

export const LEADER_DEFAULTS = {
  dataDir: DEFAULT_DATA_DIR,
  bind: DEFAULT_LEADER_BIND,
  workerTimeoutMs: DEFAULT_WORKER_TIMEOUT_MS,
  beaconIntervalMs: DEFAULT_BEACON_INTERVAL_MS,
  reassignGraceMs: DEFAULT_REASSIGN_GRACE_MS,
  sweepIntervalMs: DEFAULT_SWEEP_INTERVAL_MS,
  historySize: 10_000,
  massDownPercent: DEFAULT_MASS_DOWN_PERCENT,
  massDownMinProviders: DEFAULT_MASS_DOWN_MIN_PROVIDERS,
  massDownWindowMs: DEFAULT_MASS_DOWN_WINDOW_MS,
  massDownSettleMs: DEFAULT_MASS_DOWN_SETTLE_MS,
  storePrefix: '/switchboard/',
  sessionTtlS: DEFAULT_SESSION_TTL_S,
  storeFailExitMs: DEFAULT_STORE_FAIL_EXIT_MS,
  metricsHost: DEFAULT_METRICS_HOST,
  aclMaxProviders: DEFAULT_ACL_MAX_PROVIDERS,
};

export function leaderConfig(input: LeaderConfigInput): Readonly<LeaderConfig> {
  return validateConfig('leader', LeaderConfigSchema, LEADER_DEFAULTS, input);
}

/** tcp://host:7710 → tcp://host:7711; an ephemeral bind (`*`) gets an ephemeral events port too. */
export function defaultPublishEndpoint(bind: string): string {
  const m = /^tcp:\/\/(.+):(\d+|\*)$/.exec(bind);
  if (m) return m[2] === '*' ? `tcp://${m[1]}:*` : `tcp://${m[1]}:${Number(m[2]) + 1}`;
  return `${bind}-events`;
}

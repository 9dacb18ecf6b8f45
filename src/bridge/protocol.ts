/**
 * Wire constants, defined once: PUB topics, commands and message type names. This file imports nothing, so
 * `src/client` (and any other light consumer) can use it without pulling in zeromq, pino or typebox.
 */

// --- leader PUB (events and position beacons to gateways)
/** Topic frame of a registry event on the leader's PUB. */
export const TOPIC_EVENT = 'ev';
/**
 * Topic frame of several registry events in one message (a msgpack array, in revision order): the events of one
 * commit. A SUB subscribed to `ev` receives it too (ZeroMQ topics match by prefix).
 */
export const TOPIC_EVENTS = 'evs';
/** Topic frame of the leader's position beacon (session, epoch, rev) on its PUB. */
export const TOPIC_BEACON = 'hb';

// --- the `zmq` check
/** A provider's PUB sends `[HEARTBEAT_TOPIC, "<provider id>"]`; the worker subscribes to this topic. */
export const HEARTBEAT_TOPIC = 'heartbeat';

// --- the gateway's native ZeroMQ feed
/** Prefix of every native feed topic: subscribe to it for every service. */
export const FEED_TOPIC_PREFIX = 'svc/';

/** The topic of a service's events; the trailing slash keeps `svc/bill` from matching `svc/billing/`. */
export function feedTopic(service: string): string {
  return `${FEED_TOPIC_PREFIX}${service}/`;
}

/** First frame of a request to the feed's snapshot endpoint: `[FEED_SNAPSHOT_COMMAND, "<service or empty>"]`. */
export const FEED_SNAPSHOT_COMMAND = 'snapshot';

// --- the gateway's WebSocket watch (`GET /v1/watch`), JSON messages keyed by `type`
export const WATCH_MESSAGE = {
  snapshot: 'snapshot',
  event: 'event',
  resume: 'resume',
  resumed: 'resumed',
  ping: 'ping',
  pong: 'pong',
  error: 'error',
} as const;
export type WatchMessageType = (typeof WATCH_MESSAGE)[keyof typeof WATCH_MESSAGE];

// --- the internal plane (leader ROUTER ↔ worker and gateway DEALERs); messages.ts builds its schemas from these
export const MESSAGE_TYPE = {
  // worker → leader
  workerHello: 'worker.hello',
  workerPing: 'worker.ping',
  presence: 'presence',
  // leader → worker
  workerWelcome: 'worker.welcome',
  tasksAdd: 'tasks.add',
  tasksRemove: 'tasks.remove',
  workerPong: 'worker.pong',
  workerUnknown: 'worker.unknown',
  ttlPass: 'ttl.pass',
  // gateway → leader
  put: 'put',
  delete: 'delete',
  ttl: 'ttl',
  maintenance: 'maintenance',
  snapshot: 'snapshot',
  since: 'since',
  ping: 'ping',
  metrics: 'metrics',
  cluster: 'cluster',
  guardRelease: 'guard.release',
  batch: 'batch',
  aclGet: 'acl.get',
  aclWrite: 'acl.write',
  // leader → gateway
  ack: 'ack',
  nack: 'nack',
  snapshotReply: 'snapshot.reply',
  snapshotChunk: 'snapshot.chunk',
  sinceReply: 'since.reply',
  pong: 'pong',
  clusterReply: 'cluster.reply',
  metricsReply: 'metrics.reply',
  batchReply: 'batch.reply',
  aclReply: 'acl.reply',
} as const;

/** The operations of an `acl.write` (messages.ts `AclOp`). */
export const ACL_OPS = {
  policyPut: 'policy.put',
  policyDelete: 'policy.delete',
  tokenCreate: 'token.create',
  tokenUpdate: 'token.update',
  tokenDelete: 'token.delete',
} as const;
export type AclOpName = (typeof ACL_OPS)[keyof typeof ACL_OPS];
export type MessageType = (typeof MESSAGE_TYPE)[keyof typeof MESSAGE_TYPE];

/**
 * Why a worker reports what it reports (`Observation.cause`):
 * - `assigned`: just started watching, nothing observed yet (`alive: null`);
 * - `beat`: a heartbeat arrived (zmq);
 * - `missed`: no heartbeat for `misses` intervals (zmq);
 * - `disconnect`: the provider's own connection closed, a dead process (zmq; never held by the mass-down guard);
 * - `unresponsive`: the ZMTP heartbeat timed out, a frozen process or a network cut (zmq);
 * - `unreachable`: the endpoint cannot even be connected to (zmq, a malformed or unresolvable address);
 * - `check`: the result of a poll (http, tcp);
 * - `pass`, `expired`: a TTL pass arrived, or the TTL ran out (ttl).
 */
export const OBSERVATION_CAUSES = [
  'assigned',
  'beat',
  'missed',
  'disconnect',
  'unresponsive',
  'unreachable',
  'check',
  'pass',
  'expired',
] as const;
export type ObservationCause = (typeof OBSERVATION_CAUSES)[number];

/**
 * The internal plane: every message between leader, workers and gateways, one TypeBox union keyed by `type`.
 *
 * Sockets: the leader binds a ROUTER (control) and a PUB (events). Workers and gateways talk to the ROUTER
 * through a DEALER and read the PUB through a SUB. Each frame carries one msgpack-encoded message; the PUB adds
 * a topic frame before it (`TOPIC_EVENT` for events, `TOPIC_BEACON` for position beacons; see protocol.ts).
 */
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { AclPolicy, AclState, AclToken, ACL_POLICY_NAME_PATTERN, MAX_ACL_PROVIDER_QUOTA } from './acl.ts';
import { ACL_OPS, MESSAGE_TYPE, OBSERVATION_CAUSES } from './protocol.ts';
import { Check, CheckResult, Provider, ProviderId, ProviderInput, RegistryEvent } from './schemas.ts';

const Id = Type.String({ minLength: 1, maxLength: 128 });

// --- caps: what one message may carry. A bigger list is not a valid message (the frame decoder drops it, counted);
// senders slice their lists to fit. Frame sizes follow from these (see LEADER_FRAME_LIMITS).
/** Observations in one presence report; workers send longer lists as several reports. */
export const MAX_OBSERVATIONS_PER_REPORT = 10_000;
/**
 * Tasks one worker may hold: the observations of its hello, the task list of its welcome. Decoding a hello is one
 * piece of work that cannot be sliced (about 100 ms per 25,000 observations here), so this also bounds how long
 * one message can keep the leader from answering.
 */
export const MAX_TASKS_PER_WORKER = 50_000;
/** Tasks (or ids) in one incremental `tasks.add` / `tasks.remove`. */
export const MAX_TASKS_PER_CHANGE = 50_000;
const ReqId = Type.Integer({ minimum: 0 });
const Millis = Type.Number();
/** The ACL state's version (bridge/acl.ts `AclState.version`): grows by one per ACL change. */
const AclVersion = Type.Integer({ minimum: 0 });
/** A token's public id (`AclToken.accessor`). */
const Accessor = Type.String({ minLength: 1, maxLength: 64 });

/** One provider a worker must watch. */
export const Task = Type.Object({
  id: ProviderId,
  host: Type.String({ maxLength: 253 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  check: Check,
});
export type Task = Static<typeof Task>;

/** What a worker observed about one task. `alive: null` means nothing observed yet. */
export const Observation = Type.Object({
  id: ProviderId,
  alive: Type.Union([Type.Boolean(), Type.Null()]),
  /** Why (see OBSERVATION_CAUSES in protocol.ts): e.g. `beat`, `missed`, `disconnect`, `unresponsive`, `check`. */
  cause: Type.Enum(OBSERVATION_CAUSES),
  at: Millis,
  output: Type.Optional(Type.String({ maxLength: 1024 })),
});
export type Observation = Static<typeof Observation>;

// --- worker → leader
export const WorkerHello = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.workerHello),
  workerId: Id,
  /** What the worker already watches and what it saw: lets a restarted leader keep assignments and presence. */
  observations: Type.Array(Observation, { maxItems: MAX_TASKS_PER_WORKER }),
});
export const WorkerPing = Type.Object({ type: Type.Literal(MESSAGE_TYPE.workerPing), workerId: Id });
export const PresenceReport = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.presence),
  workerId: Id,
  /** true: every task of the worker is listed (periodic full report); false: transitions only. */
  full: Type.Boolean(),
  observations: Type.Array(Observation, { maxItems: MAX_OBSERVATIONS_PER_REPORT }),
});

// --- leader → worker
export const WorkerWelcome = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.workerWelcome),
  session: Id,
  /** The whole task list: the worker watches exactly these afterwards. */
  tasks: Type.Array(Task, { maxItems: MAX_TASKS_PER_WORKER }),
});
export const TasksAdd = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.tasksAdd),
  tasks: Type.Array(Task, { maxItems: MAX_TASKS_PER_CHANGE }),
});
export const TasksRemove = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.tasksRemove),
  ids: Type.Array(ProviderId, { maxItems: MAX_TASKS_PER_CHANGE }),
});
export const WorkerPong = Type.Object({ type: Type.Literal(MESSAGE_TYPE.workerPong), session: Id });
/** The leader does not know this worker (it restarted, or declared the worker dead): say hello again. */
export const WorkerUnknown = Type.Object({ type: Type.Literal(MESSAGE_TYPE.workerUnknown), session: Id });
export const TtlPass = Type.Object({ type: Type.Literal(MESSAGE_TYPE.ttlPass), id: ProviderId, at: Millis });

// --- gateway → leader (requests carry reqId; the reply carries the same reqId)
export const PutRequest = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.put),
  reqId: ReqId,
  /** Absent for POST: the leader derives the id. */
  id: Type.Optional(ProviderId),
  input: ProviderInput,
  /**
   * Accessor id of the token that sent the registration (absent with ACLs off). The leader stores it on the
   * provider and refuses the put with SB_QUOTA_EXCEEDED when the token would own more than its `maxProviders`.
   */
  owner: Type.Optional(Accessor),
});
export const DeleteRequest = Type.Object({ type: Type.Literal(MESSAGE_TYPE.delete), reqId: ReqId, id: ProviderId });
export const TtlRequest = Type.Object({ type: Type.Literal(MESSAGE_TYPE.ttl), reqId: ReqId, id: ProviderId });
export const MaintenanceRequest = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.maintenance),
  reqId: ReqId,
  id: ProviderId,
  enabled: Type.Boolean(),
  reason: Type.Optional(Type.String({ maxLength: 512 })),
});
/** Providers per `snapshot.chunk` frame, at most (a frame of 10,000 large records stays within a few MiB). */
export const MAX_SNAPSHOT_CHUNK = 10_000;
/**
 * Ask for the whole registry. Without `chunk`: one `snapshot.reply` frame. With `chunk`: `snapshot.chunk` frames of
 * at most `chunk` providers each, all of one revision, the last one marked (bridge/snapshot-chunks.ts).
 */
export const SnapshotRequest = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.snapshot),
  reqId: ReqId,
  chunk: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SNAPSHOT_CHUNK })),
});
/** Ask for the events after `since`; answered with the events or `complete: false` if the leader no longer has them. */
export const SinceRequest = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.since),
  reqId: ReqId,
  epoch: Id,
  since: Type.Integer(),
});
export const PingRequest = Type.Object({ type: Type.Literal(MESSAGE_TYPE.ping), reqId: ReqId });
/** The leader's own Prometheus metrics, which gateways add to their `/metrics`. */
export const MetricsRequest = Type.Object({ type: Type.Literal(MESSAGE_TYPE.metrics), reqId: ReqId });
export const MetricsReply = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.metricsReply),
  reqId: ReqId,
  text: Type.String({ maxLength: 4 * 1024 * 1024 }),
});

/** What the leader knows of its workers: for operators (`GET /v1/admin/cluster`) and fault tests. */
export const ClusterRequest = Type.Object({ type: Type.Literal(MESSAGE_TYPE.cluster), reqId: ReqId });
export const WorkerStatus = Type.Object({
  id: Id,
  tasks: Type.Integer({ minimum: 0, description: 'Providers this worker watches' }),
  lastSeenMs: Type.Number({ description: 'Milliseconds since the worker was last heard' }),
});
export type WorkerStatus = Static<typeof WorkerStatus>;
export const ClusterReply = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.clusterReply),
  reqId: ReqId,
  session: Id,
  epoch: Id,
  rev: Type.Integer({ minimum: 0 }),
  providers: Type.Integer({ minimum: 0 }),
  workers: Type.Array(WorkerStatus, { maxItems: 100_000 }),
  unassigned: Type.Integer({ minimum: 0, description: 'Checked providers no worker watches right now' }),
  /** Where the registry lives (`sqlite`: a file; `etcd`: the store URL and prefix). */
  store: Type.Object({ kind: Type.Union([Type.Literal('sqlite'), Type.Literal('etcd')]), path: Type.String() }),
  /** The answering (active) leader: its control endpoint, session and term (the election key's create revision). */
  active: Type.Object({ endpoint: Type.String({ maxLength: 256 }), session: Id, term: Type.Integer({ minimum: 0 }) }),
  /** Every leader process in line, the active one first (SQLite: only itself, term 0). */
  candidates: Type.Array(
    Type.Object({
      endpoint: Type.String({ maxLength: 256 }),
      term: Type.Integer({ minimum: 0 }),
      active: Type.Boolean(),
    }),
    { maxItems: 1000 },
  ),
});

/** Operator override of the mass-down guard: publish every held down now. */
export const GuardReleaseRequest = Type.Object({ type: Type.Literal(MESSAGE_TYPE.guardRelease), reqId: ReqId });

/**
 * Writes in one batch frame: a gateway sends the writes of one event-loop turn together (fewer frames, sends and
 * decodes on both sides). Each keeps its own `reqId` and is answered on its own terms (ack or nack); the leader
 * answers them in `batch.reply` frames. A batch carries no `reqId` of its own: it is not one request.
 */
export const BATCHABLE_TYPES = [
  MESSAGE_TYPE.put,
  MESSAGE_TYPE.delete,
  MESSAGE_TYPE.ttl,
  MESSAGE_TYPE.maintenance,
] as const;
export type BatchableType = (typeof BATCHABLE_TYPES)[number];
/** Requests in one batch frame; a sender splits longer lists. */
export const MAX_BATCH_REQUESTS = 1000;
/** Bytes of one encoded batch frame; a sender splits a batch whose encoding is larger (LEADER_FRAME_LIMITS). */
export const MAX_BATCH_FRAME_BYTES = 8 * 1024 * 1024;
export const BatchRequest = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.batch),
  requests: Type.Array(Type.Union([PutRequest, DeleteRequest, TtlRequest, MaintenanceRequest]), {
    minItems: 1,
    maxItems: MAX_BATCH_REQUESTS,
  }),
});
/** The whole ACL state (answered with `acl.reply`): followers fetch it when a pong or beacon shows a new version. */
export const AclGetRequest = Type.Object({ type: Type.Literal(MESSAGE_TYPE.aclGet), reqId: ReqId });
/**
 * One change to tokens or policies. The gateway that takes the REST call builds it (for `token.create` it has made
 * the accessor, the secret and its hash: the secret never leaves that gateway); the leader checks it against the
 * stored state (SB_ACL_NOT_FOUND, SB_ACL_CONFLICT) and commits it.
 */
export const AclOp = Type.Union([
  /** Create or replace a policy. */
  Type.Object({ op: Type.Literal(ACL_OPS.policyPut), policy: AclPolicy }),
  /** Refused while a token names it, and for `global-management`. */
  Type.Object({ op: Type.Literal(ACL_OPS.policyDelete), name: Type.String({ pattern: ACL_POLICY_NAME_PATTERN }) }),
  /** Refused when the accessor exists or a named policy does not. */
  Type.Object({ op: Type.Literal(ACL_OPS.tokenCreate), token: AclToken }),
  /** Changes only the fields given; `maxProviders: null` goes back to the leader's default. */
  Type.Object({
    op: Type.Literal(ACL_OPS.tokenUpdate),
    accessor: Accessor,
    description: Type.Optional(Type.String({ maxLength: 512 })),
    policies: Type.Optional(AclToken.properties.policies),
    maxProviders: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0, maximum: MAX_ACL_PROVIDER_QUOTA }), Type.Null()]),
    ),
  }),
  /** Refused when it would leave no token holding an `admin` policy. */
  Type.Object({ op: Type.Literal(ACL_OPS.tokenDelete), accessor: Accessor }),
]);
export type AclOp = Static<typeof AclOp>;
/** Answered with `ack` (status 200, `rev` the registry's, `aclVersion` the new ACL version) once durable, or `nack`. */
export const AclWriteRequest = Type.Object({ type: Type.Literal(MESSAGE_TYPE.aclWrite), reqId: ReqId, op: AclOp });

// --- leader → gateway
export const Ack = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.ack),
  reqId: ReqId,
  status: Type.Integer(),
  rev: Type.Integer({ minimum: 0 }),
  provider: Type.Optional(Provider),
  /** The ACL version after an `acl.write` (a follower has the change once its `acl.version` reaches it). */
  aclVersion: Type.Optional(AclVersion),
});
export const Nack = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.nack),
  reqId: ReqId,
  statusCode: Type.Integer(),
  code: Type.String({ maxLength: 64 }),
  message: Type.String({ maxLength: 2048 }),
});
export const SnapshotReply = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.snapshotReply),
  reqId: ReqId,
  epoch: Id,
  rev: Type.Integer({ minimum: 0 }),
  providers: Type.Array(Provider, { maxItems: 10_000_000 }),
});
/** A position in one of a chunk's lists of names (`services`, `protocols`, `states`, `tags`, `metas`). */
const ChunkIndex = Type.Integer({ minimum: 0, maximum: MAX_SNAPSHOT_CHUNK });
/**
 * A provider as a row of a `snapshot.chunk`: the fields in a fixed order, the values that repeat across records
 * (service, protocol, tags, meta, state) as positions in the chunk's lists, then the optional fields in a map (or
 * null). Decoding arrays of numbers is cheaper than decoding maps that repeat every key and value in every record,
 * and each list is shared by its records once per chunk instead of once per record.
 */
export const ProviderRow = Type.Tuple([
  Provider.properties.id,
  ChunkIndex,
  Provider.properties.host,
  Provider.properties.port,
  ChunkIndex,
  ChunkIndex,
  ChunkIndex,
  ChunkIndex,
  Provider.properties.stateSince,
  Provider.properties.registeredAt,
  Provider.properties.updatedAt,
  Provider.properties.rev,
  Type.Union([
    Type.Null(),
    Type.Object(
      { check: Provider.properties.check, lastCheck: Provider.properties.lastCheck, owner: Provider.properties.owner },
      { additionalProperties: false },
    ),
  ]),
]);
export type ProviderRow = Static<typeof ProviderRow>;
/**
 * One frame of a snapshot sent in chunks: `seq` counts from 0, every chunk carries the same `epoch`, `rev` and
 * `total` (providers in the whole snapshot), and the last one says so.
 */
export const SnapshotChunk = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.snapshotChunk),
  reqId: ReqId,
  epoch: Id,
  rev: Type.Integer({ minimum: 0 }),
  seq: Type.Integer({ minimum: 0 }),
  total: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
  last: Type.Boolean(),
  services: Type.Array(Provider.properties.service, { maxItems: MAX_SNAPSHOT_CHUNK }),
  protocols: Type.Array(Provider.properties.protocol, { maxItems: MAX_SNAPSHOT_CHUNK }),
  tags: Type.Array(Provider.properties.tags, { maxItems: MAX_SNAPSHOT_CHUNK }),
  metas: Type.Array(Provider.properties.meta, { maxItems: MAX_SNAPSHOT_CHUNK }),
  states: Type.Array(Provider.properties.state, { maxItems: 8 }),
  rows: Type.Array(ProviderRow, { maxItems: MAX_SNAPSHOT_CHUNK }),
});
export type SnapshotChunk = Static<typeof SnapshotChunk>;
export const SinceReply = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.sinceReply),
  reqId: ReqId,
  complete: Type.Boolean(),
  events: Type.Array(RegistryEvent, { maxItems: 1_000_000 }),
});
export const MassDownGuardStatus = Type.Object({
  active: Type.Boolean(),
  held: Type.Integer({ minimum: 0, description: 'Down transitions held back' }),
  since: Type.Optional(Type.Number({ description: 'Epoch milliseconds the guard tripped' })),
});
export type MassDownGuardStatus = Static<typeof MassDownGuardStatus>;
export const StoreHealth = Type.Object({
  healthy: Type.Boolean(),
  error: Type.Optional(Type.String({ maxLength: 2048, description: 'Why the last commit failed' })),
  since: Type.Optional(Type.Number({ description: 'Epoch milliseconds the store has been failing since' })),
});
export type StoreHealth = Static<typeof StoreHealth>;
/** The answers to (some of) the requests of batch frames, each with its own `reqId`. */
export const BatchReply = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.batchReply),
  replies: Type.Array(Type.Union([Ack, Nack]), { minItems: 1, maxItems: MAX_BATCH_REQUESTS }),
});
export const Pong = Type.Object({
  type: Type.Literal(MESSAGE_TYPE.pong),
  reqId: ReqId,
  session: Id,
  epoch: Id,
  rev: Type.Integer({ minimum: 0 }),
  /** The leader's PUB endpoint as bound (a wildcard host is replaced by the follower). */
  events: Type.String({ maxLength: 256 }),
  /** The leader's mass-down guard, so gateways can show it on /readyz and /metrics. */
  guard: Type.Optional(MassDownGuardStatus),
  /** The answering leader's own control endpoint (with several leaders listed, the active one). */
  control: Type.Optional(Type.String({ maxLength: 256 })),
  /** Whether the leader's store takes commits; while not, writes are refused (SB_STORE_UNAVAILABLE). */
  store: Type.Optional(StoreHealth),
  /** The leader's ACL version: a follower holding another one fetches the state (`acl.get`). */
  aclVersion: Type.Optional(AclVersion),
});
/** Every token (secrets as hashes only) and policy, at one ACL version. */
export const AclReply = Type.Object({ type: Type.Literal(MESSAGE_TYPE.aclReply), reqId: ReqId, state: AclState });

// --- leader PUB
export const Beacon = Type.Object({
  session: Id,
  epoch: Id,
  rev: Type.Integer({ minimum: 0 }),
  at: Millis,
  /** The leader's ACL version (as in `pong`); also sent at once after each ACL change. */
  aclVersion: Type.Optional(AclVersion),
});
export type Beacon = Static<typeof Beacon>;
// Topics live in protocol.ts (dependency-free); re-exported here for code that imports them from messages.ts.
export { TOPIC_EVENT, TOPIC_EVENTS, TOPIC_BEACON } from './protocol.ts';

/** Everything the leader's ROUTER accepts. */
export const ToLeader = Type.Union([
  WorkerHello,
  WorkerPing,
  PresenceReport,
  PutRequest,
  DeleteRequest,
  TtlRequest,
  MaintenanceRequest,
  SnapshotRequest,
  SinceRequest,
  PingRequest,
  GuardReleaseRequest,
  ClusterRequest,
  MetricsRequest,
  BatchRequest,
  AclGetRequest,
  AclWriteRequest,
]);
export type ToLeader = Static<typeof ToLeader>;

/**
 * Frame sizes the leader's ROUTER accepts, by message type. `socket` is libzmq's `maxMessageSize` there (a bigger
 * frame costs the sender its connection before any byte reaches JavaScript); a frame over its type's bound is
 * dropped by the decoder and counted (`reason="oversized"`). A hello of MAX_TASKS_PER_WORKER observations with
 * 128-character ids is about 9 MiB (workers leave check outputs out of it); a report of
 * MAX_OBSERVATIONS_PER_REPORT with 1 KiB outputs about 11 MiB.
 */
export const LEADER_FRAME_LIMITS = {
  socket: 12 * 1024 * 1024,
  byType: {
    'worker.hello': 12 * 1024 * 1024,
    presence: 12 * 1024 * 1024,
    batch: MAX_BATCH_FRAME_BYTES,
    // The largest op is a policy of 1000 rules of 63-character names: about 90 KiB of msgpack.
    'acl.write': 128 * 1024,
    'acl.get': 1024,
  } as Partial<Record<ToLeader['type'], number>>,
  /** Every other type (requests from gateways: a provider record is at most about 40 KiB). */
  other: 256 * 1024,
} as const;

/** Everything a worker's DEALER accepts. */
export const ToWorker = Type.Union([WorkerWelcome, TasksAdd, TasksRemove, WorkerPong, WorkerUnknown, TtlPass]);
export type ToWorker = Static<typeof ToWorker>;

/** Everything a gateway's DEALER accepts. */
export const ToFollower = Type.Union([
  Ack,
  Nack,
  SnapshotReply,
  SnapshotChunk,
  SinceReply,
  Pong,
  ClusterReply,
  MetricsReply,
  BatchReply,
  AclReply,
]);
export type ToFollower = Static<typeof ToFollower>;

/** What answers one request (a `batch.reply` is unpacked into these). */
export type Reply = Exclude<ToFollower, { type: 'batch.reply' }>;
export type RequestMessage = Extract<ToLeader, { reqId: number }>;
/** A request as the caller writes it; the link fills in reqId. */
export type RequestBody = RequestMessage extends infer M ? (M extends unknown ? Omit<M, 'reqId'> : never) : never;

export const toLeader = Compile(ToLeader);
export const toWorker = Compile(ToWorker);
export const toFollower = Compile(ToFollower);
export const registryEvent = Compile(RegistryEvent);
/** Events in one `TOPIC_EVENTS` message; a commit of more is published in several. */
export const MAX_PUBLISHED_EVENTS_PER_FRAME = 1000;
/** The body of a `TOPIC_EVENTS` message: the events of one commit. */
export const registryEvents = Compile(
  Type.Array(RegistryEvent, { minItems: 1, maxItems: MAX_PUBLISHED_EVENTS_PER_FRAME }),
);
export const beacon = Compile(Beacon);
export { CheckResult };

/**
 * The public data model (docs/architecture.md): services, providers, checks, events. Defined once as TypeBox
 * schemas, used by the gateway's routes (HTTP validation and OpenAPI) and inside internal messages (frame
 * validation).
 */
import { Type, type Static } from 'typebox';

export const SERVICE_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$';
export const PROVIDER_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
/** A DNS hostname, a dotted IPv4 address, or an IPv6 address (brackets optional). */
export const HOST_PATTERN =
  '^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\\.?' +
  '|\\[?[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\\]?)$';
/** A ZeroMQ endpoint a worker can connect to: tcp://host:port or ipc://path. */
export const ZMQ_ENDPOINT_PATTERN =
  '^(?:tcp://(?:[A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}|ipc://[^\\s]{1,200})$';
export const HTTP_URL_PATTERN = '^https?://[^\\s]{1,2000}$';

export const ServiceName = Type.String({ pattern: SERVICE_NAME_PATTERN, description: 'Service name' });
export const ProviderId = Type.String({ pattern: PROVIDER_ID_PATTERN, description: 'Provider id' });
/** The protocols of the design, named in the docs; any other lowercase token (`grpc`, `amqp`...) is accepted too. */
export const KNOWN_PROTOCOLS = ['http', 'rpc-server', 'rpc-publisher'] as const;
export const Protocol = Type.String({
  pattern: '^[a-z][a-z0-9+.-]{0,31}$',
  examples: [...KNOWN_PROTOCOLS, 'grpc'],
  description: `How to talk to the provider: ${KNOWN_PROTOCOLS.join(', ')}, or any other lowercase token (grpc, amqp...)`,
});
export type Protocol = Static<typeof Protocol>;
export const ProviderState = Type.Union([
  Type.Literal('pending'),
  Type.Literal('up'),
  Type.Literal('down'),
  Type.Literal('maintenance'),
]);
export type ProviderState = Static<typeof ProviderState>;

const IntervalMs = Type.Integer({ minimum: 50, maximum: 3_600_000, description: 'Milliseconds between checks' });
const TimeoutMs = Type.Integer({ minimum: 10, maximum: 60_000, description: 'Milliseconds before one check fails' });

/** Consecutive failed checks before a provider is reported down (the zmq check counts `misses` instead). */
const FailuresBeforeDown = Type.Integer({ minimum: 1, maximum: 100, description: 'Consecutive failures before down' });
/** Consecutive passes (or beats) a provider that was down must give before it is up again. */
const SuccessesBeforeUp = Type.Integer({
  minimum: 1,
  maximum: 100,
  description: 'Consecutive successes before up again',
});
/** A provider down this long is removed (a `deregistered` event); overrides the leader's default. */
const DeregisterAfterMs = Type.Integer({
  minimum: 100,
  maximum: 2_592_000_000,
  description: 'Remove the provider after it has been down this long (milliseconds)',
});

export const ZmqCheck = Type.Object(
  {
    type: Type.Literal('zmq'),
    endpoint: Type.String({ pattern: ZMQ_ENDPOINT_PATTERN, maxLength: 256, description: 'The provider PUB socket' }),
    intervalMs: Type.Optional(IntervalMs),
    misses: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Silent intervals before down' })),
    successesBeforeUp: Type.Optional(SuccessesBeforeUp),
    deregisterAfterMs: Type.Optional(DeregisterAfterMs),
  },
  { additionalProperties: false },
);
export const HttpCheck = Type.Object(
  {
    type: Type.Literal('http'),
    url: Type.String({ pattern: HTTP_URL_PATTERN, maxLength: 2048 }),
    intervalMs: Type.Optional(IntervalMs),
    timeoutMs: Type.Optional(TimeoutMs),
    /** When set, only this status is alive; otherwise any 2xx. */
    expectStatus: Type.Optional(
      Type.Integer({ minimum: 100, maximum: 599, description: 'The one HTTP status that means alive' }),
    ),
    failuresBeforeDown: Type.Optional(FailuresBeforeDown),
    successesBeforeUp: Type.Optional(SuccessesBeforeUp),
    deregisterAfterMs: Type.Optional(DeregisterAfterMs),
  },
  { additionalProperties: false },
);
export const TcpCheck = Type.Object(
  {
    type: Type.Literal('tcp'),
    intervalMs: Type.Optional(IntervalMs),
    timeoutMs: Type.Optional(TimeoutMs),
    failuresBeforeDown: Type.Optional(FailuresBeforeDown),
    successesBeforeUp: Type.Optional(SuccessesBeforeUp),
    deregisterAfterMs: Type.Optional(DeregisterAfterMs),
  },
  { additionalProperties: false },
);
export const TtlCheck = Type.Object(
  {
    type: Type.Literal('ttl'),
    ttlMs: Type.Integer({ minimum: 100, maximum: 86_400_000 }),
    /** Each `ttlMs` without a pass is one failure. */
    failuresBeforeDown: Type.Optional(FailuresBeforeDown),
    successesBeforeUp: Type.Optional(SuccessesBeforeUp),
    deregisterAfterMs: Type.Optional(DeregisterAfterMs),
  },
  { additionalProperties: false },
);
export const Check = Type.Union([ZmqCheck, HttpCheck, TcpCheck, TtlCheck], { description: 'How liveness is watched' });
export type Check = Static<typeof Check>;
export type ZmqCheck = Static<typeof ZmqCheck>;
export type HttpCheck = Static<typeof HttpCheck>;
export type TcpCheck = Static<typeof TcpCheck>;
export type TtlCheck = Static<typeof TtlCheck>;

export const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 });
export const Meta = Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Type.String({ maxLength: 512 }), {
  maxProperties: 64,
  additionalProperties: false,
});

/** What a client sends to register or update a provider. */
export const ProviderInput = Type.Object(
  {
    service: ServiceName,
    host: Type.String({ pattern: HOST_PATTERN, minLength: 1, maxLength: 253 }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Protocol,
    check: Type.Optional(Check),
    tags: Type.Optional(Tags),
    meta: Type.Optional(Meta),
  },
  { additionalProperties: false },
);
export type ProviderInput = Static<typeof ProviderInput>;

export const CheckResult = Type.Object({
  ok: Type.Boolean(),
  at: Type.Number({ description: 'Epoch milliseconds' }),
  output: Type.Optional(Type.String({ maxLength: 1024 })),
  /** The error text of the most recent failure, kept after the provider is up again. */
  lastFailure: Type.Optional(Type.String({ maxLength: 1024 })),
  lastFailureAt: Type.Optional(Type.Number()),
});
export type CheckResult = Static<typeof CheckResult>;

/** A stored provider as every reader sees it. */
export const Provider = Type.Object({
  id: ProviderId,
  service: ServiceName,
  host: Type.String(),
  port: Type.Integer(),
  protocol: Protocol,
  check: Type.Optional(Check),
  tags: Tags,
  meta: Meta,
  state: ProviderState,
  stateSince: Type.Number({ description: 'Epoch milliseconds when the provider entered its state' }),
  registeredAt: Type.Number(),
  updatedAt: Type.Number(),
  rev: Type.Integer({ minimum: 1, description: 'Revision of the last change to this provider' }),
  lastCheck: Type.Optional(CheckResult),
  owner: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'Accessor id of the token that registered it; absent with ACLs off',
    }),
  ),
});
export type Provider = Static<typeof Provider>;

export const Change = Type.Union([
  Type.Literal('registered'),
  Type.Literal('updated'),
  Type.Literal('up'),
  Type.Literal('down'),
  Type.Literal('maintenance'),
  Type.Literal('deregistered'),
]);
export type Change = Static<typeof Change>;

export const RegistryEvent = Type.Object({
  epoch: Type.String(),
  rev: Type.Integer({ minimum: 1 }),
  /**
   * The revision of the previous change to the same service. A follower of some services only (whose revisions
   * jump over other services' changes) has missed something when `prev` is above the last revision it knows for
   * that service (its snapshot's `rev`, or the last event of that service it applied).
   */
  prev: Type.Optional(Type.Integer({ minimum: 0 })),
  change: Change,
  service: ServiceName,
  provider: Provider,
  at: Type.Number(),
});
export type RegistryEvent = Static<typeof RegistryEvent>;

export const Snapshot = Type.Object({
  epoch: Type.String(),
  rev: Type.Integer({ minimum: 0 }),
  providers: Type.Array(Provider),
});
export type Snapshot = Static<typeof Snapshot>;

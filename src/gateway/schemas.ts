/** Request and response schemas of the REST API (they drive validation, serialization and the OpenAPI document). */
import { Type, type Static } from 'typebox';
import { Protocol, Provider, ProviderId, ProviderInput, ProviderState, ServiceName } from '../bridge/index.ts';

export const ProviderParams = Type.Object({ id: ProviderId });
export const ServiceParams = Type.Object({ name: ServiceName });

/** Consul-style durations: `30`, `30s`, `500ms`, `5m`. */
export const WAIT_PATTERN = '^[0-9]{1,7}(?:ms|s|m)?$';

const Blocking = {
  index: Type.Optional(
    Type.Integer({ minimum: 0, description: 'Blocking query: answer once the data changes past this revision' }),
  ),
  wait: Type.Optional(
    Type.String({
      pattern: WAIT_PATTERN,
      description: 'Blocking query timeout (default 60s, at most 600s): 30, 30s, 500ms, 5m',
    }),
  ),
};

/** Query keys of meta filters on lookups: `meta.version=1.4.2`. */
export const META_FILTER_PATTERN = '^meta\\.[A-Za-z0-9_.-]{1,64}$';
/** The meta filters of a lookup's query, as [key, value] pairs. */
export function metaFilters(query: object): Array<[string, string]> {
  const filters: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(query))
    if (k.startsWith('meta.') && typeof v === 'string') filters.push([k.slice(5), v]);
  return filters;
}

export const ServiceQuery = Type.Object(
  {
    state: Type.Optional(ProviderState),
    protocol: Type.Optional(Protocol),
    tag: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        maxItems: 32,
        description: 'Only providers carrying this tag; repeat it (`tag=a&tag=b`) for providers carrying all of them',
      }),
    ),
    ...Blocking,
  },
  {
    additionalProperties: false,
    // `meta.<key>=<value>`: only providers whose meta has that value for that key (every such filter must match).
    patternProperties: { [META_FILTER_PATTERN]: { type: 'string', maxLength: 512 } },
  },
);

export type ServiceQuery = Static<typeof ServiceQuery>;
export const ServicesQuery = Type.Object({ ...Blocking }, { additionalProperties: false });

export const ServiceSummary = Type.Object({
  name: ServiceName,
  providers: Type.Integer({ description: 'Registered providers' }),
  up: Type.Integer({ description: 'Providers in state up' }),
});

export const ServicesResponse = Type.Object({
  rev: Type.Integer(),
  stale: Type.Boolean({ description: 'True when the gateway may be behind the leader' }),
  services: Type.Array(ServiceSummary),
});

export const ServiceResponse = Type.Object({
  rev: Type.Integer(),
  stale: Type.Boolean(),
  service: ServiceName,
  providers: Type.Array(Provider),
});

export const MaintenanceBody = Type.Object(
  { enabled: Type.Boolean(), reason: Type.Optional(Type.String({ maxLength: 512 })) },
  { additionalProperties: false },
);

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
    code: Type.String(),
  },
  { $id: 'Error', description: 'Fastify error shape' },
);

/** Providers in one `PUT /v1/providers` (batch registration); a client with more sends several. */
export const MAX_BATCH_REGISTRATIONS = 1000;
/** Body limit of the batch route: 1,000 typical providers (~200 B each) fit with room; huge records need smaller batches. */
export const BATCH_BODY_LIMIT = 4 * 1024 * 1024;

/** One provider of a batch registration: the single route's body, with its id (absent: the server chooses it, as POST). */
export const BatchProvider = Type.Object(
  { id: Type.Optional(ProviderId), ...ProviderInput.properties },
  { additionalProperties: false },
);
export type BatchProvider = Static<typeof BatchProvider>;
export const BatchRegistration = Type.Array(BatchProvider, {
  minItems: 1,
  maxItems: MAX_BATCH_REGISTRATIONS,
  description: `At most ${MAX_BATCH_REGISTRATIONS} providers`,
});
export const BatchResult = Type.Object({
  results: Type.Array(
    Type.Object({
      status: Type.Integer({ description: 'What the single route would have answered: 201, 200, or an error status' }),
      provider: Type.Optional(Provider),
      error: Type.Optional(ErrorResponse),
    }),
    { description: 'One result per provider, in the order sent' },
  ),
});

export const Health = Type.Object({ status: Type.String() });
export const Readiness = Type.Object({
  ready: Type.Boolean(),
  leaderReachable: Type.Boolean(),
  loaded: Type.Boolean(),
  stale: Type.Boolean(),
  epoch: Type.Union([Type.String(), Type.Null()]),
  rev: Type.Integer(),
  lastContactMs: Type.Union([Type.Number(), Type.Null()]),
});

/** Error responses every route documents. */
export function errorResponses(...codes: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const c of codes) out[c] = Type.Ref('Error');
  return out;
}

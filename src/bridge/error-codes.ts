/**
 * Every error code Switchboard answers with, in one table (as fastify's lib/errors.js does). The gateway builds
 * its HTTP errors from it, the leader refuses requests with its codes, and a test keeps it and the OpenAPI
 * document in step.
 */
export interface ErrorCodeSpec {
  statusCode: number;
  /** printf-style, `%s` filled by the thrower. */
  message: string;
  description: string;
}

export const ERROR_CODES = {
  FST_ERR_VALIDATION: {
    statusCode: 400,
    message: '%s',
    description: 'A body field, path parameter or query parameter is invalid; the message names it (e.g. body/port).',
  },
  SB_BAD_REQUEST: {
    statusCode: 400,
    message: '%s',
    description: 'The request is malformed in a way the schema cannot say.',
  },
  SB_INVALID_JSON: {
    statusCode: 400,
    message: '%s',
    description: 'The body is not valid JSON (or is empty while its content-type says JSON).',
  },
  SB_BODY_TOO_LARGE: {
    statusCode: 413,
    message: '%s',
    description: 'The body is larger than the gateway accepts (64 KiB by default, the gateway `bodyLimit` setting).',
  },
  SB_UNSUPPORTED_MEDIA_TYPE: {
    statusCode: 415,
    message: '%s',
    description:
      'The body has a content-type the route does not read; send `application/json`. Writes with a form or text/plain body (which any web page can send cross-site) are refused with it too.',
  },
  SB_PROVIDER_NOT_FOUND: {
    statusCode: 404,
    message: "provider '%s' is not registered",
    description: 'No provider has this id.',
  },
  SB_ADDRESS_CONFLICT: {
    statusCode: 409,
    message: '%s',
    description: 'Another provider id is already registered for the same service, host, port and protocol.',
  },
  SB_NOT_TTL_CHECK: {
    statusCode: 409,
    message: '%s',
    description: 'A TTL pass was sent for a provider whose check is not `ttl`.',
  },
  SB_READ_ONLY: {
    statusCode: 405,
    message: '%s',
    description:
      "A write to a Consul-compatible path: that API is read-only; the message names Switchboard's own route for the write.",
  },
  SB_LEADER_UNAVAILABLE: {
    statusCode: 503,
    message: 'the leader is not reachable; writes are refused until it returns (reads still work, marked stale)',
    description: 'The gateway has no contact with the leader, so it cannot make a write durable.',
  },
  SB_LEADER_TIMEOUT: {
    statusCode: 503,
    message: 'the leader did not confirm the write within %s ms; it may or may not have been applied',
    description: 'The write was sent but not acknowledged in time. Retrying a PUT is safe (idempotent).',
  },
  SB_BUSY: { statusCode: 503, message: '%s', description: 'Too many writes are waiting for the leader; retry later.' },
  SB_NO_WORKER: {
    statusCode: 503,
    message: '%s',
    description: 'No worker is watching this provider yet (TTL pass not delivered).',
  },
  SB_STORE_FAILED: {
    statusCode: 503,
    message: '%s',
    description:
      'Sent by leaders before store failures were retried; a leader now answers SB_STORE_UNAVAILABLE while its store fails. Kept for clients that still check it.',
  },
  SB_STORE_UNAVAILABLE: {
    statusCode: 503,
    message: '%s',
    description:
      'The leader cannot write its store right now (disk full, read-only, etcd without quorum) and retries by itself; writes are refused until it recovers. A write that got this answer may still be stored once it does (a retried PUT is safe).',
  },
  SB_LEADER_FAILED: { statusCode: 503, message: '%s', description: 'The leader failed while handling the request.' },
  SB_ROUTE_NOT_FOUND: {
    statusCode: 404,
    message: 'no route %s; the API is listed at /docs',
    description: 'No route answers this method and path.',
  },
  SB_NOT_READY: {
    statusCode: 503,
    message: '%s',
    description: 'The gateway is not ready: its replica is not in sync with a leader.',
  },
  SB_CHECK_TARGET_REFUSED: {
    statusCode: 400,
    message: '%s',
    description:
      "The check would reach a target checks may not reach (link-local, cloud metadata, unspecified, ipc://, the gateway's own ports, loopback on a non-loopback gateway); the message names the field. `--check-allow-cidr` allows a range.",
  },
  SB_FORBIDDEN_HOST: {
    statusCode: 403,
    message: '%s',
    description:
      'The Host header is not one this gateway answers to (DNS rebinding protection); `--allowed-hosts` lists the names.',
  },
  SB_FORBIDDEN_ORIGIN: {
    statusCode: 403,
    message: '%s',
    description:
      'A browser request (Origin header) from a page whose origin is not allowed: not the same origin and not in `--allowed-origins`.',
  },
  SB_RATE_LIMITED: {
    statusCode: 429,
    message: '%s',
    description:
      'This client sent more writes than `--write-rate-limit` allows per window; retry after `retry-after` seconds.',
  },
  SB_UNAUTHENTICATED: {
    statusCode: 401,
    message: '%s',
    description:
      'ACLs are on and the request carries no token, or a token the gateway does not know (`Authorization: Bearer <secret>` or `X-Switchboard-Token`).',
  },
  SB_PERMISSION_DENIED: {
    statusCode: 403,
    message: '%s',
    description:
      'The token is valid but its policies do not allow this: `read` or `write` on the service named in the message, or `admin`.',
  },
  SB_QUOTA_EXCEEDED: {
    statusCode: 403,
    message: '%s',
    description: 'The token already has as many providers registered as its quota allows (`maxProviders`).',
  },
  SB_ACL_NOT_FOUND: {
    statusCode: 404,
    message: '%s',
    description: 'No token with this accessor id, or no policy with this name.',
  },
  SB_ACL_CONFLICT: {
    statusCode: 409,
    message: '%s',
    description:
      'The ACL change contradicts the stored ones: a policy name already taken, a token naming an unknown policy, a policy still used by a token, or the last admin token.',
  },
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

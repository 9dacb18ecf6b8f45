/** Schemas of the push transports: query strings (validated by Fastify, shown in OpenAPI) and WebSocket messages. */
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { ServiceName, WATCH_MESSAGE } from '../bridge/index.ts';

/** A client watching more services than this should watch everything and filter itself. */
export const MAX_SERVICE_FILTERS = 64;

const Services = Type.Optional(
  Type.Array(ServiceName, {
    maxItems: MAX_SERVICE_FILTERS,
    description: `Only changes to these services (repeat the parameter for several, at most ${MAX_SERVICE_FILTERS}); all services when absent`,
  }),
);
/** Browsers cannot set headers on a WebSocket or an EventSource: the token may come in the query instead. */
const Token = Type.Optional(
  Type.String({
    minLength: 1,
    maxLength: 256,
    description: 'Access token (with ACLs on), for clients that cannot send Authorization: Bearer; never logged',
  }),
);
const Epoch = Type.Optional(
  Type.String({
    pattern: '^[A-Za-z0-9_-]{1,64}$',
    description: 'Epoch of the revision resumed from; a different epoch gets a snapshot',
  }),
);

export const WatchQuery = Type.Object(
  {
    service: Services,
    epoch: Epoch,
    token: Token,
    rev: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'Resume: send the events after this revision (or a snapshot if they are no longer held)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type WatchQuery = Static<typeof WatchQuery>;

export const EventsQuery = Type.Object(
  {
    service: Services,
    epoch: Epoch,
    token: Token,
    since: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'Resume: send the events after this revision; `Last-Event-ID` does the same',
      }),
    ),
  },
  { additionalProperties: false },
);
export type EventsQuery = Static<typeof EventsQuery>;

export const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({
      pattern: '^[0-9]{1,15}$',
      description: 'The id (revision) of the last event received; the stream resumes after it',
    }),
  ),
});

// --- WebSocket client → gateway
export const ResumeMessage = Type.Object({
  type: Type.Literal(WATCH_MESSAGE.resume),
  epoch: Epoch,
  rev: Type.Integer({ minimum: 0 }),
});
export const PingMessage = Type.Object({ type: Type.Literal(WATCH_MESSAGE.ping) });
export const ClientMessage = Type.Union([ResumeMessage, PingMessage]);
export type ClientMessage = Static<typeof ClientMessage>;
export const clientMessage = Compile(ClientMessage);

/** `code` of `{ type: "error" }` messages on the WebSocket (the connection stays open). */
export const WS_ERRORS = {
  'bad-json': 'the message is not valid JSON',
  'unknown-type': 'unknown message type; known: resume, ping',
  'invalid-message': 'the message does not match its schema',
  'binary-not-supported': 'send text frames with JSON',
} as const;

/** WebSocket close codes the gateway uses (4000–4999 is the application range). */
export const WS_CLOSE = {
  /** The gateway is shutting down: reconnect (to it or another gateway) and resume. */
  shutdown: 1001,
  /** No pong to the last ping. */
  noPong: 1011,
  /** The client read too slowly and its buffer filled up: reconnect and resume from the last rev received. */
  slow: 4008,
  /** Too many connections (from this address, or in total). */
  tooMany: 4029,
  /** The token was deleted while the stream was open (SB_UNAUTHENTICATED; the reason is `{code, message}` JSON). */
  unauthenticated: 4401,
  /** The token no longer reads any service the stream watches (SB_PERMISSION_DENIED; reason as above). */
  forbidden: 4403,
} as const;

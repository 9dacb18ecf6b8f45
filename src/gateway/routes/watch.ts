/**
 * `GET /v1/watch`, the WebSocket transport: a snapshot (or the events after a resume point), then one message
 * per change. Each client's unsent bytes are bounded; one that reads too slowly is closed with 4008 and resumes.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket, RawData } from 'ws';
import { WATCH_MESSAGE, type RegistryEvent } from '../../bridge/index.ts';
import type { StreamAccess, StreamRevocation } from '../acl.ts';
import type { GatewayContext, PushSettings } from '../context.ts';
import { clientKey } from '../clients.ts';
import { httpError } from '../errors.ts';
import { errorResponses } from '../schemas.ts';
import type { EventHub, Outgoing, OutgoingEvents, SnapshotBody, Transport, Watcher } from '../subscribers.ts';
import { clientMessage, WatchQuery, WS_CLOSE, WS_ERRORS } from '../subscribers-schemas.ts';
import { textFrame, writeFrames } from '../ws-frames.ts';

/** A client that does not finish the close handshake in time is cut off, so a stuck socket frees its buffer. */
const CLOSE_GRACE_MS = 5000;

const encodeEvent = (e: RegistryEvent): string => JSON.stringify({ type: WATCH_MESSAGE.event, ...e });
/** The event as a whole WebSocket frame: written as is to every subscriber's connection (ws-frames.ts). */
const frameEvent = (e: RegistryEvent): Buffer => textFrame(Buffer.from(encodeEvent(e)));
const encodeSnapshot = (s: SnapshotBody): string => JSON.stringify({ type: WATCH_MESSAGE.snapshot, ...s });

/** A close reason may hold 123 bytes (RFC 6455 §5.5): `{code, message}` JSON, the message cut to fit. */
const MAX_CLOSE_REASON = 123;

function closeReason(why: StreamRevocation): string {
  let message = why.message;
  for (;;) {
    const reason = JSON.stringify({ code: why.code, message });
    if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON) return reason;
    message = `${message.slice(0, Math.max(0, message.length - (Buffer.byteLength(reason) - MAX_CLOSE_REASON) - 1))}…`;
  }
}

class WsWatcher implements Watcher {
  readonly transport: Transport = 'ws';
  readonly #socket: WebSocket;
  readonly #hub: EventHub;
  readonly #settings: PushSettings;
  readonly #log: FastifyBaseLogger;
  readonly #pingTimer: NodeJS.Timeout;
  #alive = true;
  #closed = false;
  /** A snapshot may legitimately exceed the buffer limit; only what comes on top of it counts as lag. */
  #allowance = 0;

  constructor(
    socket: WebSocket,
    readonly address: string,
    readonly services: ReadonlySet<string> | null,
    readonly access: StreamAccess | null,
    hub: EventHub,
    settings: PushSettings,
    log: FastifyBaseLogger,
  ) {
    this.#socket = socket;
    this.#hub = hub;
    this.#settings = settings;
    this.#log = log;
    socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    socket.on('pong', () => (this.#alive = true));
    socket.on('close', () => this.#cleanup());
    this.#pingTimer = setInterval(() => this.#ping(), settings.wsPingIntervalMs);
  }

  snapshot(message: Outgoing<SnapshotBody>): void {
    const bytes = message.encoded('ws', encodeSnapshot);
    // One snapshot may exceed the budget; a second one queued on top of it (resumes in a loop) counts as lag.
    this.#allowance = bytes.length;
    this.#send(bytes);
  }

  events(message: OutgoingEvents): void {
    if (this.#closed) return;
    if (writeFrames(this.#socket, message.encoded('ws-frame', frameEvent))) this.#checkBuffered();
    // Not safe to write frames past ws (see writeFrames): one message per event through ws.
    else for (const e of message.events) this.#send(e.encoded('ws', encodeEvent));
  }

  resumed(position: { epoch: string; rev: number }): void {
    this.#allowance = 0;
    this.#send(JSON.stringify({ type: WATCH_MESSAGE.resumed, ...position }));
  }

  hello(): void {
    // WebSocket subscribers always start with a snapshot or a resume.
  }

  shutdown(): void {
    this.close(WS_CLOSE.shutdown, 'gateway shutting down; reconnect and resume');
  }

  revoke(why: StreamRevocation): void {
    this.close(why.status === 401 ? WS_CLOSE.unauthenticated : WS_CLOSE.forbidden, closeReason(why));
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#cleanup();
    this.#socket.close(code, reason);
    setTimeout(() => this.#socket.terminate(), CLOSE_GRACE_MS).unref();
  }

  #send(data: string | Buffer): void {
    if (this.#closed) return;
    // A shared Buffer is queued by reference (ws does not mask server frames), sent as a text frame.
    this.#socket.send(data, { binary: false });
    this.#checkBuffered();
  }

  #checkBuffered(): void {
    // bufferedAmount: bytes queued in ws and Node's socket, i.e. what the client has not taken yet.
    if (this.#socket.bufferedAmount > this.#settings.clientBufferBytes + this.#allowance) {
      this.#log.warn(
        { address: this.address, buffered: this.#socket.bufferedAmount },
        'closing slow WebSocket subscriber',
      );
      this.#hub.droppedSlow(this);
      this.close(
        WS_CLOSE.slow,
        `slow consumer: more than ${this.#settings.clientBufferBytes} bytes unsent; reconnect and resume`,
      );
    }
  }

  #error(code: keyof typeof WS_ERRORS, detail?: string): void {
    this.#send(
      JSON.stringify({
        type: WATCH_MESSAGE.error,
        code,
        message: detail ? `${WS_ERRORS[code]}: ${detail}` : WS_ERRORS[code],
      }),
    );
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (isBinary) return this.#error('binary-not-supported');
    let value: unknown;
    try {
      value = JSON.parse((data as Buffer).toString());
    } catch {
      return this.#error('bad-json');
    }
    if (!clientMessage.Check(value)) {
      const type = value && typeof value === 'object' ? (value as { type?: unknown }).type : undefined;
      if (type !== WATCH_MESSAGE.resume && type !== WATCH_MESSAGE.ping)
        return this.#error('unknown-type', typeof type === 'string' ? type.slice(0, 64) : undefined);
      const first = [...clientMessage.Errors(value)][0];
      return this.#error('invalid-message', first ? `${first.instancePath || '/'} ${first.message}` : undefined);
    }
    if (value.type === WATCH_MESSAGE.ping) return this.#send(JSON.stringify({ type: WATCH_MESSAGE.pong }));
    this.#hub.resume(this, value.epoch === undefined ? { rev: value.rev } : { epoch: value.epoch, rev: value.rev });
  }

  #ping(): void {
    if (!this.#alive) {
      this.#log.info({ address: this.address }, 'WebSocket subscriber did not answer ping; dropping it');
      this.close(WS_CLOSE.noPong, 'no pong');
      this.#socket.terminate();
      return;
    }
    this.#alive = false;
    this.#socket.ping();
  }

  #cleanup(): void {
    this.#closed = true;
    clearInterval(this.#pingTimer);
    this.#hub.remove(this);
  }
}

export async function watchRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  // Not `websocket: true`: that hides the route from the OpenAPI document; `wsHandler` keeps it listed.
  fastify.route({
    method: 'GET',
    url: '/v1/watch',
    schema: {
      tags: ['watch'],
      summary: 'Watch changes over a WebSocket',
      description: [
        'Connect with `Upgrade: websocket`. The first message is `{type:"snapshot", epoch, rev, providers}`, then',
        '`{type:"event", epoch, rev, change, service, provider, at}` per change in revision order. With `rev` (and',
        '`epoch`) in the query, or a `{type:"resume", epoch, rev}` message, the gateway answers `{type:"resumed"}` and',
        'the events after `rev` when it still holds them, else a new snapshot. `{type:"ping"}` is answered with',
        '`{type:"pong"}`; bad messages get `{type:"error", code, message}` and the connection stays open. Close',
        'codes: 4008 too slow (resume), 4029 too many connections, 1001 gateway shutting down; with ACLs on, 4401',
        'when the token is deleted and 4403 when it no longer reads any service watched (the reason is',
        '`{"code","message"}` JSON); a token narrowed otherwise only stops the events it no longer reads.',
      ].join(' '),
      querystring: WatchQuery,
      response: errorResponses(400, 401, 403, 503),
    },
    preHandler: async (request: FastifyRequest) => {
      // A service named in the filter must be readable; without a filter the stream is narrowed to what is.
      ctx.acl.requireStream(request, (request.query as WatchQuery).service);
      const refusal = ctx.hub.refusal(clientKey(request.ip));
      if (refusal) throw httpError('SB_BUSY', refusal);
    },
    handler: async () => {
      throw httpError(
        'SB_BAD_REQUEST',
        'GET /v1/watch is a WebSocket endpoint: connect with Upgrade: websocket (or use GET /v1/events for SSE)',
      );
    },
    wsHandler: (socket: WebSocket, request: FastifyRequest) => {
      const query = request.query as WatchQuery;
      const services = query.service?.length ? new Set(query.service) : null;
      const access = ctx.acl.streamAccess(request);
      const watcher = new WsWatcher(socket, clientKey(request.ip), services, access, ctx.hub, ctx.push, request.log);
      const from =
        query.rev === undefined
          ? 'snapshot'
          : { resume: query.epoch === undefined ? { rev: query.rev } : { epoch: query.epoch, rev: query.rev } };
      // The limit was checked before the upgrade; another connection may have taken the last slot since.
      if (!ctx.hub.add(watcher, from)) watcher.close(WS_CLOSE.tooMany, 'too many connections; retry later');
    },
  } as never);
}

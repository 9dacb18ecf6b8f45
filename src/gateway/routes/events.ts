/**
 * `GET /v1/events`, Server-Sent Events: one SSE event per change, `id:` = rev, so `Last-Event-ID` (sent by
 * EventSource on reconnect) resumes exactly after the last event received. Comment lines keep proxies from
 * closing an idle stream. A client that reads too slowly is disconnected and resumes.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { RegistryEvent } from '../../bridge/index.ts';
import type { StreamAccess, StreamRevocation } from '../acl.ts';
import type { GatewayContext, PushSettings } from '../context.ts';
import { clientKey } from '../clients.ts';
import { httpError } from '../errors.ts';
import { errorResponses } from '../schemas.ts';
import type { EventHub, Outgoing, OutgoingEvents, Position, SnapshotBody, Transport, Watcher } from '../subscribers.ts';
import { EventsHeaders, EventsQuery } from '../subscribers-schemas.ts';

/** Reconnect delay suggested to EventSource clients. */
const RETRY_MS = 1000;
const CLOSE_GRACE_MS = 5000;
const STATUS_TEXT = { 401: 'Unauthorized', 403: 'Forbidden' } as const;

const encodeEvent = (e: RegistryEvent): string => `id: ${e.rev}\nevent: ${e.change}\ndata: ${JSON.stringify(e)}\n\n`;
const encodeSnapshot = (s: SnapshotBody): string => `id: ${s.rev}\nevent: snapshot\ndata: ${JSON.stringify(s)}\n\n`;

class SseWatcher implements Watcher {
  readonly transport: Transport = 'sse';
  readonly #res: ServerResponse;
  readonly #hub: EventHub;
  readonly #settings: PushSettings;
  readonly #log: FastifyBaseLogger;
  readonly #heartbeat: NodeJS.Timeout;
  #closed = false;
  #allowance = 0;

  constructor(
    res: ServerResponse,
    readonly address: string,
    readonly services: ReadonlySet<string> | null,
    readonly access: StreamAccess | null,
    hub: EventHub,
    settings: PushSettings,
    log: FastifyBaseLogger,
  ) {
    this.#res = res;
    this.#hub = hub;
    this.#settings = settings;
    this.#log = log;
    res.on('close', () => this.#cleanup());
    res.on('error', () => this.#cleanup());
    this.#heartbeat = setInterval(() => this.#write(`: heartbeat ${Date.now()}\n\n`), settings.sseHeartbeatMs);
  }

  snapshot(message: Outgoing<SnapshotBody>): void {
    const bytes = message.encoded('sse', encodeSnapshot);
    // One snapshot may exceed the budget; anything queued on top of it counts as lag.
    this.#allowance = bytes.length;
    this.#write(bytes);
  }

  events(message: OutgoingEvents): void {
    this.#write(message.encoded('sse', encodeEvent));
  }

  resumed(position: { epoch: string; rev: number }): void {
    this.#write(`: resumed after rev ${position.rev} (epoch ${position.epoch})\n\n`);
  }

  hello(position: { epoch: string; rev: number }): void {
    // Carries an id so an EventSource that reconnects before any change resumes from here.
    this.#write(`id: ${position.rev}\nevent: hello\ndata: ${JSON.stringify(position)}\n\n`);
  }

  shutdown(): void {
    this.#write(`event: shutdown\ndata: {"reason":"gateway shutting down; reconnect and resume"}\n\n`);
    this.#end();
  }

  revoke(why: StreamRevocation): void {
    // The error body of the HTTP API; EventSource then reconnects and is answered 401/403, and stops.
    const body = { statusCode: why.status, error: STATUS_TEXT[why.status], message: why.message, code: why.code };
    this.#write(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
    this.#end();
  }

  #write(text: string | Buffer): void {
    if (this.#closed) return;
    this.#res.write(text);
    if (this.#res.writableLength > this.#settings.clientBufferBytes + this.#allowance) {
      this.#log.warn(
        { address: this.address, buffered: this.#res.writableLength },
        'disconnecting slow SSE subscriber',
      );
      this.#hub.droppedSlow(this);
      this.#res.write(`event: overflow\ndata: {"reason":"slow consumer: reconnect and resume from your last id"}\n\n`);
      this.#end();
    }
  }

  #end(): void {
    this.#cleanup();
    this.#res.end();
    // A client that never reads would keep the buffered bytes; cut it off.
    setTimeout(() => this.#res.destroy(), CLOSE_GRACE_MS).unref();
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#hub.remove(this);
  }
}

export async function eventRoutes(fastify: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/v1/events',
    {
      schema: {
        tags: ['watch'],
        summary: 'Follow changes as Server-Sent Events',
        description: [
          'One SSE event per change: `id:` is the revision, `event:` the change (registered, updated, up, down,',
          'maintenance, deregistered), `data:` the event JSON. Without `since` the stream starts with',
          '`event: hello` (`{epoch, rev}`); with `since` or `Last-Event-ID` it replays the events after that',
          'revision, or sends `event: snapshot` (`{epoch, rev, providers}`) when they are no longer held. A',
          'snapshot is also sent whenever the gateway resyncs. Comment lines every 15 s keep the stream open.',
          'With ACLs on, a stream whose token is deleted, or no longer reads any service it watches, ends with',
          '`event: error` (data: the 401/403 JSON error body); a token narrowed otherwise only stops the events',
          'it no longer reads.',
        ].join(' '),
        querystring: EventsQuery,
        headers: EventsHeaders,
        produces: ['text/event-stream'],
        response: {
          200: Type.String({ description: 'text/event-stream' }),
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request, reply) => {
      const { service, epoch, since } = request.query;
      // A service named in the filter must be readable; without a filter the stream is narrowed to what is.
      ctx.acl.requireStream(request, service);
      const refusal = ctx.hub.refusal(clientKey(request.ip));
      if (refusal) throw httpError('SB_BUSY', refusal);
      const lastId = request.headers['last-event-id'];
      // Last-Event-ID is what EventSource sends on reconnect, so it is newer than a `since` left in the URL.
      const rev = lastId !== undefined ? Number(lastId) : since;
      const from: Position | undefined = rev === undefined ? undefined : epoch === undefined ? { rev } : { epoch, rev };

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // nginx buffers responses unless told not to.
        'x-accel-buffering': 'no',
        'x-switchboard-index': String(ctx.follower.replica.rev),
      });
      res.write(`retry: ${RETRY_MS}\n\n`);
      const services = service?.length ? new Set(service) : null;
      const access = ctx.acl.streamAccess(request);
      const watcher = new SseWatcher(res, clientKey(request.ip), services, access, ctx.hub, ctx.push, request.log);
      if (!ctx.hub.add(watcher, from ? { resume: from } : 'live')) {
        res.end(`event: refused\ndata: {"reason":"too many subscriptions; retry later"}\n\n`);
      }
    },
  );
}

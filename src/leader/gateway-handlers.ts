/**
 * Handlers of gateway requests (each carries a `reqId`; the reply carries the same one). Writes are answered
 * only once durable (`registry.committed()`); a refusal is a `nack` with a public error code.
 */
import { LeaderError, type BatchableType, type Provider, type ToFollower } from '../bridge/index.ts';
import { BatchAnswers, type WriteAnswer } from './batch-answers.ts';
import type { Handlers, LeaderMessageType, LeaderMessages, LeaderParts } from './handlers.ts';
import { SnapshotReplies } from './snapshot-replies.ts';

export type GatewayRequestType = Exclude<
  LeaderMessageType,
  'worker.hello' | 'worker.ping' | 'presence' | 'acl.get' | 'acl.write'
>;

/** Where a request's answer goes: straight to its sender, or into its batch's answers. */
type Respond = (reply: WriteAnswer) => void;
/** The writes, each answered through a `Respond`, so they serve a single request and a batch alike. */
type Writes = { [T in BatchableType]: (respond: Respond, message: LeaderMessages[T]) => void };

/** A reply as a handler writes it; `answer` adds the request's reqId. */
export type ReplyBody = ToFollower extends infer M ? (M extends { reqId: number } ? Omit<M, 'reqId'> : never) : never;
type Nack = Extract<ToFollower, { type: 'nack' }>;

/** Runs `work` (its synchronous part at once) and responds with its result, or a nack. Never rejects. */
function answerWith<R extends ReplyBody>(
  log: LeaderParts['log'],
  respond: (reply: (R & { reqId: number }) | Nack) => void,
  reqId: number,
  work: () => Promise<R>,
): void {
  void (async () => {
    try {
      const reply = await work();
      respond({ ...reply, reqId });
    } catch (err) {
      if (err instanceof LeaderError) {
        respond({ type: 'nack', reqId, statusCode: err.statusCode, code: err.code, message: err.message });
      } else {
        log.error({ err }, 'request failed');
        respond({
          type: 'nack',
          reqId,
          statusCode: 503,
          code: 'SB_LEADER_FAILED',
          message: 'the leader could not complete the request',
        });
      }
    }
  })();
}

/** Runs a request's `work` (its synchronous part at once) and replies with its result, or a nack. Never rejects. */
export type Answer = (routing: Buffer, reqId: number, work: () => Promise<ReplyBody>) => void;

/** The `answer` of a handler table: replies with what `work` resolves to, or a nack (a LeaderError's code). */
export function answerer(parts: Pick<LeaderParts, 'control' | 'log'>): Answer {
  return (routing, reqId, work) => answerWith(parts.log, (reply) => parts.control.reply(routing, reply), reqId, work);
}

export function gatewayHandlers(parts: LeaderParts): Handlers<GatewayRequestType> {
  const { registry, assignment, presence, control, session, acl } = parts;
  // One encoding per revision, shared by every requester; how many are built per second is bounded.
  const snapshots = new SnapshotReplies({ registry, control, metrics: parts.metrics, log: parts.log });
  parts.metrics.counter('switchboard_write_batches_total', 'Batch frames of writes received from gateways');
  parts.metrics.counter(
    'switchboard_batched_writes_total',
    'Writes that came in batch frames (batched writes / batches = batch size)',
  );

  const mustGet = (id: string): Provider => {
    const p = registry.get(id);
    if (!p) throw new LeaderError(404, 'SB_PROVIDER_NOT_FOUND', `provider '${id}' is not registered`);
    return p;
  };

  const answer = answerer(parts);
  const answerWrite = <R extends ReplyBody>(
    respond: (reply: (R & { reqId: number }) | Nack) => void,
    reqId: number,
    work: () => Promise<R>,
  ): void => answerWith(parts.log, respond, reqId, work);
  type Ack = Extract<ReplyBody, { type: 'ack' }>;

  const writes: Writes = {
    put: (respond, m) =>
      answerWrite<Ack>(respond, m.reqId, async () => {
        registry.assertWritable();
        const previous = m.id ? registry.get(m.id) : undefined;
        const owner = m.owner === undefined ? undefined : { owner: m.owner, maxProviders: acl.maxProviders(m.owner) };
        const result = registry.put(m.id, m.input, Date.now(), owner);
        if (result.changed) assignment.retask(previous, result.provider);
        await registry.committed();
        return { type: 'ack', status: result.status, rev: result.provider.rev, provider: result.provider };
      }),

    delete: (respond, m) =>
      answerWrite<Ack>(respond, m.reqId, async () => {
        registry.assertWritable();
        const removed = registry.remove(m.id);
        parts.forget(removed);
        await registry.committed();
        return { type: 'ack', status: 204, rev: removed.rev };
      }),

    maintenance: (respond, m) =>
      answerWrite<Ack>(respond, m.reqId, async () => {
        registry.assertWritable();
        const provider = mustGet(m.id);
        const now = Date.now();
        const updated = m.enabled
          ? presence.enterMaintenance(provider, m.reason, now)
          : presence.leaveMaintenance(provider, now);
        await registry.committed();
        const current = updated ?? mustGet(m.id);
        return { type: 'ack', status: 200, rev: current.rev, provider: current };
      }),

    ttl: (respond, m) =>
      answerWrite<Ack>(respond, m.reqId, async () => {
        const provider = mustGet(m.id);
        if (provider.check?.type !== 'ttl') {
          throw new LeaderError(409, 'SB_NOT_TTL_CHECK', `provider '${m.id}' does not have a ttl check`);
        }
        const owner = assignment.ownerRouting(m.id);
        if (!owner) throw new LeaderError(503, 'SB_NO_WORKER', `no worker watches provider '${m.id}' yet`);
        control.reply(owner, { type: 'ttl.pass', id: m.id, at: Date.now() });
        return { type: 'ack', status: 204, rev: provider.rev };
      }),
  };
  const direct =
    (routing: Buffer): Respond =>
    (reply) =>
      control.reply(routing, reply);
  // One request of a batch, typed by its own `type` (as dispatch does for the handler table).
  const runWrite = <K extends BatchableType>(respond: Respond, m: LeaderMessages[K] & { type: K }): void => {
    const write: Writes[K] = writes[m.type];
    write(respond, m);
  };

  return {
    ping: (routing, m) =>
      control.reply(routing, {
        type: 'pong',
        reqId: m.reqId,
        session,
        epoch: registry.epoch,
        rev: registry.committedRev,
        events: parts.eventsEndpoint(),
        guard: presence.guardStatus(),
        control: parts.controlEndpoint(),
        store: registry.storeHealth(),
        aclVersion: acl.version,
      }),

    metrics: (routing, m) =>
      void parts.metrics.render().then(
        (text) => control.reply(routing, { type: 'metrics.reply', reqId: m.reqId, text }),
        (err: unknown) => parts.log.error({ err }, 'metrics render failed'),
      ),

    cluster: (routing, m) =>
      answer(routing, m.reqId, async () => {
        const view = await parts.cluster();
        return {
          type: 'cluster.reply',
          session,
          epoch: registry.epoch,
          rev: registry.committedRev,
          providers: registry.size,
          workers: assignment.workerStatus(Date.now()),
          unassigned: assignment.unassigned,
          ...view,
        };
      }),

    'guard.release': (routing, m) =>
      answer(routing, m.reqId, async () => {
        registry.assertWritable();
        presence.releaseGuard();
        await registry.committed();
        return { type: 'ack', status: 200, rev: registry.committedRev };
      }),

    snapshot: (routing, m) => snapshots.request(routing, m.reqId, m.chunk),

    since: (routing, m) => {
      const events = m.epoch === registry.epoch ? registry.since(m.since) : undefined;
      control.reply(routing, {
        type: 'since.reply',
        reqId: m.reqId,
        complete: events !== undefined,
        events: events ?? [],
      });
    },

    put: (routing, m) => writes.put(direct(routing), m),
    delete: (routing, m) => writes.delete(direct(routing), m),
    maintenance: (routing, m) => writes.maintenance(direct(routing), m),
    ttl: (routing, m) => writes.ttl(direct(routing), m),

    // Each write of the batch as if it came alone (so it commits with the same group commit); the answers go
    // back together (batch-answers.ts).
    batch: (routing, m) => {
      parts.metrics.inc('switchboard_write_batches_total');
      parts.metrics.inc('switchboard_batched_writes_total', undefined, m.requests.length);
      const answers = new BatchAnswers((frame) => control.replyEncoded(routing, frame), m.requests.length);
      for (const request of m.requests) runWrite(answers.answer, request);
    },
  };
}

/**
 * Handlers of gateway requests (each carries a `reqId`; the reply carries the same one). Writes are answered
 * only once durable (`registry.committed()`); a refusal is a `nack` with a public error code.
 */
import { LeaderError, type Provider, type ToFollower } from '../bridge/index.ts';
import type { Handlers, LeaderMessageType, LeaderParts } from './handlers.ts';
import { SnapshotReplies } from './snapshot-replies.ts';

export type GatewayRequestType = Exclude<
  LeaderMessageType,
  'worker.hello' | 'worker.ping' | 'presence' | 'acl.get' | 'acl.write'
>;

/** A reply as a handler writes it; `answer` adds the request's reqId. */
export type ReplyBody = ToFollower extends infer M ? (M extends unknown ? Omit<M, 'reqId'> : never) : never;

/** Runs a request's `work` (its synchronous part at once) and replies with its result, or a nack. Never rejects. */
export type Answer = (routing: Buffer, reqId: number, work: () => Promise<ReplyBody>) => void;

/** The `answer` of a handler table: replies with what `work` resolves to, or a nack (a LeaderError's code). */
export function answerer(parts: Pick<LeaderParts, 'control' | 'log'>): Answer {
  const { control } = parts;
  return (routing, reqId, work) => {
    void (async () => {
      try {
        const reply = await work();
        control.reply(routing, { ...reply, reqId });
      } catch (err) {
        if (err instanceof LeaderError) {
          control.reply(routing, {
            type: 'nack',
            reqId,
            statusCode: err.statusCode,
            code: err.code,
            message: err.message,
          });
        } else {
          parts.log.error({ err }, 'request failed');
          control.reply(routing, {
            type: 'nack',
            reqId,
            statusCode: 503,
            code: 'SB_LEADER_FAILED',
            message: 'the leader could not complete the request',
          });
        }
      }
    })();
  };
}

export function gatewayHandlers(parts: LeaderParts): Handlers<GatewayRequestType> {
  const { registry, assignment, presence, control, session, acl } = parts;
  // One encoding per revision, shared by every requester; how many are built per second is bounded.
  const snapshots = new SnapshotReplies({ registry, control, metrics: parts.metrics, log: parts.log });

  const mustGet = (id: string): Provider => {
    const p = registry.get(id);
    if (!p) throw new LeaderError(404, 'SB_PROVIDER_NOT_FOUND', `provider '${id}' is not registered`);
    return p;
  };

  const answer = answerer(parts);

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

    snapshot: (routing, m) => snapshots.request(routing, m.reqId),

    since: (routing, m) => {
      const events = m.epoch === registry.epoch ? registry.since(m.since) : undefined;
      control.reply(routing, {
        type: 'since.reply',
        reqId: m.reqId,
        complete: events !== undefined,
        events: events ?? [],
      });
    },

    put: (routing, m) =>
      answer(routing, m.reqId, async () => {
        registry.assertWritable();
        const previous = m.id ? registry.get(m.id) : undefined;
        const owner = m.owner === undefined ? undefined : { owner: m.owner, maxProviders: acl.maxProviders(m.owner) };
        const result = registry.put(m.id, m.input, Date.now(), owner);
        if (result.changed) assignment.retask(previous, result.provider);
        await registry.committed();
        return { type: 'ack', status: result.status, rev: result.provider.rev, provider: result.provider };
      }),

    delete: (routing, m) =>
      answer(routing, m.reqId, async () => {
        registry.assertWritable();
        const removed = registry.remove(m.id);
        parts.forget(removed);
        await registry.committed();
        return { type: 'ack', status: 204, rev: removed.rev };
      }),

    maintenance: (routing, m) =>
      answer(routing, m.reqId, async () => {
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

    ttl: (routing, m) =>
      answer(routing, m.reqId, async () => {
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
}

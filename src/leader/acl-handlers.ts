/**
 * Handlers of `acl.get` (the whole ACL state) and `acl.write` (one token or policy change).
 *
 * ACL writes run one at a time, in arrival order: each op is checked against the state the previous one left
 * (acl-registry.ts), written in one store transaction, adopted, announced at once by a beacon (so followers fetch
 * it without waiting for the next periodic one), and only then acknowledged with the new `aclVersion`. A commit
 * whose outcome is unknown makes the next write read the stored ACL state back first.
 */
import { LeaderError } from '../bridge/index.ts';
import { answerer, type ReplyBody } from './gateway-handlers.ts';
import type { Handlers, LeaderMessages, LeaderParts } from './handlers.ts';
import { StoreError } from './store-api.ts';

/** ACL writes waiting for the ones before them; more are refused with SB_BUSY. */
export const MAX_ACL_WRITES_WAITING = 1000;

/** Store errors after which this process may not write any more. */
const FATAL = new Set(['STORE_FENCED', 'STORE_NOT_LEADER', 'STORE_CLOSED']);

export function aclHandlers(parts: LeaderParts): Handlers<'acl.get' | 'acl.write'> {
  const { acl, control, registry, store } = parts;
  const answer = answerer(parts);
  let queue: Promise<unknown> = Promise.resolve();
  let waiting = 0;
  /** The last commit's outcome is unknown (or the store's version was not ours): read the state back first. */
  let resync = false;

  const write = async (m: LeaderMessages['acl.write']): Promise<ReplyBody> => {
    registry.assertWritable();
    // One retry: a version conflict (a restore, or our own commit that landed unseen) is repaired by reading back.
    for (let attempt = 0; ; attempt++) {
      if (resync) {
        acl.replace(await readBack());
        resync = false;
      }
      const change = acl.plan(m.op);
      try {
        await store.commitAcl(change);
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        if (FATAL.has(err.code)) {
          parts.fenced(err);
          throw new LeaderError(503, 'SB_LEADER_UNAVAILABLE', `this leader stopped writing (${err.message})`);
        }
        resync = true;
        if (err.code === 'STORE_CONFLICT' && attempt === 0) continue;
        throw new LeaderError(
          503,
          'SB_STORE_UNAVAILABLE',
          `the leader could not write the ACL change (${err.message}); it may or may not have been applied`,
        );
      }
      acl.apply(change);
      parts.log.info({ op: m.op.op, aclVersion: change.version }, 'ACL change committed');
      parts.announceAcl();
      return { type: 'ack', status: 200, rev: registry.committedRev, aclVersion: change.version };
    }
  };

  const readBack = async () => {
    try {
      return await store.readAcl();
    } catch (err) {
      throw new LeaderError(
        503,
        'SB_STORE_UNAVAILABLE',
        `the leader cannot read its ACL state back from the store (${(err as Error).message})`,
      );
    }
  };

  return {
    'acl.get': (routing, m) => control.reply(routing, { type: 'acl.reply', reqId: m.reqId, state: acl.state() }),

    'acl.write': (routing, m) => {
      if (waiting >= MAX_ACL_WRITES_WAITING) {
        answer(routing, m.reqId, async () => {
          throw new LeaderError(503, 'SB_BUSY', `more than ${MAX_ACL_WRITES_WAITING} ACL writes are waiting`);
        });
        return;
      }
      waiting++;
      const done = queue.then(() => write(m)).finally(() => waiting--);
      queue = done.catch(() => undefined);
      answer(routing, m.reqId, () => done);
    },
  };
}

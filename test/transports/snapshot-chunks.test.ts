/**
 * A follower takes its snapshot in chunks over real ZeroMQ sockets:
 * - from a real leader while writes keep landing: the replica ends equal to the leader's registry;
 * - from a fake leader that sends a short sequence, a sequence with a gap and a malformed frame before a good one:
 *   each bad sequence is dropped, counted and asked again, and the replica only ever takes the whole good one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Publisher, Router } from 'zeromq';
import {
  createLogger,
  encodeRows,
  Follower,
  LeaderLink,
  Metrics,
  pack,
  snapshotChunkFrame,
  toFollower,
  toLeader,
  unpack,
  type Provider,
  type Reply,
} from '../../src/bridge/index.ts';
import { start as startLeader } from '../../src/leader/index.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';

const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const byId = (a: Provider, b: Provider): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function ok(reply: Reply): void {
  assert.ok(reply.type === 'ack', `acknowledged: ${JSON.stringify(reply).slice(0, 200)}`);
}

test('a snapshot in chunks taken during writes ends equal to the leader', async (t) => {
  const dir = tempDir();
  const leader = await startLeader({ dataDir: dir.path, bind: 'tcp://127.0.0.1:*', reassignGraceMs: 0 }, { log });
  const writer = new LeaderLink({
    endpoints: leader.control,
    validator: toFollower,
    name: 'writer',
    log,
    metrics: new Metrics(),
    maxMessageSize: 64 * 1024 * 1024,
  });
  t.after(async () => {
    await writer.close();
    await leader.close();
    dir.remove();
  });
  const put = (i: number, port: number): Promise<Reply> =>
    writer.request({
      type: 'put',
      id: `p-${i}`,
      input: {
        service: `svc-${i % 7}`,
        host: `10.0.${i >> 8}.${i & 255}`,
        port,
        protocol: 'http',
        tags: i % 2 ? ['blue'] : [],
        meta: { zone: `z${i % 3}` },
      },
    });
  const N = 1500;
  (await Promise.all(Array.from({ length: N }, (_, i) => put(i, 1000 + i)))).forEach(ok);

  // Writes go on, one turn after another, while the follower takes its snapshot in chunks of 50 (30 frames).
  let writing = true;
  let round = 0;
  const writes = (async () => {
    while (writing) {
      round++;
      const k = round % N;
      const replies = await Promise.all([
        put(k, 20_000 + round), // an update
        put(N + round, 1000), // a new provider
        // a removal (of the previous round's new provider)
        ...(round > 1 ? [writer.request({ type: 'delete', id: `p-${N + round - 1}` })] : []),
      ]);
      replies.forEach(ok);
    }
  })();
  const metrics = new Metrics();
  const follower = new Follower({ leader: leader.control, log, metrics, snapshotChunk: 50 });
  t.after(() => follower.close());
  let snapshotRev = 0;
  follower.replica.onReset((s) => (snapshotRev = s.rev));
  await waitFor(() => follower.replica.loaded, { what: 'the replica loaded', timeoutMs: 20_000 });
  const roundsAtLoad = round;
  await waitFor(() => round >= roundsAtLoad + 5, { what: 'writes after the snapshot' });
  writing = false;
  await writes;

  const last = leader.status().rev;
  assert.ok(snapshotRev < last, 'writes landed after the snapshot revision');
  await waitFor(() => follower.replica.rev === last, { what: `the replica at revision ${last}` });
  const whole = await writer.request({ type: 'snapshot' }, 20_000);
  assert.equal(whole.type, 'snapshot.reply');
  assert.equal(whole.rev, last);
  assert.deepEqual([...follower.replica.providers()].sort(byId), [...whole.providers].sort(byId));
  for (const reason of ['order', 'revision', 'count', 'index'])
    assert.equal(await metrics.get('switchboard_replica_snapshots_refused_total', { reason }), 0, reason);
});

test('a short, gapped or malformed chunk sequence is dropped, counted and asked again, never half applied', async (t) => {
  const router = new Router({ linger: 0 });
  const pub = new Publisher({ linger: 0 });
  await router.bind('tcp://127.0.0.1:*');
  await pub.bind('tcp://127.0.0.1:*');
  const providers: Provider[] = Array.from({ length: 10 }, (_, i) => ({
    id: `p-${i}`,
    service: 'svc',
    host: '127.0.0.1',
    port: 9000 + i,
    protocol: 'http',
    tags: [],
    meta: {},
    state: 'up',
    stateSince: 1,
    registeredAt: 1,
    updatedAt: 1,
    rev: i + 1,
  }));
  const head = { epoch: 'e1', rev: 10, total: providers.length };
  const chunk = (reqId: number, seq: number, last: boolean, rows = encodeRows(providers, seq * 3, 3)) =>
    snapshotChunkFrame({ ...head, reqId, seq, last }, rows);
  let asked = 0;
  const served = (async () => {
    try {
      for await (const [routing, frame] of router) {
        const m = unpack(frame);
        if (!toLeader.Check(m)) continue;
        if (m.type === 'ping') {
          const pong = { type: 'pong', reqId: m.reqId, session: 's1', epoch: 'e1', rev: 10, events: pub.lastEndpoint };
          await router.send([routing, pack(pong)]);
        } else if (m.type === 'snapshot') {
          assert.equal(m.chunk, 3, 'the follower asks for its chunk size');
          asked++;
          const frames =
            asked === 1
              ? [chunk(m.reqId, 0, false), chunk(m.reqId, 1, true)] // last too early: 6 of 10
              : asked === 2
                ? [chunk(m.reqId, 0, false), chunk(m.reqId, 2, false)] // chunk 1 missing
                : asked === 3
                  ? [chunk(m.reqId, 0, false), Buffer.from([0xc1, 0x00]), chunk(m.reqId, 2, false)] // 1 malformed
                  : [0, 1, 2, 3].map((seq) => chunk(m.reqId, seq, seq === 3));
          for (const f of frames) await router.send([routing, f]);
        }
      }
    } catch {
      // closed
    }
  })();
  const metrics = new Metrics();
  const follower = new Follower({
    leader: router.lastEndpoint!,
    log,
    metrics,
    snapshotChunk: 3,
    pingIntervalMs: 100,
  });
  const resets: number[] = [];
  follower.replica.onReset(() => resets.push(asked));
  t.after(async () => {
    await follower.close();
    router.close();
    pub.close();
    await served;
  });
  await waitFor(() => follower.replica.loaded, { what: 'the replica loaded', timeoutMs: 15_000 });
  assert.deepEqual(resets, [4], 'the replica took only the fourth, whole, sequence');
  assert.deepEqual([...follower.replica.providers()].sort(byId), providers);
  assert.equal(await metrics.get('switchboard_replica_snapshots_refused_total', { reason: 'count' }), 1);
  assert.equal(await metrics.get('switchboard_replica_snapshots_refused_total', { reason: 'order' }), 2);
  assert.equal(
    await metrics.get('switchboard_frames_dropped_total', { socket: 'follower-dealer', reason: 'malformed' }),
    1,
  );
});

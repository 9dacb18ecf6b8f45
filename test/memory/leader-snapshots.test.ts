/**
 * Snapshot requests straight to a real leader process's ROUTER: a peer that asks many times and never reads must
 * not make the leader copy the registry once per request, and a peer that reads gets a valid reply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dealer } from 'zeromq';
import { pack, toFollower, unpack } from '../../src/bridge/index.ts';
import { startLeaderProcess } from '../../harness/process.ts';
import { rssMiB as processRss } from '../../harness/memory.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';

const MiB = 1024 * 1024;
const PROVIDERS = 2000;
const REQUESTS = 100;

/** The process's resident memory, 0 once it has exited. */
const rssMiB = (pid: number): number => processRss(pid) ?? 0;

/** A DEALER that sends requests and collects every reply by reqId. */
function client(endpoint: string) {
  const dealer = new Dealer({ linger: 0, maxMessageSize: 512 * MiB });
  dealer.connect(endpoint);
  const replies = new Map<number, Record<string, unknown>>();
  const loop = (async () => {
    try {
      for await (const [frame] of dealer) {
        const reply = unpack(frame) as Record<string, unknown>;
        assert.ok(toFollower.Check(reply), `a valid reply: ${JSON.stringify(reply).slice(0, 200)}`);
        assert.ok('reqId' in reply, 'one request at a time: no batch replies here');
        replies.set(reply.reqId, reply);
      }
    } catch {
      // closed
    }
  })();
  return {
    replies,
    send: (m: object) => dealer.send(pack(m)),
    reply: (reqId: number) =>
      waitFor(() => replies.get(reqId), { timeoutMs: 20_000, what: `the reply to request ${reqId}` }),
    async close() {
      dealer.close();
      await loop;
    },
  };
}

test(`${REQUESTS} snapshot requests never read: the leader shares one encoding and paces the copies`, async (t) => {
  const dir = tempDir();
  const leader = await startLeaderProcess(dir.path);
  t.after(async () => {
    await leader.child.stop();
    dir.remove();
  });
  const writer = client(leader.control);
  t.after(() => writer.close());
  // ~8 MB of registry: providers with 4 KB of meta each.
  const meta = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`key${i}`, 'v'.repeat(500)]));
  for (let i = 0; i < PROVIDERS; i++) {
    await writer.send({
      type: 'put',
      reqId: i + 1,
      id: `p-${i}`,
      input: { service: `svc-${i % 10}`, host: '10.0.0.1', port: 1000 + i, protocol: 'http', meta },
    });
  }
  const last = await writer.reply(PROVIDERS);
  assert.equal(last.type, 'ack');

  // A reader gets a whole, valid snapshot with its own reqId.
  await writer.send({ type: 'snapshot', reqId: 100_000 });
  const snapshot = await writer.reply(100_000);
  assert.equal(snapshot.type, 'snapshot.reply');
  assert.equal((snapshot.providers as unknown[]).length, PROVIDERS);
  const size = pack(snapshot).length / MiB;

  // A peer that asks REQUESTS times and reads nothing.
  const greedy = new Dealer({ linger: 0, receiveHighWaterMark: 1 });
  t.after(() => greedy.close());
  greedy.connect(leader.control);
  const before = rssMiB(leader.child.pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(leader.child.pid))), 50);
  t.after(() => clearInterval(sampler));
  for (let i = 0; i < REQUESTS; i++) await greedy.send(pack({ type: 'snapshot', reqId: i + 1 }));
  // Keep asking for a while: the leader may send it one snapshot per revision per second, no more.
  const until = Date.now() + 3000;
  for (let i = REQUESTS; Date.now() < until; i++) {
    await greedy.send(pack({ type: 'snapshot', reqId: i + 1 }));
    await new Promise((r) => setTimeout(r, 100));
  }
  clearInterval(sampler);
  peak = Math.max(peak, rssMiB(leader.child.pid));
  assert.ok(leader.child.alive(), `the leader died: ${leader.child.stderrTail()}`);

  // Another reader still gets its snapshot (possibly after an SB_BUSY, which followers retry).
  await writer.send({ type: 'metrics', reqId: 200_000 });
  const text = ((await writer.reply(200_000)).text as string).split('\n');
  const value = (prefix: string): number =>
    Number(
      text
        .find((l) => l.startsWith(prefix))
        ?.split(' ')
        .at(-1) ?? 0,
    );
  const sent = value('switchboard_leader_snapshots_total{outcome="sent"}');
  const busy = value('switchboard_leader_snapshots_total{outcome="busy"}');
  const encodings = value('switchboard_leader_snapshot_encodings_total');
  const grown = peak - before;
  t.diagnostic(
    `leader RSS ${before.toFixed(0)} → peak ${peak.toFixed(0)} MiB (+${grown.toFixed(0)}) for ${REQUESTS}+ unread ` +
      `requests of a ${size.toFixed(1)} MiB snapshot; sent ${sent}, refused busy ${busy}, encodings ${encodings}`,
  );
  assert.ok(grown < 6 * size + 40, `grew ${grown.toFixed(0)} MiB (the snapshot is ${size.toFixed(1)} MiB)`);
  assert.ok(busy > REQUESTS / 2, `most requests were refused (busy ${busy})`);
  assert.equal(encodings, 1, 'one encoding: the registry did not change');
});

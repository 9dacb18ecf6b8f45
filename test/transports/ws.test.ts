/**
 * WebSocket `GET /v1/watch` with a real `ws` client over real HTTP, through a real leader. The transport's own
 * limits (per-address cap, slow consumers) are in test/gateway/push.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/bridge/index.ts';
import { start as startLeader } from '../../src/leader/index.ts';
import { startCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';
import { assertContiguous, connectSse, connectWs, register, revs } from '../../harness/clients.ts';

test('snapshot first, then one event per change in revision order; filters; bad messages keep the connection', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  await register(c.url, 'b1', 'billing', 9001);
  const r0 = await register(c.url, 'o1', 'orders', 9101);

  const all = await connectWs(c.url);
  const billing = await connectWs(c.url, '?service=billing');
  t.after(() => all.close());
  t.after(() => billing.close());
  const snap = await all.next((m) => m.type === 'snapshot');
  assert.equal(all.messages[0], snap, 'the first message is the snapshot');
  assert.equal(snap.rev, r0);
  assert.equal(snap.epoch, c.leader.epoch);
  assert.deepEqual(snap.providers.map((p: any) => p.id).sort(), ['b1', 'o1']);
  const bsnap = await billing.next((m) => m.type === 'snapshot');
  assert.deepEqual(
    bsnap.providers.map((p: any) => p.id),
    ['b1'],
  );

  const r1 = await register(c.url, 'o2', 'orders', 9102);
  const r2 = await register(c.url, 'b2', 'billing', 9002);
  const r3 = (await http('DELETE', `${c.url}/v1/providers/b1`), r2 + 1);
  const last = await all.next((m) => m.type === 'event' && m.rev === r3);
  assert.equal(last.change, 'deregistered');
  assert.equal(last.provider.id, 'b1');
  assertContiguous(revs(all.messages), r1, r3);
  const ev = all.messages.find((m) => m.rev === r1);
  assert.deepEqual(Object.keys(ev).sort(), ['at', 'change', 'epoch', 'prev', 'provider', 'rev', 'service', 'type']);
  assert.equal(ev.change, 'registered');
  await billing.next((m) => m.type === 'event' && m.rev === r3);
  assert.deepEqual(revs(billing.messages), [r2, r3], 'the filtered client sees only billing changes');

  // Bad input: an error message back, and the connection keeps working.
  all.send('{not json');
  all.send({ type: 'subscribe' });
  all.send({ type: 'resume', rev: -1 });
  all.send({ type: 'ping' });
  await all.next((m) => m.type === 'pong');
  const errors = all.messages.filter((m) => m.type === 'error').map((m) => m.code);
  assert.deepEqual(errors, ['bad-json', 'unknown-type', 'invalid-message']);
  const r4 = await register(c.url, 'b3', 'billing', 9003);
  await all.next((m) => m.type === 'event' && m.rev === r4);

  // An invalid filter is refused before the upgrade (every refusal is in test/gateway/routes.test.ts).
  await assert.rejects(connectWs(c.url, '?service=Not%20A%20Name'), /HTTP 400/);
});

test('resume: the events after rev from history, else a fresh snapshot (old rev, other epoch)', async (t) => {
  const c = await startCluster({ workers: 0, gateway: { historySize: 5 } });
  t.after(() => c.close());
  const epoch = c.leader.epoch;
  const r0 = await register(c.url, 'p0', 'billing', 9000);
  for (let i = 1; i <= 3; i++) await register(c.url, `p${i}`, 'billing', 9000 + i);
  const r3 = r0 + 3;

  // Resume on connect (query parameters).
  const a = await connectWs(c.url, `?epoch=${epoch}&rev=${r0}`);
  t.after(() => a.close());
  await a.next((m) => m.type === 'event' && m.rev === r3);
  assert.deepEqual(a.messages[0], { type: 'resumed', epoch, rev: r0 });
  assertContiguous(revs(a.messages), r0 + 1, r3);
  assert.equal(a.messages.filter((m) => m.type === 'snapshot').length, 0);

  // Resume by message on an open connection.
  const b = await connectWs(c.url, '?service=billing');
  t.after(() => b.close());
  await b.next((m) => m.type === 'snapshot');
  b.send({ type: 'resume', epoch, rev: r0 + 1 });
  await b.next((m) => m.type === 'resumed');
  await waitFor(() => revs(b.messages).length === 2, { what: 'replayed events' });
  assert.deepEqual(revs(b.messages), [r0 + 2, r3]);

  // Past the history (5 events), and from another epoch: a snapshot instead.
  for (let i = 4; i <= 9; i++) await register(c.url, `p${i}`, 'billing', 9000 + i);
  const old = await connectWs(c.url, `?epoch=${epoch}&rev=${r0}`);
  t.after(() => old.close());
  const s = await old.next((m) => m.type === 'snapshot');
  assert.equal(s.rev, r0 + 9);
  assert.equal(s.providers.length, 10);
  const other = await connectWs(c.url, `?epoch=ffffffffffffffff&rev=${r0 + 8}`);
  t.after(() => other.close());
  assert.equal((await other.next((m) => m.type === 'snapshot')).rev, r0 + 9);
  // Within the history it still resumes.
  const near = await connectWs(c.url, `?epoch=${epoch}&rev=${r0 + 6}`);
  t.after(() => near.close());
  await near.next((m) => m.type === 'event' && m.rev === r0 + 9);
  assert.equal(near.messages[0].type, 'resumed');
});

test('a replica reset (leader replaced by a new store) sends every subscriber a new snapshot', async (t) => {
  const c = await startCluster({ workers: 0 });
  let replacement: Awaited<ReturnType<typeof startLeader>> | null = null;
  const dir = tempDir();
  t.after(async () => {
    await c.gateway.close();
    await replacement?.close();
    dir.remove();
    await c.close();
  });
  await register(c.url, 'p1', 'billing', 9001);
  const ws = await connectWs(c.url);
  const sse = await connectSse(c.url, '/v1/events');
  t.after(() => ws.close());
  t.after(() => sse.close());
  const first = await ws.next((m) => m.type === 'snapshot');
  // A blocking query on a service the new store does not have must answer at the reset, not at its timeout.
  const index = (await http('GET', `${c.url}/v1/services/billing`)).headers.get('x-switchboard-index');
  const blocked = http('GET', `${c.url}/v1/services/billing?index=${index}&wait=30s`);
  await c.leader.close();
  replacement = await startLeader(
    { dataDir: dir.path, bind: c.leader.control, publish: c.leader.events, reassignGraceMs: 0 },
    { log: createLogger({ level: 'warn' }) },
  );
  const second = await ws.next((m) => m.type === 'snapshot' && m.epoch !== first.epoch, 'snapshot of the new epoch');
  assert.equal(second.epoch, replacement.epoch);
  assert.deepEqual(second.providers, []);
  const s = await sse.next((m) => m.event === 'snapshot', 'SSE snapshot after reset');
  assert.equal(s.data.epoch, replacement.epoch);
  const answered = await blocked;
  assert.equal(answered.headers.get('x-switchboard-index'), '0');
  assert.deepEqual(answered.body.providers, []);
});

/**
 * Server-Sent Events `GET /v1/events` over a real HTTP connection (fetch), read as EventSource would, through a real
 * leader. Slow consumers and shutdown are in test/gateway/push.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from '../../harness/cluster.ts';
import { connectSse, register } from '../../harness/clients.ts';

const changeRevs = (messages: Array<{ id?: string; event?: string }>): number[] =>
  messages.filter((m) => m.id !== undefined && m.event !== 'hello' && m.event !== 'snapshot').map((m) => Number(m.id));

test('SSE: hello, then one event per change with id = rev; filters; Last-Event-ID resumes; heartbeats', async (t) => {
  const c = await startCluster({ workers: 0, gateway: { sseHeartbeatMs: 100, historySize: 100 } });
  t.after(() => c.close());
  const r0 = await register(c.url, 'b1', 'billing', 9001);

  const all = await connectSse(c.url, '/v1/events');
  const billing = await connectSse(c.url, '/v1/events?service=billing');
  t.after(() => all.close());
  t.after(() => billing.close());
  assert.equal(all.status, 200);
  assert.match(all.headers.get('content-type')!, /^text\/event-stream/);
  const hello = await all.next((m) => m.event === 'hello');
  assert.equal(hello.id, String(r0));
  assert.deepEqual(hello.data, { epoch: c.leader.epoch, rev: r0 });

  const r1 = await register(c.url, 'o1', 'orders', 9101);
  const r2 = await register(c.url, 'b2', 'billing', 9002);
  const ev = await all.next((m) => m.id === String(r2));
  assert.equal(ev.event, 'registered');
  assert.equal(ev.data.rev, r2);
  assert.equal(ev.data.provider.id, 'b2');
  assert.deepEqual(changeRevs(all.messages), [r1, r2]);
  await billing.next((m) => m.id === String(r2));
  assert.deepEqual(changeRevs(billing.messages), [r2]);
  await all.next((m) => m.comment?.startsWith('heartbeat') === true, 'a heartbeat comment');

  // Reconnect with Last-Event-ID: exactly the events after it.
  all.close();
  const r3 = await register(c.url, 'b3', 'billing', 9003);
  const resumed = await connectSse(c.url, '/v1/events', { 'last-event-id': String(r1) });
  t.after(() => resumed.close());
  await resumed.next((m) => m.id === String(r3));
  assert.deepEqual(changeRevs(resumed.messages), [r2, r3]);
  assert.equal(resumed.messages.filter((m) => m.event === 'snapshot' || m.event === 'hello').length, 0);

  // ?since= does the same; from another epoch it sends a snapshot.
  const since = await connectSse(c.url, `/v1/events?since=${r0}&service=billing`);
  t.after(() => since.close());
  await since.next((m) => m.id === String(r3));
  assert.deepEqual(changeRevs(since.messages), [r2, r3]);
  const other = await connectSse(c.url, `/v1/events?since=${r0}&epoch=ffff`);
  t.after(() => other.close());
  const snap = await other.next((m) => m.event === 'snapshot');
  assert.equal(snap.id, String(r3));
  assert.equal(snap.data.providers.length, 4);
});

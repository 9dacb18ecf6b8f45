/**
 * The push transports' own limits over real HTTP connections (WebSocket, SSE): per-address caps, slow consumers
 * dropped while fast ones get every event, open streams closed on shutdown. The gateway runs without a leader and its
 * changes are applied to the replica directly (test/helpers/gateway-app.ts): the limits are the gateway's alone,
 * and thousands of large changes cost no leader commits. Events through a real leader are in test/transports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { assertContiguous, connectSse, connectWs, revs } from '../../harness/clients.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.ts';
import { providerRecord } from '../helpers/records.ts';

/** Big provider records (~24 KB each) fill the socket buffers in a few hundred changes. */
const meta = Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`k${i}`, 'x'.repeat(500)]));

/** Publishes large changes, one per turn of the event loop (so fast readers keep up), until `done()`. */
async function floodUntil(g: GatewayApp, done: () => Promise<boolean>, max = 4000): Promise<number> {
  let last = g.replica.rev;
  for (let i = 0; i < max && !(await done()); i++) {
    last = g.publish('registered', providerRecord(`p${i}`, 0, { port: 10_000 + (i % 50_000), meta })).rev;
    await new Promise((r) => setImmediate(r));
  }
  return last;
}

const droppedMetric = async (g: GatewayApp, transport: 'ws' | 'sse'): Promise<boolean> =>
  new RegExp(`switchboard_watchers_dropped_total\\{[^}]*transport="${transport}"[^}]*\\} 1`).test(
    await g.metrics.render(),
  );

test('per-address connection cap: refused clearly, a slot frees on close', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] }, context: { maxWatchersPerAddress: 2 } });
  t.after(() => g.close());
  const url = await g.listen();
  const a = await connectWs(url);
  const b = await connectSse(url, '/v1/events');
  t.after(() => b.close());
  await assert.rejects(connectWs(url), /HTTP 503/);
  const refused = await http('GET', `${url}/v1/events`);
  assert.equal(refused.status, 503);
  assert.equal(refused.body.code, 'SB_BUSY');
  assert.match(refused.body.message, /too many subscriptions from/);
  await a.close();
  await waitFor(async () => (await g.metrics.render()).includes('switchboard_watchers{transport="ws"} 0'), {
    what: 'slot freed',
  });
  const again = await connectWs(url);
  await again.close();
});

test('WebSocket: a slow client is closed with 4008 while a fast one receives every event', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] }, context: { clientBufferBytes: 64 * 1024 } });
  t.after(() => g.close());
  const url = await g.listen();
  const fast = await connectWs(url);
  const slow = await connectWs(url);
  t.after(() => fast.close());
  t.after(() => slow.close());
  const start = (await fast.next((m) => m.type === 'snapshot')).rev;
  await slow.next((m) => m.type === 'snapshot');
  // Stop reading: the kernel buffers fill, then the gateway's per-client buffer does.
  slow.ws.pause();
  await floodUntil(g, () => droppedMetric(g, 'ws'));
  assert.ok(await droppedMetric(g, 'ws'), 'the slow client was dropped');
  let last = 0;
  for (let i = 0; i < 20; i++) last = g.publish('registered', providerRecord(`q${i}`, 0, { port: 20_000 + i })).rev;
  await fast.next((m) => m.type === 'event' && m.rev === last, 'fast client caught up', 20_000);
  assertContiguous(revs(fast.messages), start + 1, last);
  assert.equal(fast.ws.readyState, fast.ws.OPEN);
  slow.ws.resume();
  const closed = await slow.closed;
  assert.equal(closed.code, 4008);
  assert.match(closed.reason, /slow consumer/);
});

test('SSE: a client that stops reading is disconnected; the gateway closes open streams on shutdown', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] }, context: { clientBufferBytes: 64 * 1024 } });
  t.after(() => g.close());
  const url = await g.listen();
  // A raw HTTP client that never reads its response.
  const target = new URL(`${url}/v1/events`);
  const req = request({ host: target.hostname, port: target.port, path: target.pathname });
  const response = new Promise<IncomingMessage>((resolve) => req.once('response', resolve));
  req.on('error', () => {});
  req.end();
  const res = await response;
  res.pause();
  res.on('error', () => {});
  const fast = await connectSse(url, '/v1/events');
  t.after(() => fast.close());
  await fast.next((m) => m.event === 'hello');
  const last = await floodUntil(g, () => droppedMetric(g, 'sse'));
  assert.ok(await droppedMetric(g, 'sse'), 'the slow SSE client was dropped');
  await fast.next((m) => m.id === String(last), 'fast client got the last event', 20_000);
  res.destroy();
  await g.close();
  await fast.ended;
  assert.equal(fast.messages.at(-1)?.event, 'shutdown');
});

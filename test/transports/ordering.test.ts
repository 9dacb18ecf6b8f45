/** One ordering test across every transport: a burst of 1,000 changes, each subscriber sees every rev once, in order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../../harness/cluster.ts';
import { spawnTs } from '../../harness/process.ts';
import { waitFor } from '../../harness/wait.ts';
import { assertContiguous, connectSse, connectWs, register, revs } from '../../harness/clients.ts';

const SUBSCRIBER = fileURLToPath(new URL('../fixtures/zmq-subscriber.ts', import.meta.url));
const CHANGES = 1000;
const CONCURRENCY = 32;

test(`a burst of ${CHANGES} changes reaches WebSocket, SSE and ZeroMQ subscribers in order with no gap`, async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const zmq = spawnTs(SUBSCRIBER, ['--pub', c.gateway.feed.pub!, '--snapshot', c.gateway.feed.snapshot!]);
  t.after(() => zmq.stop());
  const ready = Number((await zmq.waitForLine(/^READY (\d+)/))[1]);
  const ws = await connectWs(c.url);
  const wsBilling = await connectWs(c.url, '?service=svc-0');
  const sse = await connectSse(c.url, '/v1/events');
  t.after(() => ws.close());
  t.after(() => wsBilling.close());
  t.after(() => sse.close());
  const start = (await ws.next((m) => m.type === 'snapshot')).rev;
  await sse.next((m) => m.event === 'hello');
  assert.equal(ready, start);

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < CHANGES) {
      const i = next++;
      await register(c.url, `p${i}`, `svc-${i % 10}`, 10_000 + i);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const end = start + CHANGES;

  await ws.next((m) => m.rev === end, 'WebSocket got the last change', 20_000);
  assertContiguous(revs(ws.messages), start + 1, end);

  await sse.next((m) => m.id === String(end), 'SSE got the last change', 20_000);
  assertContiguous(
    sse.messages.filter((m) => m.data?.change).map((m) => Number(m.id)),
    start + 1,
    end,
  );

  await zmq.waitForLine(new RegExp(`^RAW ${end}$`), 20_000);
  const raw = zmq.lines.filter((l) => l.startsWith('RAW ')).map((l) => Number(l.slice(4)));
  assertContiguous(raw, start + 1, end);
  assert.ok(!zmq.lines.some((l) => l.startsWith('RESYNC')), 'no gap made the ZeroMQ client resync');

  // The filtered client: strictly increasing, exactly the changes to its service.
  await waitFor(() => revs(wsBilling.messages).length === CHANGES / 10, { what: 'filtered events' });
  const filtered = revs(wsBilling.messages);
  assert.ok(
    filtered.every((r, i) => i === 0 || r > filtered[i - 1]),
    'filtered revisions increase',
  );
  assert.ok(wsBilling.messages.filter((m) => m.type === 'event').every((m) => m.service === 'svc-0'));
});

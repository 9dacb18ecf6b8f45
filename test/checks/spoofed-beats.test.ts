/**
 * A heartbeat names its provider, so any PUB socket can say "B is alive". It counts only on B's registered
 * endpoint: a dead B stays down although a live A keeps publishing B's id (both on one worker SUB socket, the
 * default pooling, so the socket alone cannot tell them apart).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProviderProcess } from '../../harness/process.ts';
import { changes, holds, provider, register, startCluster, waitState } from './cluster.ts';

test("a dead provider stays down while another provider's socket publishes its beats", async (t) => {
  // Two providers going down of two would trip the mass-down guard; it is not under test here.
  const c = await startCluster({ leader: { massDownPercent: 100 } });
  t.after(() => c.close());
  const a = await startProviderProcess(['spoof-a'], { intervalMs: 50 });
  t.after(() => a.child.stop());
  const b = await startProviderProcess(['spoof-b'], { intervalMs: 50 });
  t.after(() => b.child.stop());
  const check = (endpoint: string) => ({ type: 'zmq', endpoint, intervalMs: 100, misses: 3 });
  await register(c.url, 'spoof-a', {
    service: 'spoof',
    host: '127.0.0.1',
    port: 1,
    protocol: 'rpc-publisher',
    check: check(a.endpoint),
  });
  await register(c.url, 'spoof-b', {
    service: 'spoof',
    host: '127.0.0.1',
    port: 2,
    protocol: 'rpc-publisher',
    check: check(b.endpoint),
  });
  await Promise.all([waitState(c.url, 'spoof-a', 'up'), waitState(c.url, 'spoof-b', 'up')]);

  // A publishes B's id too, then B is killed for real.
  a.child.send('add spoof-b');
  b.child.signal('SIGKILL');
  await b.child.exited;
  await waitState(c.url, 'spoof-b', 'down', 5000);
  // Long enough for dozens of A's copies of B's beats (every 50 ms) and several miss windows (300 ms).
  await holds(async () => (await provider(c.url, 'spoof-b'))?.state === 'down', 1500, 'spoof-b stays down');
  assert.equal((await provider(c.url, 'spoof-a'))?.state, 'up', 'A itself is fine');
  const text = await c.worker.metrics.render();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('switchboard_heartbeats_rejected_total{reason="endpoint-down"}'));
  assert.ok(line && Number(line.split(' ').at(-1)) > 0, `rejected beats counted: ${line}`);
  assert.deepEqual(
    changes(c, 'spoof-b').map((e) => e.change),
    ['registered', 'up', 'down'],
  );
});

/** A heartbeating provider process frozen with SIGSTOP is found through ZMTP heartbeats; SIGCONT brings it back. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProviderProcess } from '../../harness/process.ts';
import { changes, register, startCluster, waitState } from './cluster.ts';

test('SIGSTOP: a frozen provider goes down although its TCP connection stays open; SIGCONT: up again', async (t) => {
  const c = await startCluster({ worker: { zmtpHeartbeatIntervalMs: 100, zmtpHeartbeatTimeoutMs: 300 } });
  t.after(() => c.close());
  const p = await startProviderProcess(['frozen-1'], { intervalMs: 50 });
  t.after(() => p.child.stop());
  // misses × interval = 2 s: the application heartbeat alone would be slow; ZMTP must find the freeze first.
  await register(c.url, 'frozen-1', {
    service: 'frozen',
    host: '127.0.0.1',
    port: 1,
    protocol: 'rpc-publisher',
    check: { type: 'zmq', endpoint: p.endpoint, intervalMs: 1000, misses: 2 },
  });
  await waitState(c.url, 'frozen-1', 'up');
  const stoppedAt = Date.now();
  p.child.signal('SIGSTOP');
  const down = await waitState(c.url, 'frozen-1', 'down', 5000);
  const detectedMs = Date.now() - stoppedAt;
  assert.ok(detectedMs < 1500, `frozen provider found in ${detectedMs} ms (ZMTP timeout 300 ms)`);
  assert.match(down.lastCheck?.output ?? '', /ZMTP heartbeat timeout|no heartbeat/);
  p.child.signal('SIGCONT');
  await waitState(c.url, 'frozen-1', 'up', 5000);
  assert.deepEqual(
    changes(c, 'frozen-1').map((e) => e.change),
    ['registered', 'up', 'down', 'up'],
  );
});

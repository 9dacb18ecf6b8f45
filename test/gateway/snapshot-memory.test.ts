/**
 * Snapshots are cheap to ask for and expensive to serve: many clients asking at one revision must share one
 * encoding, whether they read it or not (WebSocket clients that never read, ZeroMQ snapshot requests whose replies
 * are never taken).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Dealer } from 'zeromq';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { http } from '../helpers/http.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

/** What this process holds in JS objects and Buffers (the gateway runs in it). */
function held(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** ~12 MB of registry: 3,000 providers with 4 KB of meta each. */
async function fill(c: Cluster): Promise<void> {
  const meta = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`key${i}`, 'v'.repeat(500)]));
  for (let i = 0; i < 3000; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, (_, j) =>
        http('PUT', `${c.url}/v1/providers/p-${i + j}`, {
          service: `svc-${(i + j) % 10}`,
          host: '10.0.0.1',
          port: 1000 + i + j,
          protocol: 'http',
          meta,
        }),
      ),
    );
  }
}

/** A WebSocket client that completes the upgrade and then never reads a byte. */
async function stuckWatcher(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.write(
    'GET /v1/watch HTTP/1.1\r\nHost: ' +
      `${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  socket.pause();
  return socket;
}

test('30 WebSocket clients that never read share one snapshot encoding', async (t) => {
  const c = await startCluster({ workers: 0 });
  const sockets: Socket[] = [];
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await c.close();
  });
  await fill(c);
  const before = held();
  for (let i = 0; i < 30; i++) sockets.push(await stuckWatcher(c.url));
  // Wait until the gateway has handed every snapshot to its sockets.
  await new Promise((r) => setTimeout(r, 1000));
  const grown = held() - before;
  t.diagnostic(`gateway memory grew ${(grown / MiB).toFixed(1)} MiB for 30 stuck clients of a ~12 MB snapshot`);
  assert.ok(grown < 100 * MiB, `grew ${(grown / MiB).toFixed(1)} MiB`);
});

test('60 ZeroMQ snapshot requests whose replies are never read share one encoding', async (t) => {
  const c = await startCluster({
    workers: 0,
    gateway: { zmqPub: 'tcp://127.0.0.1:*', zmqSnapshot: 'tcp://127.0.0.1:*' },
  });
  const dealer = new Dealer({ linger: 0, receiveHighWaterMark: 1 });
  t.after(async () => {
    dealer.close();
    await c.close();
  });
  await fill(c);
  const endpoint = c.gateway.feed.snapshot;
  assert.ok(endpoint);
  dealer.connect(endpoint);
  const before = held();
  for (let i = 0; i < 60; i++) await dealer.send(['snapshot', '']);
  await new Promise((r) => setTimeout(r, 1500));
  const grown = held() - before;
  t.diagnostic(`gateway memory grew ${(grown / MiB).toFixed(1)} MiB for 60 unread ~12 MB snapshot replies`);
  assert.ok(grown < 150 * MiB, `grew ${(grown / MiB).toFixed(1)} MiB`);
});

/** The `tcp` check against a real listener that closes and comes back; the `ttl` check fed over real HTTP. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';
import { changes, holds, register, startCluster, waitState } from './cluster.ts';

async function listen(
  port = 0,
): Promise<{ server: Server; port: number; accepted: () => number; close(): Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as { port: number }).port,
    accepted: () => accepted,
    async close() {
      for (const s of sockets) s.destroy();
      if (server.listening) {
        server.close();
        await once(server, 'close');
      }
    },
  };
}

test('tcp check: listening up, closed down, listening again up', async (t) => {
  const c = await startCluster();
  t.after(() => c.close());
  let l = await listen();
  t.after(() => l.close());
  const port = l.port;
  await register(c.url, 'db-1', {
    service: 'db',
    host: '127.0.0.1',
    port,
    protocol: 'rpc-server',
    check: { type: 'tcp', intervalMs: 100, timeoutMs: 100, failuresBeforeDown: 2, successesBeforeUp: 2 },
  });
  await waitState(c.url, 'db-1', 'up');
  await l.close();
  const down = await waitState(c.url, 'db-1', 'down');
  assert.match(down.lastCheck?.output ?? '', /connect to 127\.0\.0\.1:\d+ failed: ECONNREFUSED/);
  l = await listen(port);
  await waitState(c.url, 'db-1', 'up');
  assert.ok(l.accepted() >= 2, `up after ${l.accepted()} connections; successesBeforeUp is 2`);
  assert.deepEqual(
    changes(c, 'db-1').map((e) => e.change),
    ['registered', 'up', 'down', 'up'],
  );
});

test('ttl check: passes keep it up, silence takes it down, passes bring it back (successesBeforeUp 2)', async (t) => {
  const c = await startCluster();
  t.after(() => c.close());
  await register(c.url, 'job-1', {
    service: 'jobs',
    host: '127.0.0.1',
    port: 7000,
    protocol: 'http',
    check: { type: 'ttl', ttlMs: 300, successesBeforeUp: 2 },
  });
  const pass = async (): Promise<void> => {
    const res = await http('PUT', `${c.url}/v1/providers/job-1/ttl`);
    assert.equal(res.status, 204, JSON.stringify(res.body));
  };
  // The task reaches the worker shortly after registration; until then the leader answers 503 SB_NO_WORKER.
  await waitState(c.url, 'job-1', 'pending');
  await waitFor(
    async () => {
      const res = await http('PUT', `${c.url}/v1/providers/job-1/ttl`);
      if (res.status !== 204) assert.equal(res.body.code, 'SB_NO_WORKER');
      return res.status === 204;
    },
    { what: 'first ttl pass accepted' },
  );
  // On a loaded machine the TTL may run out once before the first pass lands; then it takes two passes.
  await waitFor(
    async () => {
      await pass();
      return (await http('GET', `${c.url}/v1/providers/job-1`)).body.state === 'up';
    },
    { what: 'up after passes', intervalMs: 100 },
  );
  // Passing every 100 ms keeps a 300 ms TTL up.
  const passing = setInterval(() => void pass(), 100);
  await holds(
    async () => (await http('GET', `${c.url}/v1/providers/job-1`)).body.state === 'up',
    700,
    'up while passing',
  );
  clearInterval(passing);
  const before = changes(c, 'job-1').length;
  const stoppedAt = Date.now();
  const down = await waitState(c.url, 'job-1', 'down');
  assert.ok(Date.now() - stoppedAt >= 150, 'not down before the TTL ran out');
  assert.match(down.lastCheck?.output ?? '', /ttl expired: no pass within 300 ms/);
  await pass();
  await pass();
  await waitState(c.url, 'job-1', 'up');
  assert.deepEqual(
    changes(c, 'job-1')
      .slice(before)
      .map((e) => e.change),
    ['down', 'up'],
  );
  const wrong = await http('PUT', `${c.url}/v1/providers/nope/ttl`);
  assert.equal(wrong.status, 404);
});

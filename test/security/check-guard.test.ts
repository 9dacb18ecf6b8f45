/**
 * The worker's half of the SSRF rules with a real worker: a name that resolves to a refused address is never
 * contacted (the provider goes down with the reason), and many checks aimed at one host are capped per second.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { startCluster, register, waitState } from '../checks/cluster.ts';
import { waitFor } from '../../harness/wait.ts';

async function countingServer(): Promise<{ url: string; hits: () => number; close: () => void }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(200).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test('the worker resolves a check name and refuses it when it points at a refused address (no request sent)', async (t) => {
  // The gateway is loopback (it accepts loopback targets); this worker is told loopback is off limits.
  const c = await startCluster({ worker: { checkAllowLoopback: false } });
  t.after(() => c.close());
  const target = await countingServer();
  t.after(() => target.close());
  const port = new URL(target.url).port;
  // This machine's own name usually resolves to loopback (/etc/hosts): only resolving tells. Else `localhost`.
  const own = hostname();
  const resolved = await lookup(own).catch(() => null);
  const name = resolved && /^127\./.test(resolved.address) ? own : 'localhost';
  t.diagnostic(`check url names ${name}`);
  await register(c.url, 'named-1', {
    service: 'named',
    host: '10.0.0.1',
    port: 80,
    protocol: 'http',
    check: { type: 'http', url: `http://${name}:${port}/`, intervalMs: 100 },
  });
  const down = await waitState(c.url, 'named-1', 'down');
  const refused = name === 'localhost' ? /localhost:\d+, a loopback address/ : /resolves to 127\.[0-9.]+, a loopback/;
  assert.match(down.lastCheck?.output ?? '', refused);
  assert.equal(target.hits(), 0);
  assert.equal(await c.worker.metrics.get('switchboard_checks_refused_total'), 1);
});

test('check requests to one target host are capped per second however many checks aim at it', async (t) => {
  const c = await startCluster({ worker: { checkMaxRpsPerHost: 5 } });
  t.after(() => c.close());
  const target = await countingServer();
  t.after(() => target.close());
  // 10 checks × 10 per second = 100 requests per second asked for.
  for (let i = 0; i < 10; i++)
    await register(c.url, `cap-${i}`, {
      service: 'capped',
      host: '10.0.0.1',
      port: 1000 + i,
      protocol: 'http',
      check: { type: 'http', url: `${target.url}/${i}`, intervalMs: 100 },
    });
  await waitFor(() => target.hits() > 0, { what: 'first check request' });
  const from = target.hits();
  const t0 = Date.now();
  await waitFor(() => Date.now() - t0 >= 2000 || undefined, { what: '2 s of checks', intervalMs: 100 });
  const perSecond = ((target.hits() - from) * 1000) / (Date.now() - t0);
  t.diagnostic(`check requests to one host: ${perSecond.toFixed(1)}/s with a cap of 5/s (asked for 100/s)`);
  assert.ok(perSecond <= 5 * 1.5 + 2.5, `${perSecond}/s`);
  assert.ok(perSecond >= 2, `${perSecond}/s`);
  assert.ok((await c.worker.metrics.get('switchboard_checks_throttled_total', { type: 'http' })) > 0);
});

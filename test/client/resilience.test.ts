/** The Node client when things go wrong: proxies answering HTML, gateways going away, processes told to stop. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { heartbeatEndpoints, NoGatewayError, SwitchboardClient, type WatchUpdate } from '../../src/client/index.ts';
import { retryDelay } from '../../src/client/watch.ts';
import { startCluster } from '../helpers/cluster.ts';
import { http } from '../helpers/http.ts';
import { spawnTs } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/announcer.ts', import.meta.url));

/** A stand-in for a broken proxy in front of a gateway: every request gets an HTML 502. */
async function htmlProxy(): Promise<{ server: Server; url: string; hits: () => number }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body><h1>502 Bad Gateway</h1></body></html>');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits };
}

test('a gateway (or proxy) answering a non-JSON 502 is skipped for the next gateway, not thrown as SyntaxError', async (t) => {
  const c = await startCluster();
  const proxy = await htmlProxy();
  const client = new SwitchboardClient({ gateways: [proxy.url, c.url] });
  t.after(async () => {
    await client.close();
    proxy.server.close();
    await c.close();
  });
  const p = await client.register({ service: 'search', host: '10.0.0.1', port: 80, protocol: 'http' });
  assert.equal(p.service, 'search');
  assert.equal(proxy.hits(), 1, 'the broken gateway was tried first');
  assert.equal(client.pool.current.url, c.url, 'and the client moved on');

  // With only the broken one, the error says what happened.
  const lonely = new SwitchboardClient({ gateways: [proxy.url] });
  await assert.rejects(lonely.lookup('search'), (err: unknown) => {
    assert.ok(err instanceof NoGatewayError, String(err));
    assert.match(err.message, /502 with a body that is not JSON/);
    return true;
  });
});

test('reconnect backoff: none in the first round, then doubling with jitter up to the cap', () => {
  assert.equal(retryDelay(1, 2, 200, 5000), 0);
  for (let i = 0; i < 50; i++) {
    const second = retryDelay(2, 2, 200, 5000);
    assert.ok(second >= 100 && second <= 200, `round 1: ${second}`);
    const third = retryDelay(4, 2, 200, 5000);
    assert.ok(third >= 200 && third <= 400, `round 2: ${third}`);
    const late = retryDelay(40, 2, 200, 5000);
    assert.ok(late >= 2500 && late <= 5000, `capped: ${late}`);
  }
  const spread = new Set(Array.from({ length: 20 }, () => retryDelay(6, 2, 200, 5000)));
  assert.ok(spread.size > 1, 'jittered, so clients do not reconnect in step');
});

test('a ZeroMQ watch that loses its gateway says why in its failover update', async (t) => {
  const c = await startCluster();
  const feed = c.gateway.feed;
  const client = new SwitchboardClient({
    gateways: [{ url: c.url, pub: feed.pub ?? undefined, snapshot: feed.snapshot ?? undefined }],
  });
  t.after(async () => {
    await client.close();
    await c.close();
  });
  const watch = client.watch({ transport: 'zmq', retryDelayMs: 50 });
  const seen: WatchUpdate[] = [];
  watch.on((u) => seen.push(u));
  await watch.ready;
  await c.gateway.close();
  await waitFor(() => seen.some((u) => u.type === 'failover'), { what: 'failover update' });
  const failover = seen.find((u) => u.type === 'failover');
  assert.ok(failover?.type === 'failover');
  assert.match(failover.reason, /disconnected|snapshot|feed/);
  assert.match(watch.lastError ?? '', new RegExp(c.url.replace(/[.]/g, '\\.')));
});

test('announce advertises the provider host for its heartbeat socket; loopback stays on loopback', async (t) => {
  assert.deepEqual(heartbeatEndpoints('127.0.0.1'), { bind: 'tcp://127.0.0.1:*', advertise: undefined });
  assert.deepEqual(heartbeatEndpoints('10.0.0.5'), { bind: 'tcp://0.0.0.0:*', advertise: 'tcp://10.0.0.5:*' });
  assert.deepEqual(heartbeatEndpoints('fd00::5'), { bind: 'tcp://[::]:*', advertise: 'tcp://[fd00::5]:*' });
  assert.deepEqual(heartbeatEndpoints('billing.internal', 'tcp://10.0.0.5:6000'), {
    bind: 'tcp://10.0.0.5:6000',
    advertise: undefined,
  });

  const c = await startCluster();
  const client = new SwitchboardClient({ gateways: [c.url], deregisterOnClose: true });
  t.after(() => c.close());
  const me = await client.announce(
    { service: 'billing', host: '127.0.0.1', port: 9001, protocol: 'rpc-server' },
    { heartbeatAdvertise: 'tcp://localhost:*', checkIntervalMs: 200 },
  );
  assert.ok(me.check?.type === 'zmq');
  assert.match(me.check.endpoint, /^tcp:\/\/localhost:\d+$/, 'the advertised name, with the bound port');
  await waitFor(async () => (await http('GET', `${c.url}/v1/providers/${me.id}`)).body.state === 'up', {
    what: 'worker reached the advertised endpoint',
  });
  await client.close();
  assert.equal((await http('GET', `${c.url}/v1/providers/${me.id}`)).status, 404, 'deregistered on close');
});

test('deregisterOnClose: SIGTERM deregisters the announced provider, then the process ends by the signal', async (t) => {
  const c = await startCluster();
  t.after(() => c.close());
  const child = spawnTs(FIXTURE, [c.url]);
  t.after(() => child.stop());
  const [, id] = await child.waitForLine(/^announced (\S+)$/);
  assert.equal((await http('GET', `${c.url}/v1/providers/${id}`)).status, 200);
  child.signal('SIGTERM');
  assert.equal(await child.exited, 'SIGTERM', 'the signal still ends the process');
  assert.equal((await http('GET', `${c.url}/v1/providers/${id}`)).status, 404, 'deregistered before exiting');
});

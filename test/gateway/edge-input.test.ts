/** The gateway's edges: long ids, spellings of one address, unknown routes, slow clients, a gateway never synced. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { createLogger } from '../../src/bridge/index.ts';
import { start as startGateway } from '../../src/gateway/index.ts';
import { startCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';

test('ids up to 128 characters work on every route (no 414 below the schema limit)', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const id = 'p' + 'x'.repeat(127);
  const put = await http('PUT', `${c.url}/v1/providers/${id}`, {
    service: 's',
    host: '10.0.0.1',
    port: 1,
    protocol: 'http',
  });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  assert.equal((await http('GET', `${c.url}/v1/providers/${id}`)).body.id, id);
  const tooLong = await http('GET', `${c.url}/v1/providers/${id}x`);
  assert.equal(tooLong.status, 400);
  assert.equal(tooLong.body.code, 'FST_ERR_VALIDATION');
  assert.equal((await http('DELETE', `${c.url}/v1/providers/${id}`)).status, 204);
});

test('spellings of one address are one provider; a host with a port is a 400 naming host', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const spellings = [
    '127.0.0.1',
    '127.1',
    '127.000.000.001',
    '0x7f.0.0.1',
    '2130706433',
    '::ffff:127.0.0.1',
    '[::ffff:7f00:1]',
  ];
  const ids = new Set<string>();
  for (const host of spellings) {
    const res = await http('POST', `${c.url}/v1/providers`, { service: 'loop', host, port: 80, protocol: 'http' });
    assert.ok(res.status === 201 || res.status === 200, `${host}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.host, '127.0.0.1', host);
    ids.add(res.body.id);
  }
  assert.equal(ids.size, 1, 'one provider');
  const names = await http('POST', `${c.url}/v1/providers`, {
    service: 'loop',
    host: 'LocalHost.',
    port: 81,
    protocol: 'http',
  });
  assert.equal(names.body.host, 'localhost');
  const v6 = await http('POST', `${c.url}/v1/providers`, {
    service: 'loop',
    host: '0:0:0:0:0:0:0:1',
    port: 82,
    protocol: 'http',
  });
  assert.equal(v6.body.host, '::1');
  for (const host of ['1.1.1.1:80', '999.1.1.1', '[::1]:80']) {
    const bad = await http('PUT', `${c.url}/v1/providers/bad`, { service: 'loop', host, port: 80, protocol: 'http' });
    assert.equal(bad.status, 400, host);
    assert.equal(bad.body.code, 'FST_ERR_VALIDATION');
    assert.match(bad.body.message, /body\/host/);
  }
  assert.equal((await http('GET', `${c.url}/v1/services/loop`)).body.providers.length, 3);
});

test('an unknown route answers 404 with a code listed in the OpenAPI document', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const res = await http('GET', `${c.url}/v1/nope?x=1`);
  assert.equal(res.status, 404);
  assert.equal(res.body.code, 'SB_ROUTE_NOT_FOUND');
  assert.match(res.body.message, /GET \/v1\/nope/);
});

test('a request body trickled slowly is cut off after the request timeout, not held for minutes', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const { hostname, port } = new URL(c.url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.write(
    `PUT /v1/providers/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`,
  );
  const drip = setInterval(() => socket.write(' '), 500);
  t.after(() => clearInterval(drip));
  const started = Date.now();
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString()));
  await once(socket, 'close');
  const heldMs = Date.now() - started;
  t.diagnostic(`trickling client cut off after ${heldMs} ms: ${answer.split('\r\n')[0]}`);
  assert.ok(heldMs < 20_000, `held ${heldMs} ms`);
  assert.match(answer, /^HTTP\/1\.1 408/);
});

test('a gateway that has never synced with a leader answers reads 503 SB_NOT_READY, not empty lists', async (t) => {
  const gateway = await startGateway(
    { leader: 'tcp://127.0.0.1:9', httpPort: 0, zmqPub: 'off', zmqSnapshot: 'off' },
    { log: createLogger({ level: 'silent' }) },
  );
  t.after(() => gateway.close());
  for (const path of ['/v1/services', '/v1/services/billing', '/v1/providers/x']) {
    const res = await http('GET', `${gateway.url}${path}`);
    assert.equal(res.status, 503, path);
    assert.equal(res.body.code, 'SB_NOT_READY', path);
  }
  assert.equal((await http('GET', `${gateway.url}/healthz`)).status, 200, 'alive');
  assert.equal((await http('GET', `${gateway.url}/readyz`)).status, 503, 'not ready');
});

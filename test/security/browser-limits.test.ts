/**
 * The gateway's browser guard, write limits, connection caps, SSRF refusals and audit log, route by route through
 * `inject()` (and a real listener where a socket matters: WebSocket upgrades, source addresses).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { request as httpRequest } from 'node:http';
import WebSocket from 'ws';
import { createLogger } from '../../src/bridge/index.ts';
import { clientKey } from '../../src/gateway/clients.ts';
import { gatewayApp } from '../helpers/gateway-app.ts';

const provider = { service: 'billing', host: '10.0.0.5', port: 8080, protocol: 'http' };

test('Host allow-list: loopback names pass, a rebinding name is refused 403 SB_FORBIDDEN_HOST, * allows any', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] } });
  t.after(() => g.close());
  for (const host of ['localhost:7700', '127.0.0.1:7700', '[::1]:7700', 'LOCALHOST.'])
    assert.equal((await g.app.inject({ url: '/v1/services', headers: { host } })).statusCode, 200, host);
  const evil = await g.app.inject({ url: '/v1/services', headers: { host: 'evil.example:7700' } });
  assert.equal(evil.statusCode, 403);
  assert.equal(evil.json().code, 'SB_FORBIDDEN_HOST');
  assert.match(evil.json().message, /--allowed-hosts/);

  const any = await gatewayApp({ snapshot: { providers: [] }, app: { browser: { allowedHosts: ['*'] } } });
  t.after(() => any.close());
  assert.equal((await any.app.inject({ url: '/v1/services', headers: { host: 'evil.example' } })).statusCode, 200);
  const listed = await gatewayApp({
    snapshot: { providers: [] },
    app: { browser: { allowedHosts: ['sd.internal'] } },
  });
  t.after(() => listed.close());
  assert.equal((await listed.app.inject({ url: '/v1/services', headers: { host: 'sd.internal:80' } })).statusCode, 200);
});

test('Origin: foreign pages cannot write, stream or read through CORS; same origin and listed origins can', async (t) => {
  const g = await gatewayApp({
    snapshot: { providers: [] },
    app: { browser: { allowedOrigins: ['https://console.example'] } },
  });
  t.after(() => g.close());
  const foreign = { host: '127.0.0.1:7700', origin: 'http://evil.example' };

  // A cross-site text/plain POST (no preflight in a browser) to release the guard.
  const release = await g.app.inject({
    method: 'POST',
    url: '/v1/admin/release-guard',
    headers: { ...foreign, 'content-type': 'text/plain' },
    payload: 'x',
  });
  assert.equal(release.statusCode, 403);
  assert.equal(release.json().code, 'SB_FORBIDDEN_ORIGIN');
  // Without an Origin (curl, a script) a text/plain body is still refused: 415 with a code.
  const plain = await g.app.inject({
    method: 'POST',
    url: '/v1/admin/release-guard',
    headers: { 'content-type': 'text/plain' },
    payload: 'x',
  });
  assert.equal(plain.statusCode, 415);
  assert.equal(plain.json().code, 'SB_UNSUPPORTED_MEDIA_TYPE');
  const form = await g.app.inject({
    method: 'PUT',
    url: '/v1/providers/p1',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'service=billing',
  });
  assert.equal(form.statusCode, 415);

  // Streams: SSE from a foreign page is refused before any byte of the registry.
  const sse = await g.app.inject({ url: '/v1/events', headers: foreign });
  assert.equal(sse.statusCode, 403);
  assert.equal(sse.json().code, 'SB_FORBIDDEN_ORIGIN');

  // JSON writes from the same origin or a listed origin pass the guard (503: no leader behind this app).
  for (const origin of ['http://127.0.0.1:7700', 'https://console.example']) {
    const res = await g.app.inject({
      method: 'PUT',
      url: '/v1/providers/p1',
      headers: { host: '127.0.0.1:7700', origin },
      payload: provider,
    });
    assert.equal(res.statusCode, 503, origin);
    assert.equal(res.json().code, 'SB_LEADER_UNAVAILABLE');
  }
  // https page vs http gateway is not the same origin.
  const scheme = await g.app.inject({
    method: 'DELETE',
    url: '/v1/providers/p1',
    headers: { host: '127.0.0.1:7700', origin: 'https://127.0.0.1:7700' },
  });
  assert.equal(scheme.statusCode, 403);

  // CORS: a listed origin may read REST answers, a foreign one gets no allow header (the browser hides the body).
  const listed = await g.app.inject({ url: '/v1/services', headers: { origin: 'https://console.example' } });
  assert.equal(listed.headers['access-control-allow-origin'], 'https://console.example');
  const read = await g.app.inject({ url: '/v1/services', headers: foreign });
  assert.equal(read.statusCode, 200);
  assert.equal(read.headers['access-control-allow-origin'], undefined);
  const preflight = await g.app.inject({
    method: 'OPTIONS',
    url: '/v1/providers/p1',
    headers: {
      origin: 'https://console.example',
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'content-type',
    },
  });
  assert.equal(preflight.statusCode, 204);
  assert.match(String(preflight.headers['access-control-allow-methods']), /PUT/);
});

test('WebSocket upgrade from a foreign Origin is refused 403; no Origin and same origin are served', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] } });
  t.after(() => g.close());
  const base = (await g.listen()).replace(/^http/, 'ws');
  const refused = new WebSocket(`${base}/v1/watch`, { origin: 'http://evil.example' });
  refused.on('error', () => {}); // terminating a refused handshake reports an error; the status is what counts
  const [, res] = (await once(refused, 'unexpected-response')) as [unknown, { statusCode: number }];
  assert.equal(res.statusCode, 403);
  refused.terminate();
  for (const origin of [undefined, base.replace(/^ws/, 'http')]) {
    const ws = new WebSocket(`${base}/v1/watch`, origin ? { origin } : {});
    const [data] = (await once(ws, 'message')) as [Buffer];
    assert.equal(JSON.parse(data.toString()).type, 'snapshot');
    ws.close();
  }
});

test('write rate limit per client: 429 SB_RATE_LIMITED with retry-after; reads are not limited', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] }, app: { writeLimit: { max: 3, windowMs: 60_000 } } });
  t.after(() => g.close());
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++)
    statuses.push((await g.app.inject({ method: 'DELETE', url: `/v1/providers/p${i}` })).statusCode);
  assert.deepEqual(statuses, [503, 503, 503, 429, 429]);
  const limited = await g.app.inject({ method: 'PUT', url: '/v1/providers/p1', payload: provider });
  assert.equal(limited.statusCode, 429);
  assert.equal(limited.json().code, 'SB_RATE_LIMITED');
  assert.ok(Number(limited.headers['retry-after']) > 0);
  // Another loopback source address is the same client.
  const other = await g.app.inject({ method: 'DELETE', url: '/v1/providers/p9', remoteAddress: '127.0.0.3' });
  assert.equal(other.statusCode, 429);
  // A different machine has its own budget; reads are never limited.
  assert.equal(
    (await g.app.inject({ method: 'DELETE', url: '/v1/providers/p9', remoteAddress: '10.1.2.3' })).statusCode,
    503,
  );
  for (let i = 0; i < 10; i++) assert.equal((await g.app.inject({ url: '/v1/services' })).statusCode, 200);
});

test('client keys: every loopback address is one client, IPv6 counts per /64, mapped IPv4 is IPv4', () => {
  assert.equal(clientKey('127.0.0.1'), 'loopback');
  assert.equal(clientKey('127.0.0.3'), 'loopback');
  assert.equal(clientKey('::1'), 'loopback');
  assert.equal(clientKey('::ffff:127.0.0.2'), 'loopback');
  assert.equal(clientKey('::ffff:10.0.0.7'), '10.0.0.7');
  assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8:1:2:bbbb::9'), '2001:db8:1:2::/64');
  assert.notEqual(clientKey('2001:db8:1:3::1'), clientKey('2001:db8:1:2::1'));
});

/** Opens an SSE stream from `localAddress`; resolves with the status code (the stream stays open). */
function sse(base: string, localAddress: string): Promise<{ status: number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}/v1/events`, { localAddress }, (res) =>
      resolve({ status: res.statusCode ?? 0, close: () => req.destroy() }),
    );
    req.on('error', reject);
    req.end();
  });
}

test('subscriber cap per client is not bypassed by using other loopback source addresses', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] }, context: { maxWatchersPerAddress: 2 } });
  t.after(() => g.close());
  const base = await g.listen();
  const open = [await sse(base, '127.0.0.1'), await sse(base, '127.0.0.2')];
  t.after(() => open.forEach((s) => s.close()));
  assert.deepEqual(
    open.map((s) => s.status),
    [200, 200],
  );
  const third = await sse(base, '127.0.0.3');
  third.close();
  assert.equal(third.status, 503);
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/watch`, { localAddress: '127.0.0.4' });
  ws.on('error', () => {});
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
  assert.equal(res.statusCode, 503);
  ws.terminate();
});

test('checks that target link-local, metadata, unspecified, ipc:// or the gateway itself are refused with 400 naming the field', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] } });
  t.after(() => g.close());
  g.ctx.checkPolicy.addOwnEndpoint('127.0.0.1', 7700);
  const cases: Array<[object, RegExp]> = [
    [
      { ...provider, check: { type: 'http', url: 'http://169.254.169.254/latest/meta-data/' } },
      /^body\/check\/url .*link-local/,
    ],
    [{ ...provider, check: { type: 'http', url: 'http://[::ffff:169.254.169.254]/' } }, /^body\/check\/url/],
    [{ ...provider, check: { type: 'http', url: 'http://metadata.google.internal/' } }, /^body\/check\/url .*metadata/],
    [
      { ...provider, check: { type: 'http', url: 'http://127.0.0.1:7700/v1/admin/release-guard' } },
      /own listening ports/,
    ],
    [{ ...provider, check: { type: 'zmq', endpoint: 'tcp://[fe80::1]:5555' } }, /^body\/check\/endpoint .*link-local/],
    [
      { ...provider, check: { type: 'zmq', endpoint: 'ipc:///var/run/docker.sock' } },
      /^body\/check\/endpoint .*local socket/,
    ],
    [{ ...provider, host: '0.0.0.0', check: { type: 'tcp' } }, /^body\/host .*unspecified/],
    [{ ...provider, host: '169.254.1.1', check: { type: 'tcp' } }, /^body\/host/],
  ];
  for (const [body, message] of cases) {
    const res = await g.app.inject({ method: 'POST', url: '/v1/providers', payload: body });
    assert.equal(res.statusCode, 400, JSON.stringify(body));
    assert.equal(res.json().code, 'SB_CHECK_TARGET_REFUSED');
    assert.match(res.json().message, message);
    assert.match(res.json().message, /--check-allow-cidr/);
  }
  // A loopback gateway (tests, `switchboard start`) lets checks reach loopback providers; ttl checks reach nothing.
  for (const body of [
    { ...provider, check: { type: 'http', url: 'http://127.0.0.1:9000/health' } },
    { ...provider, check: { type: 'zmq', endpoint: 'tcp://localhost:6001' } },
    { ...provider, host: '169.254.1.1', check: { type: 'ttl', ttlMs: 1000 } },
  ]) {
    const res = await g.app.inject({ method: 'POST', url: '/v1/providers', payload: body });
    assert.equal(res.statusCode, 503, `${JSON.stringify(body)}: ${res.body}`);
  }
});

test('a non-loopback gateway refuses loopback check targets unless --check-allow-cidr allows them', async (t) => {
  const strict = await gatewayApp({ snapshot: { providers: [] }, context: { checkAllowLoopback: false } });
  t.after(() => strict.close());
  const body = { ...provider, check: { type: 'http', url: 'http://localhost:9000/admin' } };
  const res = await strict.app.inject({ method: 'PUT', url: '/v1/providers/p1', payload: body });
  assert.equal(res.statusCode, 400);
  assert.match(res.json().message, /body\/check\/url targets localhost:9000, a loopback address/);
  const allowed = await gatewayApp({
    snapshot: { providers: [] },
    context: { checkAllowLoopback: false, checkAllowCidr: ['127.0.0.0/8', '169.254.0.0/16', 'ipc'] },
  });
  t.after(() => allowed.close());
  for (const b of [
    body,
    { ...provider, check: { type: 'http', url: 'http://169.254.10.10/' } },
    { ...provider, check: { type: 'zmq', endpoint: 'ipc:///tmp/provider.sock' } },
  ])
    assert.equal((await allowed.app.inject({ method: 'PUT', url: '/v1/providers/p1', payload: b })).statusCode, 503);
});

test('audit: every write and admin action is one structured info line and a counter, refusals included', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  const log = createLogger({ level: 'info', destination });
  const g = await gatewayApp({ snapshot: { providers: [] }, log });
  t.after(() => g.close());
  await g.app.inject({ method: 'PUT', url: '/v1/providers/p1', payload: provider, remoteAddress: '10.9.8.7' });
  await g.app.inject({
    method: 'POST',
    url: '/v1/admin/release-guard',
    headers: { 'content-type': 'text/plain' },
    payload: 'x',
  });
  await g.app.inject({ method: 'DELETE', url: '/v1/providers/p1' });
  await g.app.inject({ url: '/v1/services' });
  const audit = lines.filter((l) => l.audit === true);
  assert.equal(audit.length, 3, JSON.stringify(lines));
  assert.equal(audit[0].level, 30);
  assert.deepEqual(
    audit.map((l) => [l.action, l.method, l.route, l.status, l.result]),
    [
      ['provider.register', 'PUT', '/v1/providers/:id', 503, 'failed'],
      ['admin.release-guard', 'POST', '/v1/admin/release-guard', 415, 'refused'],
      ['provider.deregister', 'DELETE', '/v1/providers/:id', 503, 'failed'],
    ],
  );
  assert.deepEqual(audit[0].who, { address: '10.9.8.7', client: '10.9.8.7' });
  assert.equal(audit[0].service, 'billing');
  assert.equal(audit[0].provider, 'p1');
  assert.deepEqual(audit[1].who, { address: '127.0.0.1', client: 'loopback' });
  const metrics = (await g.app.inject({ url: '/metrics' })).body;
  assert.match(metrics, /switchboard_audit_events_total\{action="provider.register",result="failed"\} 1/);
  assert.match(metrics, /switchboard_audit_events_total\{action="admin.release-guard",result="refused"\} 1/);
  assert.match(metrics, /switchboard_audit_events_total\{action="provider.deregister",result="ok"\} 0/);
});

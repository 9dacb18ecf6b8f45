/**
 * Route-level behaviour of the gateway through `inject()`: validation and error shapes, the codes and statuses the
 * OpenAPI document lists, headers, filters and query coercion. No socket is opened: the app runs without a leader
 * (test/helpers/gateway-app.ts), so what is checked here is the gateway's own answer to each request. Writes that
 * reach a leader are checked end to end in test/e2e.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { LightMyRequestResponse } from 'fastify';
import { ERROR_CODES } from '../../src/bridge/index.ts';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.ts';
import { providerRecord } from '../helpers/records.ts';

const good = { service: 'billing', host: '127.0.0.1', port: 9000, protocol: 'http' };
const openapi = JSON.parse(readFileSync('openapi/openapi.json', 'utf8')) as {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
};

/** The OpenAPI path of a concrete URL (`/v1/providers/p1/ttl` → `/v1/providers/{id}/ttl`). */
function documentedPath(url: string): string | undefined {
  const path = url.split('?')[0];
  return Object.keys(openapi.paths).find((p) =>
    new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path.replace(/%20/g, ' ')),
  );
}

/** An error as every route answers it: Fastify's shape, a code from the table, a status the document lists. */
function assertDocumentedError(method: string, url: string, res: LightMyRequestResponse, status: number): any {
  const what = `${method} ${url} → ${res.statusCode} ${res.body}`;
  assert.equal(res.statusCode, status, what);
  assert.match(res.headers['content-type'] as string, /^application\/json/, what);
  const body = res.json();
  assert.equal(body.statusCode, status, what);
  assert.equal(typeof body.error, 'string', what);
  assert.equal(typeof body.message, 'string', what);
  assert.ok(body.code in ERROR_CODES, `${what}: code ${body.code} is not in src/bridge/error-codes.ts`);
  assert.equal(ERROR_CODES[body.code as keyof typeof ERROR_CODES].statusCode, status, what);
  const path = documentedPath(url);
  assert.ok(path, `${what}: no OpenAPI path`);
  assert.ok(
    openapi.paths[path][method.toLowerCase()]?.responses[String(status)],
    `${what}: ${status} is not listed for ${method} ${path} in openapi/openapi.json`,
  );
  return body;
}

function request(g: GatewayApp, method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  return g.app.inject({
    method: method as 'GET',
    url,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

test('invalid bodies, params, queries and headers answer 400 naming the field, with a listed code', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] } });
  t.after(() => g.close());
  const checkBase = { service: 'bad', host: '127.0.0.1', port: 1, protocol: 'http' };
  const many = Array.from({ length: 65 }, (_, i) => `service=s${i}`).join('&');
  const cases: Array<[string, string, unknown, RegExp, Record<string, string>?]> = [
    ['PUT', '/v1/providers/p1', { ...good, service: 'Bad Name' }, /body\/service/],
    ['PUT', '/v1/providers/p1', { ...good, host: 'not a host!' }, /body\/host/],
    ['PUT', '/v1/providers/p1', { ...good, port: 0 }, /body\/port/],
    ['PUT', '/v1/providers/p1', { ...good, port: 70000 }, /body\/port must be <= 65535/],
    ['PUT', '/v1/providers/p1', { ...good, port: '80' }, /body\/port/],
    ['PUT', '/v1/providers/p1', { ...good, protocol: 'Gopher' }, /body\/protocol/],
    ['PUT', '/v1/providers/p1', { ...good, check: { type: 'zmq', endpoint: 'nonsense' } }, /body\/check/],
    ['PUT', '/v1/providers/p1', { ...good, check: { type: 'ttl', ttlMs: 5 } }, /body\/check/],
    ['PUT', '/v1/providers/p1', { ...good, check: { type: 'carrier-pigeon' } }, /body\/check/],
    ['PUT', '/v1/providers/p1', { ...good, tags: 'blue' }, /body\/tags/],
    ['PUT', '/v1/providers/p1', { ...good, meta: { k: 1 } }, /body\/meta/],
    ['PUT', '/v1/providers/p1', { ...good, chek: {} }, /body must NOT have additional properties \('chek'\)/],
    ['PUT', '/v1/providers/p1', { host: '127.0.0.1', port: 1, protocol: 'http' }, /service/],
    ['PUT', '/v1/providers/p1', [good], /body must be object/],
    ['PUT', '/v1/providers/bad%20id', good, /params\/id/],
    ['POST', '/v1/providers', { ...good, port: -1 }, /body\/port/],
    ['POST', '/v1/providers', { ...good, check: { type: 'http', url: 'ftp://x/' } }, /body\/check\/url/],
    // The health-check definitions (test/checks run them for real): each variant names its own field.
    ['PUT', '/v1/providers/bad-1', { ...checkBase, check: { type: 'http', url: 'ftp://127.0.0.1/x' } }, /url/],
    [
      'PUT',
      '/v1/providers/bad-1',
      { ...checkBase, check: { type: 'http', url: 'http://127.0.0.1/x', intervalMs: 10 } },
      /intervalMs/,
    ],
    [
      'PUT',
      '/v1/providers/bad-1',
      { ...checkBase, check: { type: 'http', url: 'http://127.0.0.1/x', timeoutMs: 5 } },
      /timeoutMs/,
    ],
    [
      'PUT',
      '/v1/providers/bad-1',
      { ...checkBase, check: { type: 'http', url: 'http://127.0.0.1/x', expectStatus: 700 } },
      /expectStatus/,
    ],
    [
      'PUT',
      '/v1/providers/bad-1',
      { ...checkBase, check: { type: 'tcp', failuresBeforeDown: 0 } },
      /failuresBeforeDown/,
    ],
    ['PUT', '/v1/providers/bad-1', { ...checkBase, check: { type: 'ttl', ttlMs: 50 } }, /ttlMs/],
    [
      'PUT',
      '/v1/providers/bad-1',
      { ...checkBase, check: { type: 'ttl', ttlMs: 500, deregisterAfterMs: 5 } },
      /deregisterAfterMs/,
    ],
    ['PUT', '/v1/providers/p1/maintenance', { enabled: 'yes' }, /body\/enabled/],
    ['PUT', '/v1/providers/p1/maintenance', { enabled: true, why: 'x' }, /additional properties \('why'\)/],
    ['PUT', '/v1/providers/p1/maintenance', { enabled: true, reason: 'x'.repeat(600) }, /body\/reason/],
    ['GET', '/v1/providers/bad%20id', undefined, /params\/id/],
    ['DELETE', '/v1/providers/bad%20id', undefined, /params\/id/],
    ['PUT', '/v1/providers/bad%20id/ttl', undefined, /params\/id/],
    ['GET', '/v1/services/UPPER', undefined, /params\/name/],
    ['GET', '/v1/services/billing?state=sleepy', undefined, /querystring\/state/],
    ['GET', '/v1/services/billing?protocol=Gopher', undefined, /querystring\/protocol/],
    ['GET', '/v1/services/billing?color=red', undefined, /additional properties \('color'\)/],
    ['GET', '/v1/services/billing?index=-1', undefined, /querystring\/index/],
    ['GET', '/v1/services/billing?index=abc', undefined, /querystring\/index must be integer/],
    ['GET', '/v1/services/billing?index=1&wait=forever', undefined, /querystring\/wait/],
    ['GET', '/v1/services/billing?index=1&wait=10h', undefined, /querystring\/wait/],
    ['GET', '/v1/services?index=-1', undefined, /querystring\/index/],
    ['GET', '/v1/services?wait=soon', undefined, /querystring\/wait/],
    ['GET', '/v1/events?since=-1', undefined, /querystring\/since/],
    ['GET', '/v1/events?since=abc', undefined, /querystring\/since/],
    ['GET', '/v1/events?service=Bad!', undefined, /querystring\/service/],
    ['GET', `/v1/events?${many}`, undefined, /querystring\/service/],
    ['GET', '/v1/events', undefined, /last-event-id/, { 'last-event-id': 'yesterday' }],
    ['GET', '/v1/watch?service=Not%20A%20Name', undefined, /querystring\/service/],
    ['GET', `/v1/watch?${many}`, undefined, /querystring\/service/],
    ['GET', '/v1/watch?rev=abc', undefined, /querystring\/rev/],
    ['GET', '/v1/watch?epoch=no%20spaces', undefined, /querystring\/epoch/],
  ];
  for (const [method, url, body, field, headers] of cases) {
    const res = await request(g, method, url, body, headers);
    const error = assertDocumentedError(method, url, res, 400);
    assert.match(error.message, field, `${method} ${url} ${JSON.stringify(body)}: ${error.message}`);
  }
  assert.equal(g.replica.size, 0, 'nothing was written');
});

test('GET /v1/watch without an upgrade answers 400 and says how to connect', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] } });
  t.after(() => g.close());
  const error = assertDocumentedError('GET', '/v1/watch', await request(g, 'GET', '/v1/watch'), 400);
  assert.equal(error.code, 'SB_BAD_REQUEST');
  assert.match(error.message, /WebSocket/);
});

test('reads come from the replica: filters, order, counts, 404 for an unknown id, index and stale headers', async (t) => {
  const g = await gatewayApp({
    snapshot: {
      epoch: 'E7',
      rev: 9,
      providers: [
        providerRecord('b2', 4, { port: 82, tags: ['blue'], protocol: 'rpc-server' }),
        providerRecord('b1', 2, { port: 81, tags: ['blue', 'canary'] }),
        providerRecord('b3', 5, { port: 83, state: 'down' }),
        providerRecord('o1', 9, { service: 'orders', state: 'pending' }),
      ],
    },
  });
  t.after(() => g.close());
  const ids = (res: LightMyRequestResponse): string[] => res.json().providers.map((p: { id: string }) => p.id);

  const all = await request(g, 'GET', '/v1/services/billing');
  assert.equal(all.statusCode, 200);
  assert.deepEqual(ids(all), ['b1', 'b2', 'b3'], 'sorted by id');
  assert.equal(all.json().rev, 9);
  assert.equal(all.json().service, 'billing');
  assert.equal(all.headers['x-switchboard-index'], '5', 'the index is the last change to this service');
  // No leader behind this gateway: the answer says it may be behind.
  assert.equal(all.json().stale, true);
  assert.equal(all.headers['x-switchboard-stale'], 'true');

  assert.deepEqual(ids(await request(g, 'GET', '/v1/services/billing?state=up')), ['b1', 'b2']);
  assert.deepEqual(ids(await request(g, 'GET', '/v1/services/billing?state=down')), ['b3']);
  assert.deepEqual(ids(await request(g, 'GET', '/v1/services/billing?tag=blue')), ['b1', 'b2']);
  assert.deepEqual(ids(await request(g, 'GET', '/v1/services/billing?tag=canary&state=up')), ['b1']);
  assert.deepEqual(ids(await request(g, 'GET', '/v1/services/billing?protocol=rpc-server')), ['b2']);
  assert.deepEqual(ids(await request(g, 'GET', '/v1/services/billing?tag=green')), []);
  assert.deepEqual(ids(await request(g, 'GET', '/v1/services/billing?state=up&tag=blue&protocol=rpc-server')), ['b2']);

  const none = await request(g, 'GET', '/v1/services/nothing');
  assert.equal(none.statusCode, 200, 'an unknown service is an empty list, not an error');
  assert.deepEqual(none.json().providers, []);
  assert.equal(none.headers['x-switchboard-index'], '0');

  const services = await request(g, 'GET', '/v1/services');
  assert.deepEqual(services.json(), {
    rev: 9,
    stale: true,
    services: [
      { name: 'billing', providers: 3, up: 2 },
      { name: 'orders', providers: 1, up: 0 },
    ],
  });
  assert.equal(services.headers['x-switchboard-index'], '9');

  const one = await request(g, 'GET', '/v1/providers/b1');
  assert.equal(one.statusCode, 200);
  assert.deepEqual(one.json(), providerRecord('b1', 2, { port: 81, tags: ['blue', 'canary'] }));
  const missing = assertDocumentedError(
    'GET',
    '/v1/providers/nope',
    await request(g, 'GET', '/v1/providers/nope'),
    404,
  );
  assert.equal(missing.code, 'SB_PROVIDER_NOT_FOUND');
  assert.match(missing.message, /'nope'/);

  // A change moves the answer (the cached serialization is dropped) and the index.
  const event = g.publish('down', providerRecord('b1', 0, { port: 81, tags: ['blue', 'canary'], state: 'down' }));
  const after = await request(g, 'GET', '/v1/services/billing?state=up');
  assert.deepEqual(ids(after), ['b2']);
  assert.equal(after.headers['x-switchboard-index'], String(event.rev));
  assert.equal((await request(g, 'GET', '/v1/providers/b1')).json().state, 'down');
  g.publish('deregistered', providerRecord('o1', 0, { service: 'orders' }));
  assert.deepEqual(
    (await request(g, 'GET', '/v1/services')).json().services.map((s: { name: string }) => s.name),
    ['billing'],
    'a service without providers is gone from the list',
  );
});

test("PUT /v1/providers registers an array: one result per provider, with the single route's error codes", async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] } });
  t.after(() => g.close());
  const metadata = { ...good, port: 9001, check: { type: 'http', url: 'http://169.254.169.254/latest' } };
  const res = await request(g, 'PUT', '/v1/providers', [{ id: 'b1', ...good }, metadata, { ...good, port: 9002 }]);
  assert.equal(res.statusCode, 200, res.body);
  const { results } = res.json<{ results: Array<{ status: number; error?: { code: string; statusCode: number } }> }>();
  // No leader here: the writes that pass the gateway's own checks answer as the single route would (503).
  assert.deepEqual(
    results.map((r) => [r.status, r.error?.code, r.error?.statusCode]),
    [
      [503, 'SB_LEADER_UNAVAILABLE', 503],
      [400, 'SB_CHECK_TARGET_REFUSED', 400],
      [503, 'SB_LEADER_UNAVAILABLE', 503],
    ],
  );
  // A malformed body is refused whole, naming the item; more than 1,000 providers is malformed too.
  const bad = assertDocumentedError(
    'PUT',
    '/v1/providers',
    await request(g, 'PUT', '/v1/providers', [good, { ...good, port: 0 }]),
    400,
  );
  assert.match(bad.message, /body\/1\/port/);
  const many = Array.from({ length: 1001 }, (_, i) => ({ ...good, port: 1 + i }));
  assertDocumentedError('PUT', '/v1/providers', await request(g, 'PUT', '/v1/providers', many), 400);
  assertDocumentedError('PUT', '/v1/providers', await request(g, 'PUT', '/v1/providers', []), 400);
});

test('without a leader: writes answer 503 SB_LEADER_UNAVAILABLE, reads still work, /readyz is 503', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [providerRecord('b1', 1)] } });
  t.after(() => g.close());
  const writes: Array<[string, string, unknown]> = [
    ['PUT', '/v1/providers/b2', good],
    ['POST', '/v1/providers', good],
    ['DELETE', '/v1/providers/b1', undefined],
    ['PUT', '/v1/providers/b1/ttl', undefined],
    ['PUT', '/v1/providers/b1/maintenance', { enabled: true, reason: 'upgrade' }],
  ];
  for (const [method, url, body] of writes) {
    const error = assertDocumentedError(method, url, await request(g, method, url, body), 503);
    assert.equal(error.code, 'SB_LEADER_UNAVAILABLE', `${method} ${url}`);
  }
  assert.equal((await request(g, 'GET', '/v1/providers/b1')).statusCode, 200);

  const ready = await request(g, 'GET', '/readyz');
  assert.equal(ready.statusCode, 503);
  assert.deepEqual(
    { ...ready.json<Record<string, unknown>>(), lastContactMs: undefined },
    {
      ready: false,
      leaderReachable: false,
      loaded: true,
      stale: true,
      epoch: 'E1',
      rev: 1,
      lastContactMs: undefined,
      massDownGuard: null,
      leaderStore: null,
      reason: 'no contact with the leader: reads are served but may be stale',
    },
  );
  const health = await request(g, 'GET', '/healthz');
  assert.equal(health.statusCode, 200);
  assert.deepEqual(health.json(), { status: 'ok' });
  const metrics = await request(g, 'GET', '/metrics');
  assert.equal(metrics.statusCode, 200);
  assert.match(metrics.headers['content-type'] as string, /^text\/plain/);
  assert.match(metrics.body, /^switchboard_replica_rev 1$/m);
  assert.match(metrics.body, /^switchboard_replica_stale 1$/m);
});

test('before the first snapshot: /readyz says not loaded, lookups answer 503 SB_NOT_READY', async (t) => {
  const g = await gatewayApp();
  t.after(() => g.close());
  const ready = await request(g, 'GET', '/readyz');
  assert.equal(ready.statusCode, 503);
  assert.equal(ready.json().loaded, false);
  assert.equal(ready.json().epoch, null);
  // An empty answer would look like "no providers": before any snapshot, reads are refused instead.
  const lookup = await request(g, 'GET', '/v1/services/billing');
  assert.equal(lookup.statusCode, 503);
  assert.equal(lookup.json().code, 'SB_NOT_READY');
});

test('bodies over the limit answer 413 before any validation', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] }, bodyLimit: 64 * 1024 });
  t.after(() => g.close());
  const res = await request(g, 'PUT', '/v1/providers/p1', { ...good, meta: { big: 'x'.repeat(100_000) } });
  assert.equal(res.statusCode, 413);
  assert.equal(res.json().statusCode, 413);
  assert.equal(res.json().code, 'SB_BODY_TOO_LARGE');
  const bad = await request(g, 'PUT', '/v1/providers/p1', '{"service": "billing", ');
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().message, /not valid JSON/);
  assert.equal(bad.json().code, 'SB_INVALID_JSON');
  // text/plain is what any web page can send cross-site without a preflight: refused before parsing.
  const plain = await request(g, 'PUT', '/v1/providers/p1', undefined, { 'content-type': 'text/plain' });
  assert.equal(plain.statusCode, 415);
  assert.equal(plain.json().code, 'SB_UNSUPPORTED_MEDIA_TYPE');
  const xml = await request(g, 'PUT', '/v1/providers/p1', '<provider/>', { 'content-type': 'application/xml' });
  assertDocumentedError('PUT', '/v1/providers/p1', xml, 415);
  assert.equal(xml.json().code, 'SB_UNSUPPORTED_MEDIA_TYPE');
});

// Fastify's own parsing errors (FST_ERR_CTP_*) are answered with our codes (src/gateway/framework-errors.ts).
test('every 4xx answer, including the framework own, has a code listed in the table and the document', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] } });
  t.after(() => g.close());
  const broken = await request(g, 'PUT', '/v1/providers/p1', '{"x": ');
  assert.equal(assertDocumentedError('PUT', '/v1/providers/p1', broken, 400).code, 'SB_INVALID_JSON');
  const empty = await request(g, 'POST', '/v1/providers', undefined, { 'content-type': 'application/json' });
  assert.equal(assertDocumentedError('POST', '/v1/providers', empty, 400).code, 'SB_INVALID_JSON');
  const huge = { ...good, meta: { big: 'x'.repeat(100_000) } };
  const large = await request(g, 'PUT', '/v1/providers/p1', huge);
  assert.equal(assertDocumentedError('PUT', '/v1/providers/p1', large, 413).code, 'SB_BODY_TOO_LARGE');
  const unknown = await request(g, 'GET', '/v1/nothing-here');
  assert.equal(unknown.statusCode, 404);
  assert.ok(unknown.json().code in ERROR_CODES, `404 of an unknown route: code ${unknown.json().code}`);
  // A known path with a method it does not take is "no route for this method and path" (Fastify has no 405).
  const wrongMethod = await request(g, 'PATCH', '/v1/providers/p1');
  assert.equal(wrongMethod.statusCode, 404, 'a known path with another method');
  assert.equal(wrongMethod.json().code, 'SB_ROUTE_NOT_FOUND');
});

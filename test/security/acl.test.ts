/**
 * Tokens and ACLs at the gateway, against a real in-process leader (its store makes the bootstrap token from a
 * file) and a gateway with `acl: 'on'`: every route × {no token, read token, write token of another service, the
 * right token, admin} in one table (through `inject()`), lists filtered rather than refused, WebSocket and SSE
 * with and without tokens, and issue 12's attacker list refused. The CLI's `acl` commands run against a real
 * `switchboard start` process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startCluster, type Cluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { spawnRole } from '../../harness/process.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';
import { runCli } from '../helpers/cli.ts';

const BOOTSTRAP = 'bootstrap-secret-for-tests-0123456789';
const COLUMNS = ['none', 'read', 'other', 'right', 'admin'] as const;
type Column = (typeof COLUMNS)[number];

const billing = { service: 'billing', host: '10.1.0.1', port: 8080, protocol: 'http' };
const orders = { service: 'orders', host: '10.1.0.2', port: 8080, protocol: 'http' };

interface Setup {
  c: Cluster;
  secrets: Record<Column, string | undefined>;
  accessors: Record<string, string>;
  call: (
    who: Column,
    method: string,
    url: string,
    body?: unknown,
  ) => Promise<{ statusCode: number; json: () => any; headers: Record<string, unknown> }>;
}

/** A cluster with ACLs on, three policies and a token for each column. */
async function setup(t: { after(fn: () => Promise<void> | void): void }): Promise<Setup> {
  const dir = tempDir();
  const file = join(dir.path, 'bootstrap-token');
  writeFileSync(file, `${BOOTSTRAP}\n`);
  const c = await startCluster({ workers: 0, leader: { bootstrapTokenFile: file }, gateway: { acl: 'on' } });
  t.after(async () => {
    await c.close();
    dir.remove();
  });
  const secrets: Record<Column, string | undefined> = {
    none: undefined,
    read: undefined,
    other: undefined,
    right: undefined,
    admin: BOOTSTRAP,
  };
  const call: Setup['call'] = (who, method, url, body) => {
    const headers: Record<string, string> = {};
    if (secrets[who]) headers.authorization = `Bearer ${secrets[who]}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return c.gateway.app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  };
  // The gateway fetches the ACL state the leader made at its first start.
  await waitFor(async () => (await call('admin', 'GET', '/v1/acl/token/self')).statusCode === 200, {
    what: 'bootstrap token known to the gateway',
  });
  const policies: Record<string, object> = {
    'billing-read': { rules: [{ service: 'billing', access: 'read' }] },
    'orders-write': { rules: [{ service: 'orders', access: 'write' }] },
    'billing-write': { rules: [{ prefix: 'bill', access: 'write' }] },
  };
  for (const [name, body] of Object.entries(policies))
    assert.equal((await call('admin', 'PUT', `/v1/acl/policies/${name}`, body)).statusCode, 201, name);
  const accessors: Record<string, string> = {};
  for (const [who, policy] of [
    ['read', 'billing-read'],
    ['other', 'orders-write'],
    ['right', 'billing-write'],
  ] as const) {
    const res = await call('admin', 'POST', '/v1/acl/tokens', { policies: [policy], description: who });
    assert.equal(res.statusCode, 201, res.json().message);
    secrets[who] = res.json().secret;
    accessors[who] = res.json().accessor;
  }
  return { c, secrets, accessors, call };
}

test('every route × {none, read, other service, right, admin}: 401, 403 or allowed, as ROUTE_NEEDS says', async (t) => {
  const s = await setup(t);
  const { call } = s;
  const put = await call('right', 'PUT', '/v1/providers/p-billing', billing);
  assert.equal(put.statusCode, 201);
  // The provider records the token that registered it.
  assert.equal(put.json().owner, s.accessors.right);
  assert.equal((await call('right', 'PUT', '/v1/providers/p-billing-del', { ...billing, port: 8081 })).statusCode, 201);
  assert.equal((await call('other', 'PUT', '/v1/providers/p-orders', orders)).statusCode, 201);
  const scratch = await call('admin', 'POST', '/v1/acl/tokens', { policies: [] });

  // [method, url, body, expected status for none, read, other, right, admin] — run column by column, in order.
  const A = 'admin-only';
  const rows: Array<[string, string, unknown, number[] | typeof A]> = [
    ['GET', '/healthz', undefined, [200, 200, 200, 200, 200]],
    ['GET', '/readyz', undefined, [200, 200, 200, 200, 200]],
    ['GET', '/docs/json', undefined, [200, 200, 200, 200, 200]],
    ['GET', '/ui/', undefined, [200, 200, 200, 200, 200]],
    ['GET', '/v1/status/leader', undefined, [200, 200, 200, 200, 200]],
    ...['agent', 'catalog', 'health', 'kv', 'session', 'txn', 'event', 'operator'].map(
      (prefix) => ['PUT', `/v1/${prefix}/x`, {}, [405, 405, 405, 405, 405]] as [string, string, unknown, number[]],
    ),
    ['GET', '/metrics', undefined, [401, 200, 200, 200, 200]],
    ['GET', '/v1/services', undefined, [401, 200, 200, 200, 200]],
    ['GET', '/v1/services/billing', undefined, [401, 200, 403, 200, 200]],
    ['GET', '/v1/providers/p-billing', undefined, [401, 200, 403, 200, 200]],
    ['GET', '/v1/sd/prometheus', undefined, [401, 200, 200, 200, 200]],
    ['GET', '/v1/catalog/services', undefined, [401, 200, 200, 200, 200]],
    ['GET', '/v1/catalog/service/billing', undefined, [401, 200, 200, 200, 200]],
    ['GET', '/v1/health/service/billing', undefined, [401, 200, 200, 200, 200]],
    ['GET', '/v1/health/checks/billing', undefined, [401, 200, 200, 200, 200]],
    ['GET', '/v1/agent/self', undefined, [401, 200, 200, 200, 200]],
    ['GET', '/v1/catalog/datacenters', undefined, [401, 200, 200, 200, 200]],
    ['PUT', '/v1/providers/p-billing', billing, [401, 403, 403, 200, 200]],
    // The id derives from service, host, port and protocol: new for the first allowed token, the same for the next.
    ['POST', '/v1/providers', { ...billing, port: 8090 }, [401, 403, 403, 201, 200]],
    // No TTL check on this provider: the allowed tokens reach the handler and get its 409.
    // A batch answers 200 to any token; each item carries its own 403 (checked below).
    ['PUT', '/v1/providers', [{ ...billing, id: 'p-batch', port: 8095 }], [401, 200, 200, 200, 200]],
    ['PUT', '/v1/providers/p-billing/ttl', undefined, [401, 403, 403, 409, 409]],
    ['PUT', '/v1/providers/p-billing/maintenance', { enabled: false }, [401, 403, 403, 200, 200]],
    ['DELETE', '/v1/providers/p-billing-del', undefined, [401, 403, 403, 204, 404]],
    ['GET', '/v1/admin/cluster', undefined, A],
    ['POST', '/v1/admin/release-guard', undefined, A],
    ['GET', '/v1/admin/snapshot', undefined, A],
    ['GET', '/v1/acl/token/self', undefined, [401, 200, 200, 200, 200]],
    ['GET', '/v1/acl/tokens', undefined, A],
    ['POST', '/v1/acl/tokens', { policies: ['billing-read'] }, [401, 403, 403, 403, 201]],
    ['GET', `/v1/acl/tokens/${s.accessors.read}`, undefined, A],
    ['PUT', `/v1/acl/tokens/${s.accessors.read}`, { description: 'reads billing' }, A],
    ['DELETE', `/v1/acl/tokens/${scratch.json().accessor}`, undefined, [401, 403, 403, 403, 204]],
    ['GET', '/v1/acl/policies', undefined, A],
    ['GET', '/v1/acl/policies/billing-read', undefined, A],
    ['PUT', '/v1/acl/policies/scratch', { rules: [] }, [401, 403, 403, 403, 201]],
    ['DELETE', '/v1/acl/policies/scratch', undefined, [401, 403, 403, 403, 204]],
  ];
  const failures: string[] = [];
  for (const [method, url, body, expected] of rows) {
    const want = expected === A ? [401, 403, 403, 403, 200] : expected;
    for (const [i, who] of COLUMNS.entries()) {
      const res = await call(who, method, url, body);
      if (res.statusCode !== want[i]) failures.push(`${who} ${method} ${url}: ${res.statusCode}, want ${want[i]}`);
      else if (res.statusCode === 401) assert.equal(res.json().code, 'SB_UNAUTHENTICATED');
      else if (res.statusCode === 403) assert.equal(res.json().code, 'SB_PERMISSION_DENIED', `${who} ${method} ${url}`);
    }
  }
  assert.deepEqual(failures, []);

  // The table covers every operation of the OpenAPI document (but the two streams, tested over sockets below).
  const doc = JSON.parse(readFileSync('openapi/openapi.json', 'utf8')) as { paths: Record<string, object> };
  const covered = new Set(rows.map(([m, u]) => `${m} ${u}`));
  const pattern = (p: string): RegExp => new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+').replace('*', '.*')}$`);
  const missing: string[] = [];
  for (const [path, ops] of Object.entries(doc.paths))
    for (const method of Object.keys(ops).map((m) => m.toUpperCase())) {
      if (path === '/v1/watch' || path === '/v1/events') continue;
      if (![...covered].some((k) => k.startsWith(`${method} `) && pattern(path).test(k.slice(method.length + 1))))
        if (!(path.includes('*') && method !== 'PUT')) missing.push(`${method} ${path}`);
    }
  assert.deepEqual(missing, []);

  // Batch items are checked one by one, as their single route: write on the body's service.
  const batch = async (who: 'read' | 'other' | 'right') =>
    (await call(who, 'PUT', '/v1/providers', [{ ...billing, id: 'p-batch', port: 8095 }])).json().results[0];
  assert.equal((await batch('read')).error.code, 'SB_PERMISSION_DENIED');
  assert.equal((await batch('other')).status, 403);
  assert.equal((await batch('right')).provider.owner, s.accessors.right);

  // 403 names what is missing.
  const denied = await call('other', 'GET', '/v1/services/billing');
  assert.match(denied.json().message, /read on service 'billing'/);
  assert.match((await call('read', 'GET', '/v1/admin/cluster')).json().message, /admin/);
});

test('lists are filtered to what the token reads; Consul reads filter like Consul', async (t) => {
  const s = await setup(t);
  const { call } = s;
  assert.equal((await call('right', 'PUT', '/v1/providers/p-billing', billing)).statusCode, 201);
  assert.equal((await call('other', 'PUT', '/v1/providers/p-orders', orders)).statusCode, 201);
  const names = async (who: Column): Promise<string[]> =>
    (await call(who, 'GET', '/v1/services')).json().services.map((x: { name: string }) => x.name);
  assert.deepEqual(await names('read'), ['billing']);
  assert.deepEqual(await names('other'), ['orders']);
  assert.deepEqual(await names('admin'), ['billing', 'orders']);
  assert.deepEqual(Object.keys((await call('read', 'GET', '/v1/catalog/services')).json()), ['billing']);
  const hidden = await call('other', 'GET', '/v1/health/service/billing');
  assert.deepEqual(hidden.json(), []);
  assert.equal(hidden.headers['x-consul-results-filtered-by-acls'], 'true');
  const sd = (await call('read', 'GET', '/v1/sd/prometheus?state=any')).json() as Array<{ labels: object }>;
  assert.deepEqual(
    sd.map((g) => (g.labels as Record<string, string>).__meta_switchboard_service),
    ['billing'],
  );
  // A token given over X-Switchboard-Token works the same; a made-up one is 401.
  const viaHeader = await s.c.gateway.app.inject({
    url: '/v1/services/billing',
    headers: { 'x-switchboard-token': s.secrets.read! },
  });
  assert.equal(viaHeader.statusCode, 200);
  const forged = await s.c.gateway.app.inject({ url: '/v1/services', headers: { authorization: 'Bearer forged' } });
  assert.equal(forged.statusCode, 401);
  // A revoked token stops working on this gateway as soon as the revocation is answered.
  assert.equal((await call('admin', 'DELETE', `/v1/acl/tokens/${s.accessors.read}`)).statusCode, 204);
  assert.equal((await call('read', 'GET', '/v1/services')).statusCode, 401);
});

/** Opens a WebSocket and collects its messages; `refused` is the HTTP status of a refused upgrade. */
function openWs(url: string): Promise<{ ws?: WebSocket; refused?: number; messages: any[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: any[] = [];
    ws.on('message', (m) => messages.push(JSON.parse((m as Buffer).toString())));
    ws.on('open', () => resolve({ ws, messages }));
    ws.on('unexpected-response', (_req, res) => {
      resolve({ refused: res.statusCode, messages });
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
  });
}

test('WebSocket and SSE: refused without a token, filtered to what the token reads (token in the query)', async (t) => {
  const s = await setup(t);
  const { call } = s;
  assert.equal((await call('right', 'PUT', '/v1/providers/p-billing', billing)).statusCode, 201);
  assert.equal((await call('other', 'PUT', '/v1/providers/p-orders', orders)).statusCode, 201);
  const wsUrl = `${s.c.url.replace(/^http/, 'ws')}/v1/watch`;

  assert.equal((await openWs(wsUrl)).refused, 401);
  assert.equal((await openWs(`${wsUrl}?token=forged`)).refused, 401);
  assert.equal((await openWs(`${wsUrl}?service=orders&token=${s.secrets.read}`)).refused, 403);
  const watch = await openWs(`${wsUrl}?token=${s.secrets.read}`);
  t.after(() => watch.ws?.terminate());
  const snapshot = await waitFor(() => watch.messages.find((m) => m.type === 'snapshot'), { what: 'WS snapshot' });
  assert.deepEqual(
    snapshot.providers.map((p: { id: string }) => p.id),
    ['p-billing'],
  );

  assert.equal((await http('GET', `${s.c.url}/v1/events`)).status, 401);
  const sse = await fetch(`${s.c.url}/v1/events`, { headers: { authorization: `Bearer ${s.secrets.read}` } });
  assert.equal(sse.status, 200);
  const reader = sse.body!.getReader();
  t.after(() => reader.cancel());
  let text = '';
  const sseHas = (what: RegExp) =>
    waitFor(
      async () => {
        const { value } = await reader.read();
        text += Buffer.from(value ?? []).toString();
        return what.test(text);
      },
      { what: `SSE ${what}` },
    );

  // A change of orders, then one of billing: the read token's streams carry only billing's.
  assert.equal((await call('other', 'PUT', '/v1/providers/p-orders', { ...orders, tags: ['x'] })).statusCode, 200);
  assert.equal((await call('right', 'PUT', '/v1/providers/p-billing', { ...billing, tags: ['y'] })).statusCode, 200);
  await waitFor(() => watch.messages.some((m) => m.type === 'event' && m.service === 'billing'), {
    what: 'billing event on the WebSocket',
  });
  assert.deepEqual(
    watch.messages.filter((m) => m.type === 'event').map((m) => m.service),
    ['billing'],
  );
  await sseHas(/"service":"billing"/);
  assert.doesNotMatch(text, /"service":"orders"/);
});

/** An SSE stream read in the background: its text so far, and whether the gateway ended it. */
async function openSse(url: string, secret: string) {
  const res = await fetch(url, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const stream = { text: '', ended: false, cancel: () => reader.cancel().catch(() => undefined) };
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stream.text += Buffer.from(value).toString();
    }
    stream.ended = true;
  })().catch(() => (stream.ended = true));
  return stream;
}

test('revocation reaches open streams: a deleted token ends its WS (4401) and SSE (event: error); a narrowed policy stops only what it no longer reads; a blocking query answers by the token at answer time', async (t) => {
  const s = await setup(t);
  const { call } = s;
  assert.equal((await call('right', 'PUT', '/v1/providers/p-billing', billing)).statusCode, 201);
  assert.equal((await call('other', 'PUT', '/v1/providers/p-orders', orders)).statusCode, 201);
  const both = {
    rules: [
      { service: 'billing', access: 'read' },
      { service: 'orders', access: 'read' },
    ],
  };
  assert.equal((await call('admin', 'PUT', '/v1/acl/policies/both-read', both)).statusCode, 201);
  const made = await call('admin', 'POST', '/v1/acl/tokens', { policies: ['both-read'] });
  const wide = made.json().secret as string;
  const wsUrl = `${s.c.url.replace(/^http/, 'ws')}/v1/watch`;
  const closed = (ws: WebSocket) =>
    new Promise<{ code: number; reason: any }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: JSON.parse(reason.toString() || 'null') })),
    );
  const snapshotOf = (w: { messages: any[] }) =>
    waitFor(() => w.messages.find((m) => m.type === 'snapshot'), { what: 'WS snapshot' });

  // Streams of the token about to be deleted, and of the one about to be narrowed.
  const doomed = await openWs(`${wsUrl}?token=${s.secrets.read}`);
  const doomedSse = await openSse(`${s.c.url}/v1/events`, s.secrets.read!);
  const watch = await openWs(`${wsUrl}?token=${wide}`);
  const onlyOrders = await openWs(`${wsUrl}?service=orders&token=${wide}`);
  const sse = await openSse(`${s.c.url}/v1/events`, wide);
  t.after(() => {
    for (const w of [doomed, watch, onlyOrders]) w.ws?.terminate();
    for (const x of [doomedSse, sse]) void x.cancel();
  });
  await Promise.all([snapshotOf(doomed), snapshotOf(watch), snapshotOf(onlyOrders)]);
  await waitFor(() => /event: hello/.test(doomedSse.text) && /event: hello/.test(sse.text), { what: 'SSE hello' });

  // A blocking query on orders, waiting when the policy narrows.
  const index = Number((await call('admin', 'GET', '/v1/services/orders')).headers['x-switchboard-index']);
  const blocked = s.c.gateway.app.inject({
    url: `/v1/services/orders?index=${index}&wait=30s`,
    headers: { authorization: `Bearer ${wide}` },
  });

  const doomedClosed = closed(doomed.ws!);
  assert.equal((await call('admin', 'DELETE', `/v1/acl/tokens/${s.accessors.read}`)).statusCode, 204);
  const end = await doomedClosed;
  assert.equal(end.code, 4401);
  assert.equal(end.reason.code, 'SB_UNAUTHENTICATED');
  assert.match(end.reason.message, new RegExp(s.accessors.read));
  await waitFor(() => doomedSse.ended, { what: 'the SSE stream of the deleted token ended' });
  const last = /event: error\ndata: (.*)\n\n$/.exec(doomedSse.text);
  assert.ok(last, doomedSse.text.slice(-200));
  assert.deepEqual((({ statusCode, code }) => ({ statusCode, code }))(JSON.parse(last[1])), {
    statusCode: 401,
    code: 'SB_UNAUTHENTICATED',
  });

  // Narrowed to billing: the orders-only stream ends with 4403, the others stay and lose orders' events.
  const ordersClosed = closed(onlyOrders.ws!);
  const narrowed = { rules: [{ service: 'billing', access: 'read' }] };
  assert.equal((await call('admin', 'PUT', '/v1/acl/policies/both-read', narrowed)).statusCode, 200);
  const forbidden = await ordersClosed;
  assert.equal(forbidden.code, 4403);
  assert.equal(forbidden.reason.code, 'SB_PERMISSION_DENIED');
  assert.equal(
    await s.c.gateway.metrics.get('switchboard_audit_events_total', { action: 'stream.revoked', result: 'refused' }),
    3,
  );

  const seen = watch.messages.length;
  const sseSeen = sse.text.length;
  assert.equal((await call('other', 'PUT', '/v1/providers/p-orders', { ...orders, tags: ['x'] })).statusCode, 200);
  assert.equal((await call('right', 'PUT', '/v1/providers/p-billing', { ...billing, tags: ['y'] })).statusCode, 200);
  await waitFor(() => watch.messages.slice(seen).some((m) => m.type === 'event' && m.service === 'billing'), {
    what: 'billing event after the narrowing',
  });
  await waitFor(() => /"service":"billing"/.test(sse.text.slice(sseSeen)), { what: 'billing on SSE' });
  assert.deepEqual(
    watch.messages.slice(seen).map((m) => m.service),
    ['billing'],
  );
  assert.doesNotMatch(sse.text.slice(sseSeen), /"service":"orders"/);
  assert.equal(watch.ws!.readyState, WebSocket.OPEN);
  assert.equal(sse.ended, false);

  // The change of orders woke the blocking query; by then the token no longer reads orders.
  const answer = await blocked;
  assert.equal(answer.statusCode, 403);
  assert.equal(answer.json().code, 'SB_PERMISSION_DENIED');

  // Narrowed to nothing: the unfiltered streams end too (4403, event: error 403), and cannot be opened again.
  const watchClosed = closed(watch.ws!);
  assert.equal((await call('admin', 'PUT', '/v1/acl/policies/both-read', { rules: [] })).statusCode, 200);
  assert.equal((await watchClosed).code, 4403);
  await waitFor(() => sse.ended, { what: 'the SSE stream of the narrowed token ended' });
  assert.match(
    sse.text,
    /event: error\ndata: \{"statusCode":403,"error":"Forbidden",.*"code":"SB_PERMISSION_DENIED"\}\n\n$/,
  );
  assert.equal((await openWs(`${wsUrl}?token=${wide}`)).refused, 403);
});

test("issue 12's attacker list fails with ACLs on: deregister, maintenance, guard release, re-point billing", async (t) => {
  const s = await setup(t);
  const { call } = s;
  const registered = await call('right', 'PUT', '/v1/providers/p-billing', billing);
  assert.equal(registered.statusCode, 201);
  for (const who of ['none', 'read', 'other'] as const) {
    const expect = who === 'none' ? 401 : 403;
    assert.equal((await call(who, 'DELETE', '/v1/providers/p-billing')).statusCode, expect, `${who} deregister`);
    const maint = await call(who, 'PUT', '/v1/providers/p-billing/maintenance', { enabled: true });
    assert.equal(maint.statusCode, expect, `${who} maintenance`);
    assert.equal((await call(who, 'POST', '/v1/admin/release-guard')).statusCode, expect, `${who} release`);
    const repoint = await call(who, 'PUT', '/v1/providers/p-billing', { ...billing, host: '203.0.113.66' });
    assert.equal(repoint.statusCode, expect, `${who} re-point`);
    // Moving the id into a service the attacker may write needs write on billing too.
    const move = await call(who, 'PUT', '/v1/providers/p-billing', { ...orders, host: '203.0.113.66' });
    assert.equal(move.statusCode, expect, `${who} move`);
    // Registering a second billing provider at the attacker's host is a write to billing as well.
    const extra = await call(who, 'POST', '/v1/providers', { ...billing, host: '203.0.113.66' });
    assert.equal(extra.statusCode, expect, `${who} extra provider`);
  }
  // A token's quota: the leader refuses the registration that would pass it.
  const quota = await call('admin', 'POST', '/v1/acl/tokens', { policies: ['billing-write'], maxProviders: 1 });
  const capped = { authorization: `Bearer ${quota.json().secret}`, 'content-type': 'application/json' };
  const put = (id: string, port: number) =>
    s.c.gateway.app.inject({
      method: 'PUT',
      url: `/v1/providers/${id}`,
      headers: capped,
      payload: { ...billing, port },
    });
  assert.equal((await put('q1', 9101)).statusCode, 201);
  assert.equal((await put('q1', 9101)).statusCode, 200, 're-registering its own provider does not count twice');
  const over = await put('q2', 9102);
  assert.equal(over.statusCode, 403);
  assert.equal(over.json().code, 'SB_QUOTA_EXCEEDED');
  assert.equal((await call('admin', 'DELETE', '/v1/providers/q1')).statusCode, 204);

  const after = (await call('admin', 'GET', '/v1/services/billing')).json();
  assert.deepEqual(
    after.providers.map((p: { id: string; host: string; state: string }) => [p.id, p.host, p.state]),
    [['p-billing', billing.host, registered.json().state]],
  );
});

test('CLI: switchboard acl policy create and token create against a real switchboard start', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const file = join(dir.path, 'bootstrap-token');
  writeFileSync(file, BOOTSTRAP);
  const child = spawnRole('start', [
    '--data-dir',
    join(dir.path, 'data'),
    '--bind',
    'tcp://127.0.0.1:*',
    '--http-port',
    '0',
    '--zmq-pub',
    'off',
    '--zmq-snapshot',
    'off',
    '--acl',
    'on',
    '--bootstrap-token-file',
    file,
  ]);
  t.after(() => child.stop());
  const url = (await child.waitForLine(/^switchboard gateway: url=(\S+)/, 60_000))[1];
  const admin = { SWITCHBOARD_GATEWAY: url, SWITCHBOARD_TOKEN: BOOTSTRAP };
  await waitFor(
    async () =>
      (await http('GET', `${url}/v1/acl/token/self`, undefined, { authorization: `Bearer ${BOOTSTRAP}` })).status ===
      200,
    { what: 'bootstrap token known', timeoutMs: 20_000 },
  );
  const policy = await runCli(['acl', 'policy', 'create', 'billing-write', '--rule', 'service=billing:write'], {
    env: admin,
  });
  assert.equal(policy.code, 0, policy.stderr);
  assert.match(policy.stdout, /service=billing:write/);
  const token = await runCli(['acl', 'token', 'create', '--policy', 'billing-write', '--json'], { env: admin });
  assert.equal(token.code, 0, token.stderr);
  const secret = (JSON.parse(token.stdout) as { secret: string }).secret;
  const reg = await runCli(
    ['register', '--service', 'billing', '--host', '10.0.0.9', '--port', '80', '--token', secret],
    {
      env: { SWITCHBOARD_GATEWAY: url },
    },
  );
  assert.equal(reg.code, 0, reg.stderr);
  assert.match(reg.stdout, /^registered /);
});

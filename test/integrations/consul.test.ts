/**
 * The Consul-compatible read API, checked two ways: with a Consul client library nobody here wrote (the npm
 * `consul` package: catalog and health reads, `passing` and tags, a blocking watch that wakes on a change), and
 * field by field against the shapes of Consul's API documentation, which Prometheus, Traefik and Spring Cloud
 * Consul parse.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Consul from 'consul';
import { startCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';

async function seed(url: string): Promise<void> {
  const reg = (id: string, body: object): Promise<unknown> =>
    http('PUT', `${url}/v1/providers/${id}`, { service: 'billing', protocol: 'http', ...body });
  await reg('billing-1', { host: '10.0.0.1', port: 9001, tags: ['blue', 'v1'], meta: { version: '1.4.2' } });
  // Pending until its first TTL pass: Consul's "warning".
  await reg('billing-2', { host: '10.0.0.2', port: 9002, tags: ['green'], check: { type: 'ttl', ttlMs: 60_000 } });
  await reg('billing-3', { host: '10.0.0.3', port: 9003, tags: ['blue'] });
  const m = await http('PUT', `${url}/v1/providers/billing-3/maintenance`, { enabled: true, reason: 'upgrade' });
  assert.equal(m.status, 200);
  await http('PUT', `${url}/v1/providers/search-1`, {
    service: 'search',
    host: 'search.local',
    port: 80,
    protocol: 'http',
  });
}

test('the npm consul client reads catalog and health, with passing and tags, and its watch wakes', async (t) => {
  const cluster = await startCluster();
  t.after(() => cluster.close());
  await seed(cluster.url);
  const port = Number(new URL(cluster.url).port);
  const consul = new Consul({ host: '127.0.0.1', port });

  assert.deepEqual(await consul.catalog.service.list(), { billing: ['blue', 'green', 'v1'], search: [] });
  const nodes = await consul.catalog.service.nodes('billing');
  assert.deepEqual(
    nodes.map((n: any) => [n.ServiceID, n.ServiceAddress, n.ServicePort]),
    [
      ['billing-1', '10.0.0.1', 9001],
      ['billing-2', '10.0.0.2', 9002],
      ['billing-3', '10.0.0.3', 9003],
    ],
  );
  const all = await consul.health.service('billing');
  assert.deepEqual(
    all.map((e: any) => [e.Service.ID, e.Checks.map((c: any) => c.Status)]),
    [
      ['billing-1', ['passing']],
      ['billing-2', ['warning']],
      ['billing-3', ['critical']],
    ],
  );
  const passing = await consul.health.service({ service: 'billing', passing: true });
  assert.deepEqual(
    passing.map((e: any) => e.Service.ID),
    ['billing-1'],
  );
  const blue = await consul.health.service({ service: 'billing', tag: 'blue' });
  assert.deepEqual(
    blue.map((e: any) => e.Service.ID),
    ['billing-1', 'billing-3'],
  );
  assert.deepEqual(await consul.health.service('nothing'), []);
  const self = await consul.agent.self();
  assert.equal(self.Config.Datacenter, 'dc1');
  assert.equal(await consul.status.leader(), `127.0.0.1:${port}`);

  // A blocking watch: the first answer, then a wake-up when billing-2 passes its TTL and becomes passing.
  const watch = consul.watch({
    // The library calls the method with its own context, as its docs show.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    method: consul.health.service,
    options: { service: 'billing', passing: 'true', wait: '10s' },
  });
  t.after(() => watch.end());
  const changes: string[][] = [];
  const errors: unknown[] = [];
  watch.on('change', (data: any[]) => changes.push(data.map((e) => e.Service.ID)));
  watch.on('error', (err: unknown) => errors.push(err));
  await waitFor(() => changes.length >= 1, { what: 'first watch answer' });
  assert.deepEqual(changes[0], ['billing-1']);
  const started = Date.now();
  await waitFor(async () => (await http('PUT', `${cluster.url}/v1/providers/billing-2/ttl`)).status === 204, {
    what: 'TTL pass accepted',
  });
  await waitFor(() => changes.length >= 2, { what: 'watch woken by the change' });
  assert.deepEqual(changes[changes.length - 1], ['billing-1', 'billing-2']);
  assert.ok(Date.now() - started < 5000, 'woken by the change, not by the wait timeout');
  assert.deepEqual(errors, []);
});

/** Key sets and types, as Consul's API documentation gives them. */
const CATALOG_FIELDS: Record<string, string> = {
  ID: 'string',
  Node: 'string',
  Address: 'string',
  Datacenter: 'string',
  TaggedAddresses: 'object',
  NodeMeta: 'object',
  ServiceKind: 'string',
  ServiceID: 'string',
  ServiceName: 'string',
  ServiceTags: 'array',
  ServiceAddress: 'string',
  ServiceTaggedAddresses: 'object',
  ServiceWeights: 'object',
  ServiceMeta: 'object',
  ServicePort: 'number',
  ServiceEnableTagOverride: 'boolean',
  CreateIndex: 'number',
  ModifyIndex: 'number',
};
const NODE_FIELDS: Record<string, string> = {
  ID: 'string',
  Node: 'string',
  Address: 'string',
  Datacenter: 'string',
  TaggedAddresses: 'object',
  Meta: 'object',
  CreateIndex: 'number',
  ModifyIndex: 'number',
};
const SERVICE_FIELDS: Record<string, string> = {
  ID: 'string',
  Service: 'string',
  Tags: 'array',
  Address: 'string',
  TaggedAddresses: 'object',
  Meta: 'object',
  Port: 'number',
  Weights: 'object',
  EnableTagOverride: 'boolean',
  CreateIndex: 'number',
  ModifyIndex: 'number',
};
const CHECK_FIELDS: Record<string, string> = {
  Node: 'string',
  CheckID: 'string',
  Name: 'string',
  Status: 'string',
  Notes: 'string',
  Output: 'string',
  ServiceID: 'string',
  ServiceName: 'string',
  ServiceTags: 'array',
  Type: 'string',
  CreateIndex: 'number',
  ModifyIndex: 'number',
};

function assertShape(value: any, fields: Record<string, string>, what: string): void {
  assert.deepEqual(Object.keys(value).sort(), Object.keys(fields).sort(), `${what}: field names`);
  for (const [k, type] of Object.entries(fields)) {
    const actual = Array.isArray(value[k]) ? 'array' : value[k] === null ? 'null' : typeof value[k];
    assert.equal(actual, type, `${what}.${k}`);
  }
}

test('answers match Consul’s documented shapes field by field, with its headers, and writes answer 405', async (t) => {
  const cluster = await startCluster();
  t.after(() => cluster.close());
  await seed(cluster.url);
  const url = cluster.url;

  const catalog = await http('GET', `${url}/v1/catalog/service/billing`);
  assert.equal(catalog.status, 200);
  for (const entry of catalog.body) assertShape(entry, CATALOG_FIELDS, 'catalog entry');
  const b1 = catalog.body[0];
  assert.deepEqual(b1.ServiceTags, ['blue', 'v1']);
  assert.deepEqual(b1.ServiceMeta, { version: '1.4.2' });
  assert.deepEqual(b1.ServiceWeights, { Passing: 1, Warning: 1 });
  assert.deepEqual(b1.ServiceTaggedAddresses.lan, { Address: '10.0.0.1', Port: 9001 });
  assert.equal(b1.Node, '10.0.0.1');
  assert.match(b1.ID, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

  const health = await http('GET', `${url}/v1/health/service/billing`);
  for (const entry of health.body) {
    assert.deepEqual(Object.keys(entry).sort(), ['Checks', 'Node', 'Service']);
    assertShape(entry.Node, NODE_FIELDS, 'health Node');
    assertShape(entry.Service, SERVICE_FIELDS, 'health Service');
    for (const c of entry.Checks) assertShape(c, CHECK_FIELDS, 'health check');
  }
  const maint = health.body.find((e: any) => e.Service.ID === 'billing-3');
  assert.equal(maint.Checks[0].CheckID, '_service_maintenance:billing-3');
  assert.equal(maint.Checks[0].Status, 'critical');
  // Consul's own ?passing form (no value) and repeated tags (every one must match).
  assert.deepEqual(
    (await http('GET', `${url}/v1/health/service/billing?passing`)).body.map((e: any) => e.Service.ID),
    ['billing-1'],
  );
  assert.deepEqual(
    (await http('GET', `${url}/v1/health/service/billing?tag=blue&tag=v1`)).body.map((e: any) => e.Service.ID),
    ['billing-1'],
  );
  // Unknown parameters Consul clients send (dc, stale, near) are accepted.
  assert.equal((await http('GET', `${url}/v1/catalog/services?dc=dc1&stale`)).status, 200);

  // Headers: X-Consul-Index (≥ 1, per service), KnownLeader, LastContact.
  const index = Number(health.headers.get('x-consul-index'));
  assert.ok(Number.isInteger(index) && index >= 1);
  assert.equal(health.headers.get('x-consul-knownleader'), 'true');
  assert.match(health.headers.get('x-consul-lastcontact') ?? '', /^\d+$/);

  // A blocking query holds until the service changes past the index...
  const blocked = http('GET', `${url}/v1/health/service/billing?index=${index}&wait=10s`);
  const t0 = Date.now();
  await http('PUT', `${url}/v1/providers/billing-4`, {
    service: 'billing',
    host: '10.0.0.4',
    port: 9004,
    protocol: 'http',
  });
  const woke = await blocked;
  assert.ok(Date.now() - t0 < 5000);
  assert.ok(Number(woke.headers.get('x-consul-index')) > index);
  assert.equal(woke.body.length, 4);
  // ...and ends at the wait when nothing changes; another service's change does not wake it.
  const quiet = Number(woke.headers.get('x-consul-index'));
  const t1 = Date.now();
  const waiting = http('GET', `${url}/v1/catalog/service/billing?index=${quiet}&wait=1s`);
  await http('PUT', `${url}/v1/providers/search-2`, {
    service: 'search',
    host: '10.0.1.2',
    port: 80,
    protocol: 'http',
  });
  const timedOut = await waiting;
  assert.ok(Date.now() - t1 >= 900, 'held for the wait');
  assert.equal(Number(timedOut.headers.get('x-consul-index')), quiet);

  // Writes to Consul paths: 405, naming our own route.
  const write = await http('PUT', `${url}/v1/agent/service/register`, { Name: 'x', Port: 1 });
  assert.equal(write.status, 405);
  assert.equal(write.body.code, 'SB_READ_ONLY');
  assert.match(write.body.message, /PUT \/v1\/providers\/:id/);
  assert.equal(write.headers.get('allow'), 'GET');
  const dereg = await http('PUT', `${url}/v1/agent/service/deregister/billing-1`);
  assert.equal(dereg.status, 405);
  assert.match(dereg.body.message, /DELETE \/v1\/providers\/:id/);
  assert.equal((await http('PUT', `${url}/v1/kv/some/key`, 'not json')).status, 405);
});

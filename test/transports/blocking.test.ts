/** Blocking queries (`?index=&wait=`) over real HTTP: woken by their own service only, or by the timeout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { http } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { register } from './support.ts';

const waiting = async (c: Cluster): Promise<number> => c.gateway.metrics.get('switchboard_blocking_queries');

test('a blocking query returns on a change to its service, not on another one', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  await register(c.url, 'b1', 'billing', 9001);
  const first = await http('GET', `${c.url}/v1/services/billing`);
  const index = Number(first.headers.get('x-switchboard-index'));
  assert.equal(index, first.body.providers[0].rev, 'the index is the last change to this service');

  const started = Date.now();
  let answered = false;
  const blocked = http('GET', `${c.url}/v1/services/billing?index=${index}&wait=20s`).then((r) => {
    answered = true;
    return r;
  });
  await waitFor(async () => (await waiting(c)) === 1, { what: 'query waiting' });
  // A change to another service must not wake it; the later billing change must.
  const other = await register(c.url, 'o1', 'orders', 9101);
  const watchAll = await http('GET', `${c.url}/v1/services?index=${other - 1}&wait=5s`);
  assert.equal(Number(watchAll.headers.get('x-switchboard-index')), other, 'GET /v1/services wakes on any change');
  assert.equal(answered, false, 'a change to orders did not answer the billing query');
  const changed = await register(c.url, 'b2', 'billing', 9002);
  const res = await blocked;
  assert.equal(res.status, 200);
  assert.ok(Date.now() - started < 10_000);
  assert.equal(Number(res.headers.get('x-switchboard-index')), changed);
  assert.equal(res.body.rev, changed);
  assert.deepEqual(
    res.body.providers.map((p: any) => p.id),
    ['b1', 'b2'],
  );

  // An index already passed answers at once.
  const stale = await http('GET', `${c.url}/v1/services/billing?index=${index}&wait=20s`);
  assert.equal(Number(stale.headers.get('x-switchboard-index')), changed);
});

test('a blocking query returns at the timeout with the unchanged index', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const rev = await register(c.url, 'b1', 'billing', 9001);
  const started = Date.now();
  const res = await http('GET', `${c.url}/v1/services/billing?index=${rev}&wait=400ms`);
  const took = Date.now() - started;
  assert.equal(res.status, 200);
  // 400 ms plus at most 1/16 of jitter.
  assert.ok(took >= 390 && took < 2000, `took ${took} ms`);
  assert.equal(res.headers.get('x-switchboard-index'), String(rev));
  // A service nobody registered waits too (index 0), and answers an empty list.
  const none = await http('GET', `${c.url}/v1/services/nothing?index=0&wait=200ms`);
  assert.equal(none.status, 200);
  assert.equal(none.headers.get('x-switchboard-index'), '0');
  assert.deepEqual(none.body.providers, []);
});

test('a client that gives up frees its blocking query', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const rev = await register(c.url, 'b1', 'billing', 9001);
  const abort = new AbortController();
  const pending = fetch(`${c.url}/v1/services/billing?index=${rev}&wait=60s`, { signal: abort.signal }).catch(
    () => null,
  );
  await waitFor(async () => (await waiting(c)) === 1, { what: 'query waiting' });
  abort.abort();
  await pending;
  await waitFor(async () => (await waiting(c)) === 0, { what: 'query released' });
});

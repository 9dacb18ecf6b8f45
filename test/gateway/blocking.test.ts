/**
 * Blocking queries (`?index=&wait=`) at the route level: which change wakes which query, the timeout and its
 * units, resyncs, and a client that hangs up. Changes are applied to the gateway's replica as its leader feed would
 * (test/helpers/gateway-app.ts); that a real write wakes a real blocking query over HTTP is checked end to end in
 * test/e2e/core.test.ts, whose waits are blocking queries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../../harness/wait.ts';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.ts';
import { providerRecord } from '../helpers/records.ts';

const waiting = async (g: GatewayApp): Promise<number> =>
  Number(/^switchboard_blocking_queries (\d+)$/m.exec(await g.metrics.render())?.[1]);

/** A blocking GET through inject(), remembering when it was answered. */
function blocking(g: GatewayApp, url: string) {
  const state = { answered: false, at: 0 };
  const res = g.app.inject({ method: 'GET', url }).then((r) => {
    state.answered = true;
    state.at = Date.now();
    return r;
  });
  return { state, res };
}

test('a blocking query returns on a change to its service, not on another one', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [providerRecord('b1', 1)] } });
  t.after(() => g.close());
  const first = await g.app.inject({ method: 'GET', url: '/v1/services/billing' });
  const index = Number(first.headers['x-switchboard-index']);
  assert.equal(index, 1);

  const billing = blocking(g, `/v1/services/billing?index=${index}&wait=20s`);
  const everything = blocking(g, `/v1/services?index=${index}&wait=20s`);
  await waitFor(async () => (await waiting(g)) === 2, { what: 'two queries waiting' });

  // A change to another service wakes the query on every service, not the one on billing.
  const other = g.publish('registered', providerRecord('o1', 0, { service: 'orders' }));
  const all = await everything.res;
  assert.equal(all.statusCode, 200);
  assert.equal(Number(all.headers['x-switchboard-index']), other.rev, 'GET /v1/services wakes on any change');
  assert.deepEqual(
    all.json().services.map((s: { name: string }) => s.name),
    ['billing', 'orders'],
  );
  assert.equal(await waiting(g), 1, 'the billing query still waits');
  assert.equal(billing.state.answered, false, 'a change to orders did not answer the billing query');

  const changed = g.publish('registered', providerRecord('b2', 0));
  const res = await billing.res;
  assert.equal(res.statusCode, 200);
  assert.equal(Number(res.headers['x-switchboard-index']), changed.rev);
  assert.equal(res.json().rev, changed.rev);
  assert.deepEqual(
    res.json().providers.map((p: { id: string }) => p.id),
    ['b1', 'b2'],
  );
  assert.equal(await waiting(g), 0);

  // An index already passed answers at once.
  const passed = await g.app.inject({ method: 'GET', url: `/v1/services/billing?index=${index}&wait=20s` });
  assert.equal(Number(passed.headers['x-switchboard-index']), changed.rev);
  assert.equal(await waiting(g), 0);
});

test('a blocking query returns at the timeout with the unchanged index; wait takes ms, s, m or bare seconds', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [providerRecord('b1', 3)] } });
  t.after(() => g.close());
  const timed = async (url: string): Promise<{ ms: number; index: string; body: any }> => {
    const started = Date.now();
    const res = await g.app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 200, url);
    return { ms: Date.now() - started, index: res.headers['x-switchboard-index'] as string, body: res.json() };
  };
  // The wait plus at most 1/16 of jitter; the upper bounds leave room for a loaded machine.
  const ms = await timed('/v1/services/billing?index=3&wait=400ms');
  assert.ok(ms.ms >= 390 && ms.ms < 2500, `400ms took ${ms.ms} ms`);
  assert.equal(ms.index, '3');
  const bare = await timed('/v1/services/billing?index=3&wait=1');
  assert.ok(bare.ms >= 990 && bare.ms < 3500, `wait=1 (seconds) took ${bare.ms} ms`);
  const seconds = await timed('/v1/services?index=3&wait=1s');
  assert.ok(seconds.ms >= 990 && seconds.ms < 3500, `1s took ${seconds.ms} ms`);
  assert.equal(seconds.index, '3');
  const zero = await timed('/v1/services/billing?index=3&wait=0m');
  assert.ok(zero.ms < 1000, `0m took ${zero.ms} ms`);
  // A service nobody registered waits too (index 0), and answers an empty list.
  const none = await timed('/v1/services/nothing?index=0&wait=200ms');
  assert.ok(none.ms >= 190, `took ${none.ms} ms`);
  assert.equal(none.index, '0');
  assert.deepEqual(none.body.providers, []);
  // Without index there is no blocking, whatever wait says.
  assert.ok((await timed('/v1/services/billing?wait=60s')).ms < 1000);
  assert.equal(await waiting(g), 0);
});

test('a resync answers every blocking query whose index moved, in either direction', async (t) => {
  const g = await gatewayApp({ snapshot: { epoch: 'E1', providers: [providerRecord('b1', 4)] } });
  t.after(() => g.close());
  const billing = blocking(g, '/v1/services/billing?index=4&wait=30s');
  await waitFor(async () => (await waiting(g)) === 1, { what: 'query waiting' });
  // The leader was replaced by one with a new, empty store: its snapshot takes billing's index back to 0.
  g.replica.applySnapshot({ epoch: 'E2', rev: 0, providers: [] });
  const res = await billing.res;
  assert.equal(res.headers['x-switchboard-index'], '0');
  assert.deepEqual(res.json().providers, []);
  assert.equal(await waiting(g), 0);
});

test('a client that gives up frees its blocking query', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [providerRecord('b1', 1)] } });
  t.after(() => g.close());
  // A real HTTP connection: hanging up is what is tested.
  const url = await g.listen();
  const abort = new AbortController();
  const pending = fetch(`${url}/v1/services/billing?index=1&wait=60s`, { signal: abort.signal }).catch(() => null);
  await waitFor(async () => (await waiting(g)) === 1, { what: 'query waiting' });
  abort.abort();
  await pending;
  await waitFor(async () => (await waiting(g)) === 0, { what: 'query released' });
});

/**
 * The leader dies: acknowledged registrations survive SIGKILL at any moment, revisions continue under the same
 * epoch, and after a restart the registry converges to what really happened while it was away — without
 * spurious events for providers that stayed healthy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardClient, SwitchboardError } from '../../src/client/index.ts';
import { http } from '../../harness/http.ts';
import { startProviderProcess } from '../../harness/process.ts';
import { waitFor } from '../../harness/wait.ts';
import {
  allInState,
  assertLeaderAdmitsOnlyListedKeys,
  record,
  startFaultCluster,
  startProviders,
  statesOf,
} from './harness.ts';

test('SIGKILL of the leader during a registration flood loses no acknowledged registration', async (t) => {
  const fc = await startFaultCluster(t, { gatewayArgs: ['--write-timeout-ms', '2000'] });
  const before = await fc.leaderSnapshot();
  const acked = new Map<string, number>();
  let failed = 0;
  let stop = false;
  let next = 0;
  // 16 concurrent writers over both gateways, each registration a new provider, until told to stop.
  const writers = Array.from({ length: 16 }, async (_, w) => {
    const url = fc.gateways[w % 2].url;
    while (!stop && next < 20_000) {
      const id = `flood-${next++}`;
      const res = await http('PUT', `${url}/v1/providers/${id}`, {
        service: 'flood',
        host: '127.0.0.1',
        port: 1 + (next % 60000),
        protocol: 'http',
        meta: { n: id },
      }).catch(() => undefined);
      if (res?.status === 201) acked.set(id, res.body.rev);
      else failed++;
    }
  });
  await waitFor(() => acked.size >= 300, { timeoutMs: 20_000, what: '300 acknowledged registrations' });
  fc.leader.signal('SIGKILL');
  const ackedAtKill = acked.size;
  await new Promise((r) => setTimeout(r, 500)); // writes keep arriving at a dead leader for a while
  stop = true;
  await Promise.all(writers);
  t.diagnostic(
    `${acked.size} registrations acknowledged (${ackedAtKill} when SIGKILL was sent), ${failed} refused or failed`,
  );
  assert.ok(failed > 0, 'writes in flight when the leader died failed clearly');

  await fc.startLeader();
  const restarted = Date.now();
  for (const g of fc.gateways)
    await waitFor(async () => (await http('GET', `${g.url}/readyz`)).status === 200, {
      what: 'gateway ready after restart',
    });
  t.diagnostic(`gateways in sync ${Date.now() - restarted} ms after the new leader process printed its endpoint`);
  // The gateways came back over CURVE with the keys they had; the restarted leader's ZAP policy is the old one.
  await assertLeaderAdmitsOnlyListedKeys(fc.bind, fc.curve);
  const after = await fc.leaderSnapshot();
  assert.equal(after.epoch, before.epoch, 'same store, same epoch');
  const stored = new Map(after.providers.map((p) => [p.id, p]));
  const lost = [...acked.keys()].filter((id) => !stored.has(id));
  assert.deepEqual(lost, [], 'every acknowledged registration is present');
  const maxAcked = Math.max(...acked.values());
  assert.ok(after.rev >= maxAcked, `rev ${after.rev} continues from the last acknowledged ${maxAcked}`);
  // Both gateways serve exactly the leader's registry.
  for (const g of fc.gateways) {
    await waitFor(
      async () =>
        (await http('GET', `${g.url}/v1/services/flood`)).body.providers.length ===
        after.providers.filter((p) => p.service === 'flood').length,
      {
        what: 'gateway has every stored registration',
      },
    );
  }
  const res = await http('PUT', `${fc.gateways[0].url}/v1/providers/after-restart`, {
    service: 'flood',
    host: '127.0.0.2',
    port: 1,
    protocol: 'http',
  });
  assert.equal(res.status, 201);
  assert.equal(res.body.rev, after.rev + 1, 'revisions continue without a gap');
});

test('leader down for 10 s while providers die and come back: everyone converges, no spurious events', async (t) => {
  const fc = await startFaultCluster(t);
  const client = new SwitchboardClient({ gateways: fc.gateways.map((g) => g.url), lookupCacheMs: 0 });
  t.after(() => client.close());
  const watch = client.watch();
  await watch.ready;
  const [dying, steady] = await startProviders(fc, client, 'ledger', [
    Array.from({ length: 6 }, (_, i) => `dying-${i}`),
    Array.from({ length: 6 }, (_, i) => `steady-${i}`),
  ]);
  // A third group is registered but not running: down before the outage, alive after it.
  const rising = Array.from({ length: 6 }, (_, i) => `rising-${i}`);
  const risingPort = 30000 + Math.floor(Math.random() * 20000);
  const risingEndpoint = `tcp://127.0.0.1:${risingPort}`;
  for (const [i, id] of rising.entries()) {
    await client.register(
      {
        service: 'ledger',
        host: '127.0.0.1',
        port: 21000 + i,
        protocol: 'rpc-server',
        check: { type: 'zmq', endpoint: risingEndpoint, intervalMs: 300, misses: 3 },
      },
      id,
    );
  }
  await allInState(client, 'ledger', [...dying.ids, ...steady.ids], 'up');
  await allInState(client, 'ledger', rising, 'down');

  const seen = record(watch);
  fc.leader.signal('SIGKILL');
  for (const g of fc.gateways)
    await waitFor(async () => (await http('GET', `${g.url}/readyz`)).status === 503, {
      what: 'gateways see the leader gone',
    });
  const staleRead = await http('GET', `${fc.gateways[1].url}/v1/services/ledger`);
  assert.equal(staleRead.body.stale, true);
  assert.equal(staleRead.body.providers.length, 18, 'reads still served from the replica');
  await assert.rejects(
    client.register({ service: 'ledger', host: '127.0.0.9', port: 1, protocol: 'http' }),
    (err: unknown) => err instanceof SwitchboardError && err.statusCode === 503,
  );

  const downAt = Date.now();
  dying.child.signal('SIGKILL');
  const risingProcess = await startProviderProcess(rising, { bind: risingEndpoint, intervalMs: 50 });
  fc.track(risingProcess.child);
  await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - downAt)))); // the outage itself

  await fc.startLeader();
  const restartedAt = Date.now();
  await allInState(client, 'ledger', dying.ids, 'down');
  await allInState(client, 'ledger', rising, 'up');
  for (const g of fc.gateways)
    await waitFor(async () => (await http('GET', `${g.url}/readyz`)).status === 200, { what: 'gateway ready' });
  t.diagnostic(`converged ${Date.now() - restartedAt} ms after the leader restarted`);

  const truth = await fc.leaderSnapshot();
  const expected = statesOf(truth.providers);
  for (const id of dying.ids) assert.equal(expected[id], 'down');
  for (const id of [...steady.ids, ...rising]) assert.equal(expected[id], 'up');
  for (const g of fc.gateways) {
    await waitFor(async () => (await http('GET', `${g.url}/readyz`)).body.rev === truth.rev, {
      what: 'gateway at the leader rev',
    });
    assert.deepEqual(
      statesOf((await http('GET', `${g.url}/v1/services/ledger`)).body.providers),
      expected,
      `${g.url} equals the leader`,
    );
  }
  await waitFor(() => watch.view.rev === truth.rev, { what: 'watch at the leader rev' });
  assert.deepEqual(statesOf([...watch.view.providers.values()]), expected, 'the client watch equals the leader');

  const events = seen.flatMap((u) => (u.type === 'event' ? [u.event] : []));
  assert.deepEqual(
    events.filter((e) => e.provider.id.startsWith('steady-')),
    [],
    'no event for providers that stayed healthy',
  );
  assert.deepEqual(
    events.map((e) => `${e.provider.id}:${e.change}`).sort(),
    [...dying.ids.map((id) => `${id}:down`), ...rising.map((id) => `${id}:up`)].sort(),
    'exactly one real change per provider that changed',
  );
  void steady;
});

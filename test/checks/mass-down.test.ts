/**
 * The mass-down guard: many providers falling silent at once while their connections stay open is held (a cut-off
 * worker or network, not dead providers); many provider processes actually killed are published at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeartbeatPublisher } from '../../src/client/heartbeat.ts';
import { http } from '../../harness/http.ts';
import { startProviderProcess } from '../../harness/process.ts';
import { waitFor } from '../../harness/wait.ts';
import { changes, provider, register, startCluster, waitState } from './cluster.ts';

const IDS = ['m-0', 'm-1', 'm-2', 'm-3', 'm-4', 'm-5'];
// A wide settle window: the six misses must be judged in one batch even when a loaded CI machine stalls the worker.
const guardConfig = { massDownPercent: 50, massDownMinProviders: 3, massDownWindowMs: 1000, massDownSettleMs: 500 };

async function guardOnGateway(url: string): Promise<{ active: boolean; held: number } | null> {
  const res = await http('GET', `${url}/readyz`);
  return res.body.massDownGuard;
}

test('silent but connected providers trip the guard; beats clear it; an operator can release it', async (t) => {
  const c = await startCluster({ leader: guardConfig });
  t.after(() => c.close());
  const pub = new HeartbeatPublisher({ bind: 'tcp://127.0.0.1:*', intervalMs: 30, ids: IDS });
  const endpoint = await pub.start();
  t.after(() => pub.close());
  for (const id of IDS) {
    await register(c.url, id, {
      service: 'mass',
      host: '127.0.0.1',
      port: 10_000 + Number(id.slice(2)),
      protocol: 'rpc-server',
      check: { type: 'zmq', endpoint, intervalMs: 100, misses: 3 },
    });
  }
  for (const id of IDS) await waitState(c.url, id, 'up');

  // The PUB socket stays connected but stops beating for every id: what a worker cut off from them would see.
  for (const id of IDS) pub.remove(id);
  const seen = await waitFor(
    async () => {
      const g = await guardOnGateway(c.url);
      return g?.active && g.held === IDS.length ? g : undefined;
    },
    { what: 'guard active on /readyz' },
  );
  assert.equal(seen.held, 6);
  assert.equal((await http('GET', `${c.url}/readyz`)).status, 200, 'still ready: reads are served');
  assert.match((await http('GET', `${c.url}/metrics`)).body, /switchboard_leader_mass_down_guard_active 1/);
  assert.match(await c.leader.metrics.render(), /switchboard_mass_down_held 6/);
  assert.match((await http('GET', `${c.url}/metrics`)).body, /switchboard_leader_mass_down_held_total 6/);
  for (const id of IDS) assert.equal((await provider(c.url, id))?.state, 'up', `${id} held up`);

  // Half of them beat again: they are no longer held; the rest no longer looks like a mass event and goes down.
  for (const id of IDS.slice(0, 3)) pub.add(id);
  for (const id of IDS.slice(3)) await waitState(c.url, id, 'down', 5000);
  for (const id of IDS.slice(0, 3)) assert.equal((await provider(c.url, id))?.state, 'up');
  await waitFor(async () => (await guardOnGateway(c.url))?.active === false, { what: 'guard cleared' });
  for (const id of IDS.slice(0, 3))
    assert.deepEqual(
      changes(c, id).map((e) => e.change),
      ['registered', 'up'],
      `${id} never went down`,
    );

  // Everyone back, then silent again: tripped again, and this time an operator releases the hold.
  for (const id of IDS.slice(3)) pub.add(id);
  for (const id of IDS) await waitState(c.url, id, 'up');
  for (const id of IDS) pub.remove(id);
  await waitFor(async () => (await guardOnGateway(c.url))?.active, { what: 'guard active again' });
  const released = await http('POST', `${c.url}/v1/admin/release-guard`);
  assert.equal(released.status, 200, JSON.stringify(released.body));
  for (const id of IDS) {
    const p = await waitState(c.url, id, 'down');
    assert.match(p.lastCheck?.output ?? '', /no heartbeat/);
  }
  await waitFor(async () => (await guardOnGateway(c.url))?.active === false, { what: 'guard off after release' });
});

test('provider processes actually killed are never held', async (t) => {
  const c = await startCluster({ leader: guardConfig });
  t.after(() => c.close());
  const ids = ['k-0', 'k-1', 'k-2', 'k-3'];
  const procs = await Promise.all(ids.map((id) => startProviderProcess([id], { intervalMs: 50 })));
  t.after(() => Promise.all(procs.map((p) => p.child.stop())));
  for (const [i, id] of ids.entries()) {
    await register(c.url, id, {
      service: 'killed',
      host: '127.0.0.1',
      port: 11_000 + i,
      protocol: 'rpc-server',
      check: { type: 'zmq', endpoint: procs[i].endpoint, intervalMs: 1000, misses: 3 },
    });
  }
  for (const id of ids) await waitState(c.url, id, 'up');
  const killedAt = Date.now();
  for (const p of procs) p.child.signal('SIGKILL');
  for (const id of ids) {
    const p = await waitState(c.url, id, 'down');
    assert.match(p.lastCheck?.output ?? '', /dropped/);
  }
  const slowest = Math.max(...ids.map((id) => changes(c, id).at(-1)!.at - killedAt));
  assert.ok(slowest < 1000, `all down ${slowest} ms after SIGKILL, long before 3 missed 1 s intervals`);
  assert.match(await c.leader.metrics.render(), /switchboard_mass_down_trips_total 0/);
  assert.match(await c.leader.metrics.render(), /switchboard_mass_down_held_total 0/);
});

/**
 * Leader high availability, end to end, when a leader dies: a private 3-member etcd, three
 * `switchboard leader --store etcd://…` processes (one active, two standbys), two workers and two gateways given
 * the whole leader list, heartbeating provider processes, and a WebSocket subscriber through the Node client. One
 * cluster serves the file; a test that kills the active leader starts it again as a standby when it ends.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardClient } from '../../src/client/index.ts';
import { startHaCluster, type HaCluster } from '../../harness/ha-cluster.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';
import { allInState, record, statesOf } from './harness.ts';
import { assertCurveTakeover, converged, eventsOf, flood, revisionFaults } from './ha-support.ts';

let ha: HaCluster;
let client: SwitchboardClient;
before(async () => {
  ha = await startHaCluster({ gatewayArgs: ['--write-timeout-ms', '2000'] });
  client = new SwitchboardClient({ gateways: ha.gateways.map((g) => g.url), lookupCacheMs: 0 });
});
after(async () => {
  await client?.close();
  await ha?.close();
});

/** Starts leader `i` again (as a standby) once it has died. */
async function restartLater(i: number): Promise<void> {
  await ha.leaders[i].child?.exited;
  await ha.startLeader(i);
}

test('SIGKILL of the active leader during a registration flood: a standby takes over and nothing acknowledged is lost', async (t) => {
  const [steady] = await ha.startProviders('steady', [Array.from({ length: 6 }, (_, i) => `steady-${i}`)]);
  await allInState(client, 'steady', steady.ids, 'up');
  const watch = client.watch();
  await watch.ready;
  const seen = record(watch);
  const before = await ha.leaderSnapshot();
  const first = await ha.activeLeader();

  const writes = flood(ha);
  await waitFor(() => writes.acks.length >= 150, { timeoutMs: 30_000, what: '150 acknowledged registrations' });
  ha.leaders[first].child?.signal('SIGKILL');
  const killedAt = Date.now();
  t.after(() => restartLater(first));
  const maxBeforeKill = Math.max(...writes.acks.map((a) => a.rev));
  const ackedAtKill = writes.acks.length;
  await waitFor(() => writes.acks.filter((a) => a.rev > maxBeforeKill + 50).length >= 100, {
    timeoutMs: 30_000,
    what: '100 registrations acknowledged by the new leader',
  });
  await writes.stop();
  // Sent after the kill: only the new leader can have answered it.
  const firstNew = writes.acks.find((a) => a.sentAt > killedAt);
  t.diagnostic(
    `${writes.acks.length} acknowledged (${ackedAtKill} at the kill); first ack by the new leader ` +
      `${firstNew ? firstNew.at - killedAt : NaN} ms after SIGKILL; refused: ${JSON.stringify([...writes.refused])}`,
  );

  const next = await ha.activeLeader();
  assert.notEqual(next, first, 'a standby is active');
  assert.ok(
    ha.leaders[next].roleLog.some((r) => r.msg === 'elected'),
    'the new leader logged `elected`',
  );
  const truth = await converged(ha, watch);
  await assertCurveTakeover(ha, next);
  assert.equal(truth.epoch, before.epoch, 'one store, one epoch');
  const stored = new Set(truth.providers.map((p) => p.id));
  assert.deepEqual(
    writes.acks.filter((a) => !stored.has(a.id)).map((a) => a.id),
    [],
    'every acknowledged registration is present',
  );
  const revs = writes.acks.map((a) => a.rev);
  assert.equal(new Set(revs).size, revs.length, 'no revision acknowledged twice');
  assert.ok(truth.rev >= Math.max(...revs), 'the store is at or past every acknowledged revision');
  assert.deepEqual(revisionFaults(seen), [], 'the subscriber saw revisions continue without a gap or a repeat');
  assert.deepEqual(
    eventsOf(seen).filter((e) => e.service === 'steady' && e.change === 'down'),
    [],
    'no down for providers that kept beating',
  );
  for (const id of steady.ids) assert.equal(statesOf(truth.providers)[id], 'up');
});

test('a provider SIGKILLed while the active leader is dead: the new leader publishes its down', async (t) => {
  const [dying, steady] = await ha.startProviders('ledger', [
    Array.from({ length: 4 }, (_, i) => `dying-${i}`),
    Array.from({ length: 4 }, (_, i) => `steady-${i}`),
  ]);
  await allInState(client, 'ledger', [...dying.ids, ...steady.ids], 'up');
  const watch = client.watch();
  await watch.ready;
  const seen = record(watch);
  const before = await ha.leaderSnapshot();
  const first = await ha.activeLeader();

  ha.leaders[first].child?.signal('SIGKILL');
  const killedAt = performance.now();
  t.after(() => restartLater(first));
  dying.child.signal('SIGKILL');
  // The gateways see the leader gone from the dropped connection, not from 2 s of silence.
  const notReady = await Promise.all(
    ha.gateways.map(async (g) => {
      await waitFor(async () => (await http('GET', `${g.url}/readyz`)).status === 503, {
        timeoutMs: 5000,
        intervalMs: 5,
        what: `${g.url} not ready`,
      });
      return performance.now() - killedAt;
    }),
  );
  t.diagnostic(`gateways answered /readyz 503 ${notReady.map((ms) => ms.toFixed(0)).join(' / ')} ms after SIGKILL`);
  for (const ms of notReady) assert.ok(ms < 1000, `not ready after ${ms.toFixed(0)} ms (silence timeout 2 s)`);

  await allInState(client, 'ledger', dying.ids, 'down', 20_000);
  t.diagnostic(`down published ${(performance.now() - killedAt).toFixed(0)} ms after the leader and provider died`);
  const next = await ha.activeLeader();
  assert.notEqual(next, first);
  const events = eventsOf(seen).filter((e) => e.service === 'ledger');
  assert.deepEqual(
    events.map((e) => `${e.provider.id}:${e.change}`).sort(),
    dying.ids.map((id) => `${id}:down`).sort(),
    'exactly the real changes: one down per dead provider, nothing for the steady ones',
  );
  for (const e of events) assert.ok(e.rev > before.rev, 'published under a revision after the old leader');
  await converged(ha, watch);
});

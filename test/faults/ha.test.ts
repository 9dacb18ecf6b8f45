/**
 * Leader high availability, end to end: a private 3-member etcd, three `switchboard leader --store etcd://…`
 * processes (one active, two standbys), two workers and two gateways given the whole leader list, heartbeating
 * provider processes, and a WebSocket subscriber through the Node client. Processes are killed for real; the
 * invariants are checked over what was acknowledged and what the subscriber saw.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RegistryEvent } from '../../src/bridge/index.ts';
import { SwitchboardClient, type WatchUpdate } from '../../src/client/index.ts';
import { startHaCluster, type HaCluster } from '../../harness/ha-cluster.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { allInState, record, statesOf } from './harness.ts';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcdCluster();
});
after(() => etcd?.close());

/** Codes a write may answer while no leader can commit (no quorum, or between leaders). */
const UNAVAILABLE_CODES = new Set([
  'SB_STORE_UNAVAILABLE',
  'SB_STORE_FAILED',
  'SB_LEADER_UNAVAILABLE',
  'SB_LEADER_TIMEOUT',
]);

interface Ack {
  id: string;
  rev: number;
  at: number;
}

/**
 * `concurrency` writers registering new providers through the gateways in turn until `stop()`: every 201 is
 * recorded with its revision and the time it arrived; everything else is counted by status and code.
 */
function flood(ha: HaCluster, opts: { concurrency?: number; service?: string; prefix?: string } = {}) {
  const acks: Ack[] = [];
  const refused = new Map<string, number>();
  let stopped = false;
  let next = 0;
  const service = opts.service ?? 'flood';
  const writers = Array.from({ length: opts.concurrency ?? 16 }, async (_, w) => {
    const url = ha.gateways[w % ha.gateways.length].url;
    while (!stopped && next < 50_000) {
      const id = `${opts.prefix ?? 'flood'}-${next++}`;
      const res = await http('PUT', `${url}/v1/providers/${id}`, {
        service,
        host: '127.0.0.1',
        port: 1 + (next % 60000),
        protocol: 'http',
      }).catch((err: Error) => ({ status: 0, body: { code: err.message } }));
      if (res.status === 201) acks.push({ id, rev: res.body.rev, at: Date.now() });
      else {
        const key = `${res.status} ${res.body?.code ?? ''}`;
        refused.set(key, (refused.get(key) ?? 0) + 1);
        // Nobody can commit right now: do not spin.
        if (res.status === 503 || res.status === 0) await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
  return {
    acks,
    refused,
    async stop() {
      stopped = true;
      await Promise.all(writers);
    },
  };
}

function eventsOf(seen: WatchUpdate[]): RegistryEvent[] {
  return seen.flatMap((u) => (u.type === 'event' ? [u.event] : []));
}

/** Revisions the subscriber saw go backwards, repeat or jump without a snapshot in between. */
function revisionFaults(seen: WatchUpdate[]): string[] {
  const faults: string[] = [];
  let last: number | undefined;
  for (const u of seen) {
    if (u.type === 'snapshot') last = u.rev;
    else if (u.type === 'event') {
      if (last !== undefined && u.event.rev !== last + 1) faults.push(`${last} → ${u.event.rev}`);
      last = u.event.rev;
    }
  }
  return faults;
}

async function converged(ha: HaCluster, client: SwitchboardClient, watch: ReturnType<SwitchboardClient['watch']>) {
  const truth = await ha.leaderSnapshot();
  for (const g of ha.gateways) {
    await waitFor(async () => (await http('GET', `${g.url}/readyz`)).body.rev === truth.rev, {
      timeoutMs: 20_000,
      what: `${g.url} at the leader's rev ${truth.rev}`,
    });
    const services = new Set(truth.providers.map((p) => p.service));
    for (const s of services) {
      const served = (await http('GET', `${g.url}/v1/services/${s}`)).body.providers;
      assert.deepEqual(
        statesOf(served),
        statesOf(truth.providers.filter((p) => p.service === s)),
        `${g.url} serves the leader's ${s}`,
      );
    }
  }
  await waitFor(() => watch.view.rev === truth.rev, { timeoutMs: 20_000, what: "subscriber at the leader's rev" });
  assert.deepEqual(statesOf([...watch.view.providers.values()]), statesOf(truth.providers), 'subscriber = leader');
  void client;
  return truth;
}

test('SIGKILL of the active leader during a registration flood: a standby takes over and nothing acknowledged is lost', async (t) => {
  const ha = await startHaCluster({ etcd, gatewayArgs: ['--write-timeout-ms', '2000'] });
  t.after(() => ha.close());
  const client = new SwitchboardClient({ gateways: ha.gateways.map((g) => g.url), lookupCacheMs: 0 });
  t.after(() => client.close());
  const [steady] = await ha.startProviders('steady', [Array.from({ length: 6 }, (_, i) => `steady-${i}`)]);
  await allInState(client, 'steady', steady.ids, 'up');
  const watch = client.watch();
  await watch.ready;
  const seen = record(watch);
  const before = await ha.leaderSnapshot();
  const first = await ha.activeLeader();

  const writes = flood(ha);
  await waitFor(() => writes.acks.length >= 300, { timeoutMs: 30_000, what: '300 acknowledged registrations' });
  ha.leaders[first].child?.signal('SIGKILL');
  const killedAt = Date.now();
  const maxBeforeKill = Math.max(...writes.acks.map((a) => a.rev));
  const ackedAtKill = writes.acks.length;
  await waitFor(() => writes.acks.filter((a) => a.rev > maxBeforeKill + 50).length >= 200, {
    timeoutMs: 30_000,
    what: '200 registrations acknowledged by the new leader',
  });
  await writes.stop();
  const firstNew = writes.acks.find((a) => a.at > killedAt && a.rev > maxBeforeKill);
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
  const truth = await converged(ha, client, watch);
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
  const ha = await startHaCluster({ etcd });
  t.after(() => ha.close());
  const client = new SwitchboardClient({ gateways: ha.gateways.map((g) => g.url), lookupCacheMs: 0 });
  t.after(() => client.close());
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
  const events = eventsOf(seen);
  assert.deepEqual(
    events.map((e) => `${e.provider.id}:${e.change}`).sort(),
    dying.ids.map((id) => `${id}:down`).sort(),
    'exactly the real changes: one down per dead provider, nothing for the steady ones',
  );
  for (const e of events) assert.ok(e.rev > before.rev, 'published under a revision after the old leader');
  await converged(ha, client, watch);
});

test('SIGKILL of one etcd member of three under load: writes go on after a brief retry, nothing is lost', async (t) => {
  const ha = await startHaCluster({ etcd, gatewayArgs: ['--write-timeout-ms', '5000'] });
  t.after(() => ha.close());
  const writes = flood(ha, { concurrency: 8, prefix: 'member' });
  await waitFor(() => writes.acks.length >= 200, { timeoutMs: 30_000, what: '200 acknowledged registrations' });
  const member = Math.max(0, await etcd.raftLeader());
  await etcd.kill(member);
  t.after(async () => {
    if (!etcd.members[member].proc) await etcd.start(member);
  });
  const killedAt = Date.now();
  await waitFor(() => writes.acks.filter((a) => a.at > killedAt + 3000).length >= 100, {
    timeoutMs: 30_000,
    what: 'writes acknowledged again after the member died',
  });
  await writes.stop();
  const times = writes.acks.map((a) => a.at).sort((a, b) => a - b);
  let longest = 0;
  for (let i = 1; i < times.length; i++)
    if (times[i] >= killedAt - 1000) longest = Math.max(longest, times[i] - times[i - 1]);
  t.diagnostic(
    `etcd member ${member} (raft leader) killed: longest pause between acknowledgements ${longest} ms; ` +
      `${writes.acks.length} acknowledged; refused: ${JSON.stringify([...writes.refused])}`,
  );
  assert.ok(longest < 10_000, `writes paused ${longest} ms`);
  const truth = await ha.leaderSnapshot();
  const stored = new Set(truth.providers.map((p) => p.id));
  assert.deepEqual(
    writes.acks.filter((a) => !stored.has(a.id)).map((a) => a.id),
    [],
    'every acknowledged registration is present',
  );
  await etcd.start(member);
});

test('etcd quorum lost: writes answer 503 with a clear code, reads are served stale, all recovers by itself', async (t) => {
  const ha = await startHaCluster({ etcd, gatewayArgs: ['--write-timeout-ms', '3000'] });
  t.after(() => ha.close());
  const client = new SwitchboardClient({ gateways: ha.gateways.map((g) => g.url), lookupCacheMs: 0 });
  t.after(() => client.close());
  const [steady] = await ha.startProviders('steady', [Array.from({ length: 4 }, (_, i) => `steady-${i}`)]);
  await allInState(client, 'steady', steady.ids, 'up');
  const watch = client.watch();
  await watch.ready;
  const seen = record(watch);

  const lost = [0, 1];
  for (const m of lost) await etcd.kill(m);
  t.after(async () => {
    for (const m of lost) if (!etcd.members[m].proc) await etcd.start(m);
  });
  const lostAt = Date.now();
  let n = 0;
  const refusal = await waitFor(
    async () => {
      const res = await http('PUT', `${ha.gateways[n % 2].url}/v1/providers/quorum-${n++}`, {
        service: 'quorum',
        host: '127.0.0.1',
        port: n,
        protocol: 'http',
      });
      return res.status === 503 ? res.body : undefined;
    },
    { timeoutMs: 30_000, what: 'a write refused with 503' },
  );
  t.diagnostic(`first 503 ${Date.now() - lostAt} ms after quorum was lost: ${JSON.stringify(refusal)}`);
  assert.ok(UNAVAILABLE_CODES.has(refusal.code), `a clear code: ${refusal.code}`);
  for (const g of ha.gateways) {
    const read = await http('GET', `${g.url}/v1/services/steady`);
    assert.equal(read.status, 200, 'reads still served');
    assert.equal(read.body.providers.length, steady.ids.length);
  }

  for (const m of lost) await etcd.start(m);
  const backAt = Date.now();
  await waitFor(
    async () =>
      (
        await http('PUT', `${ha.gateways[0].url}/v1/providers/after-quorum`, {
          service: 'quorum',
          host: '127.0.0.2',
          port: 1,
          protocol: 'http',
        })
      ).status === 201,
    { timeoutMs: 30_000, intervalMs: 100, what: 'writes accepted again' },
  );
  t.diagnostic(`writes accepted ${Date.now() - backAt} ms after quorum returned`);
  await ha.gatewaysReady();
  await converged(ha, client, watch);
  assert.deepEqual(
    eventsOf(seen).filter((e) => e.service === 'steady'),
    [],
    'providers that kept beating saw no change',
  );
});

/**
 * Leader high availability, end to end, when etcd fails: a private 3-member etcd whose members are killed for real,
 * three `switchboard leader --store etcd://…` processes, two workers and two gateways given the leader list. One
 * cluster serves the file; every test leaves all etcd members running.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardClient } from '../../src/client/index.ts';
import { startHaCluster, type HaCluster } from '../../harness/ha-cluster.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';
import { allInState, record } from './harness.ts';
import { converged, eventsOf, flood, UNAVAILABLE_CODES } from './ha-support.ts';

let ha: HaCluster;
let client: SwitchboardClient;
before(async () => {
  ha = await startHaCluster({ gatewayArgs: ['--write-timeout-ms', '3000'] });
  client = new SwitchboardClient({ gateways: ha.gateways.map((g) => g.url), lookupCacheMs: 0 });
});
after(async () => {
  await client?.close();
  await ha?.close();
});

test('SIGKILL of one etcd member of three under load: writes go on after a brief retry, nothing is lost', async (t) => {
  const writes = flood(ha, { concurrency: 8, prefix: 'member' });
  await waitFor(() => writes.acks.length >= 200, { timeoutMs: 30_000, what: '200 acknowledged registrations' });
  const member = Math.max(0, await ha.etcd.raftLeader());
  await ha.etcd.kill(member);
  t.after(async () => {
    if (!ha.etcd.members[member].proc) await ha.etcd.start(member);
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
  await ha.etcd.start(member);
});

test('etcd quorum lost: writes answer 503 with a clear code, reads are served stale, all recovers by itself', async (t) => {
  const [steady] = await ha.startProviders('steady', [Array.from({ length: 4 }, (_, i) => `steady-${i}`)]);
  await allInState(client, 'steady', steady.ids, 'up');
  const watch = client.watch();
  await watch.ready;
  const seen = record(watch);

  const lost = [0, 1];
  for (const m of lost) await ha.etcd.kill(m);
  t.after(async () => {
    for (const m of lost) if (!ha.etcd.members[m].proc) await ha.etcd.start(m);
  });
  const lostAt = Date.now();
  // Writes for 6 s without quorum: every one refused with 503 and a code that says nobody can commit. The first
  // ones may be the commit in flight timing out, or the leader stepping down (its lease cannot be refreshed).
  const answers: Array<{ status: number; code: string; ms: number }> = [];
  for (let n = 0; Date.now() - lostAt < 6000; n++) {
    const res = await http('PUT', `${ha.gateways[n % 2].url}/v1/providers/quorum-${n}`, {
      service: 'quorum',
      host: '127.0.0.1',
      port: n + 1,
      protocol: 'http',
    });
    answers.push({ status: res.status, code: res.body?.code, ms: Date.now() - lostAt });
  }
  const codes = new Map<string, number>();
  for (const a of answers) codes.set(`${a.status} ${a.code}`, (codes.get(`${a.status} ${a.code}`) ?? 0) + 1);
  t.diagnostic(
    `quorum lost: ${answers.length} writes in 6 s answered ${JSON.stringify([...codes])}; first 503 after ` +
      `${answers.find((a) => a.status === 503)?.ms} ms, last: ${JSON.stringify(answers.at(-1))}`,
  );
  assert.deepEqual(
    answers.filter((a) => a.status !== 503 || !UNAVAILABLE_CODES.has(a.code)),
    [],
    'every write refused with 503 and a listed code (nothing acknowledged without quorum)',
  );
  assert.ok(
    ['SB_STORE_UNAVAILABLE', 'SB_LEADER_UNAVAILABLE'].includes(answers.at(-1)!.code),
    'once settled: the store or the leader is unavailable',
  );
  for (const g of ha.gateways) {
    const read = await http('GET', `${g.url}/v1/services/steady`);
    assert.equal(read.status, 200, 'reads still served');
    assert.equal(read.body.providers.length, steady.ids.length);
  }

  for (const m of lost) await ha.etcd.start(m);
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
  await converged(ha, watch);
  assert.deepEqual(
    eventsOf(seen).filter((e) => e.service === 'steady'),
    [],
    'providers that kept beating saw no change',
  );
});

/**
 * The etcd store while etcd itself fails (a real 3-member cluster, members killed for real): one member lost
 * under writes costs at most a short retry and nothing acknowledged; a lost quorum fails commits with a clear
 * error, and the leader recovers by itself once quorum returns.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Provider } from '../../src/bridge/index.ts';
import type { StoreError } from '../../src/leader/store-api.ts';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { waitFor } from '../helpers/wait.ts';
import { candidate, freshPrefix, provider, readStore, type TestLeader } from './support.ts';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster();
});
after(() => cluster.close());

/**
 * Writes as the registry does: each round stages `perRound` new providers under new revisions and commits them;
 * a commit that fails with STORE_UNAVAILABLE is written again inside the next one (a superset, higher revision);
 * a fenced writer takes the store over again once re-elected. Records every acknowledged id and every failure.
 */
function writer(leader: TestLeader, perRound = 5) {
  let rev = 0;
  let n = 0;
  let unacked: Provider[] = [];
  let stopped = false;
  let needLoad = true;
  const ackedIds: string[] = [];
  const failures: Array<{ at: number; code: string; message: string }> = [];
  const commitTimes: number[] = [];
  const ackTimes: number[] = [];
  const loop = (async () => {
    while (!stopped) {
      if (needLoad) {
        if (!leader.election.term) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        try {
          rev = (await leader.store.load()).rev;
          unacked = [];
          needLoad = false;
        } catch (err) {
          failures.push({ at: Date.now(), code: (err as StoreError).code, message: (err as Error).message });
          await new Promise((r) => setTimeout(r, 100));
        }
        continue;
      }
      for (let i = 0; i < perRound; i++) unacked.push(provider(`w${++n}`, ++rev));
      const batch = unacked;
      const started = Date.now();
      try {
        await leader.store.commit(rev, batch, [], [['svc', rev]]);
        commitTimes.push(Date.now() - started);
        ackedIds.push(...batch.map((p) => p.id));
        ackTimes.push(Date.now());
        unacked = [];
      } catch (err) {
        const code = (err as StoreError).code;
        failures.push({ at: Date.now(), code, message: (err as Error).message });
        if (code !== 'STORE_UNAVAILABLE') needLoad = true;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })();
  return {
    ackedIds,
    failures,
    commitTimes,
    /** The longest time without an acknowledgement after `since`. */
    longestGapAfter(since: number): number {
      let gap = 0;
      let prev = since;
      for (const at of ackTimes.filter((x) => x >= since)) {
        gap = Math.max(gap, at - prev);
        prev = at;
      }
      return gap;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

test('SIGKILL of one etcd member of three under writes: writes go on after a short retry, nothing acknowledged is lost', async (t) => {
  const prefix = freshPrefix();
  const leader = await candidate(cluster.url, prefix, 'a');
  t.after(() => leader.close());
  await leader.elected();
  const w = writer(leader);
  await waitFor(() => w.ackedIds.length >= 200, { what: 'writes flowing' });

  // Kill the member etcd elected its raft leader: the hardest single loss (a raft election follows).
  const victim = Math.max(0, await cluster.raftLeader());
  const killedAt = Date.now();
  const ackedAtKill = w.ackedIds.length;
  await cluster.kill(victim);
  await waitFor(() => w.ackedIds.length >= ackedAtKill + 200, { timeoutMs: 20_000, what: 'writes after the kill' });
  const resumedMs = Date.now() - killedAt;
  await w.stop();
  t.diagnostic(
    `member ${victim} (raft leader) killed: ${w.ackedIds.length - ackedAtKill} writes acknowledged within ${resumedMs} ms after; ` +
      `longest time without an acknowledged write ${w.longestGapAfter(killedAt)} ms; ` +
      `slowest commit ${Math.max(...w.commitTimes)} ms; failures ${JSON.stringify(w.failures.map((f) => f.code))}; ` +
      `elections won ${leader.election.elections}`,
  );
  // etcd elects a new raft leader in 1-2 s (election timeout 1 s, randomized): writes wait about that long.
  assert.ok(w.longestGapAfter(killedAt) < 5_000, 'writes resumed after a brief pause');
  const stored = await readStore(cluster.url, prefix);
  const ids = new Set(stored.providers.map((p) => p.id));
  assert.deepEqual(
    w.ackedIds.filter((id) => !ids.has(id)),
    [],
    'every acknowledged write is in the store',
  );
  await cluster.start(victim);
  await cluster.waitHealthy();
});

test('lost quorum: commits fail with STORE_UNAVAILABLE, and writing resumes by itself when quorum returns', async (t) => {
  const prefix = freshPrefix();
  const leader = await candidate(cluster.url, prefix, 'a');
  t.after(() => leader.close());
  await leader.elected();
  const w = writer(leader);
  await waitFor(() => w.ackedIds.length >= 100, { what: 'writes flowing' });

  const down = [0, 1];
  const lostAt = Date.now();
  for (const i of down) await cluster.kill(i);
  const firstFailure = await waitFor(() => w.failures[0], { timeoutMs: 15_000, what: 'a failed commit' });
  t.diagnostic(
    `first failure ${firstFailure.at - lostAt} ms after quorum was lost: ${firstFailure.code}: ${firstFailure.message}`,
  );
  assert.equal(firstFailure.code, 'STORE_UNAVAILABLE');
  assert.match(firstFailure.message, /etcd unavailable/);
  const ackedWithoutQuorum = w.ackedIds.length;
  // A leader without etcd steps down (its lease can no longer be refreshed).
  await waitFor(() => !leader.election.isLeader, { timeoutMs: 10_000, what: 'stepping down' });
  assert.equal(w.ackedIds.length, ackedWithoutQuorum, 'nothing acknowledged without quorum');

  for (const i of down) await cluster.start(i);
  const backAt = Date.now();
  await waitFor(() => w.ackedIds.length >= ackedWithoutQuorum + 50, {
    timeoutMs: 30_000,
    what: 'writes after quorum returned',
  });
  await w.stop();
  t.diagnostic(`writes acknowledged again ${Date.now() - backAt} ms after quorum returned`);
  const stored = await readStore(cluster.url, prefix);
  const ids = new Set(stored.providers.map((p) => p.id));
  assert.deepEqual(
    w.ackedIds.filter((id) => !ids.has(id)),
    [],
    'every acknowledged write is in the store',
  );
  const codes = new Set(w.failures.map((f) => f.code));
  for (const code of codes) assert.ok(['STORE_UNAVAILABLE', 'STORE_FENCED', 'STORE_NOT_LEADER'].includes(code), code);
});

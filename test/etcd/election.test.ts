/**
 * Leader election between real candidate processes (test/fixtures/etcd-candidate.ts) on a real 3-member etcd:
 * SIGKILL of the leader (a standby takes over, revisions continue, nothing acknowledged is lost), and SIGSTOP past
 * the lease (the frozen leader writes nothing once it wakes, steps down, and rejoins as a standby).
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, test, type TestContext } from 'node:test';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { spawnTs, type Child } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';
import { freshPrefix, readStore } from './support.ts';

const CANDIDATE = fileURLToPath(new URL('../fixtures/etcd-candidate.ts', import.meta.url));

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster();
});
after(() => cluster.close());

function spawnCandidate(t: TestContext, prefix: string, name: string, extra: string[] = []): Child {
  const child = spawnTs(CANDIDATE, ['--store', cluster.url, '--prefix', prefix, '--name', name, ...extra]);
  t.after(() => child.stop());
  return child;
}

/** Acknowledged writes (`WROTE <rev> <id>`) printed by a candidate so far. */
function acked(child: Child): Array<{ rev: number; id: string }> {
  return child.lines
    .map((l) => /^WROTE (\d+) (\S+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ rev: Number(m[1]), id: m[2] }));
}

test('SIGKILL of the active leader: a standby takes over within seconds, revisions continue, nothing acknowledged is lost', async (t) => {
  const prefix = freshPrefix();
  const a = spawnCandidate(t, prefix, 'a');
  await a.waitForLine(/^ELECTED /);
  const b = spawnCandidate(t, prefix, 'b');
  await b.waitForLine(/^STARTED/);
  await waitFor(() => acked(a).length >= 20, { what: 'a writing' });

  const killedAt = Date.now();
  a.signal('SIGKILL');
  await a.exited;
  const elected = await b.waitForLine(/^ELECTED (\d+) (\d+)/, 15_000);
  const failoverMs = Date.now() - killedAt;
  await waitFor(() => acked(b).length >= 1, { what: 'b writing' });
  const firstWriteMs = Date.now() - killedAt;
  t.diagnostic(`failover: elected after ${failoverMs} ms, first acknowledged write after ${firstWriteMs} ms`);
  assert.ok(failoverMs < 5_000, `failover took ${failoverMs} ms`);
  await waitFor(() => acked(b).length >= 10, { what: 'b writing on' });

  const aAcked = acked(a);
  const bAcked = acked(b);
  const lastOfA = Math.max(...aAcked.map((w) => w.rev));
  assert.ok(Number(elected[2]) >= lastOfA, 'b starts at or after the last revision a acknowledged');
  assert.equal(bAcked[0].rev, Number(elected[2]) + 1, "b's first write is the next revision");
  const revs = [...aAcked, ...bAcked].map((w) => w.rev);
  assert.equal(new Set(revs).size, revs.length, 'no revision acknowledged twice');
  const stored = await readStore(cluster.url, prefix);
  const ids = new Set(stored.providers.map((p) => p.id));
  const lost = [...aAcked, ...bAcked].filter((w) => !ids.has(w.id));
  assert.deepEqual(lost, [], 'every acknowledged write is in the store');
  assert.ok(stored.rev >= Math.max(...revs));
});

test('SIGSTOP of the leader past its lease: it writes nothing when it wakes, steps down and rejoins as a standby', async (t) => {
  const prefix = freshPrefix();
  // --stale-fence: a writes under the term it won even after losing it; only etcd's fence can stop it.
  const a = spawnCandidate(t, prefix, 'a', ['--stale-fence']);
  await a.waitForLine(/^ELECTED /);
  const b = spawnCandidate(t, prefix, 'b');
  await b.waitForLine(/^STARTED/);
  await waitFor(() => acked(a).length >= 10, { what: 'a writing' });

  a.signal('SIGSTOP');
  const stoppedAt = Date.now();
  const bElected = await b.waitForLine(/^ELECTED (\d+) (\d+)/, 15_000);
  const bStart = Number(bElected[2]);
  t.diagnostic(`b elected ${Date.now() - stoppedAt} ms after a froze`);
  await waitFor(() => acked(b).length >= 5, { what: 'b writing' });

  a.signal('SIGCONT');
  await a.waitForLine(/^LOST /, 10_000);
  // Give a's write timer every chance to fire after waking: it must be refused by etcd each time.
  await a.waitForLine(/^REFUSED STORE_FENCED/, 10_000);
  const stored = await readStore(cluster.url, prefix);
  const fromA = stored.providers.filter((p) => p.meta.writer === 'a');
  // A commit in flight when a froze may be acknowledged when it wakes, but only if it landed before b's term.
  const storedIds = new Set(fromA.map((p) => p.id));
  assert.deepEqual(
    acked(a).filter((w) => !storedIds.has(w.id)),
    [],
    'every write a acknowledged is in the store',
  );
  assert.ok(
    fromA.every((p) => p.rev <= bStart),
    `nothing of a's after b took over at revision ${bStart}`,
  );
  assert.ok(Math.min(...acked(b).map((w) => w.rev)) > bStart, "b's revisions follow a's");

  // a campaigns again as a standby: when b resigns, a leads again.
  await b.stop();
  const again = await waitFor(
    () => a.lines.filter((l) => l.startsWith('ELECTED ')).map((l) => /^ELECTED (\d+) (\d+)/.exec(l)!)[1],
    { timeoutMs: 15_000, what: 'a elected again' },
  );
  assert.ok(Number(again[2]) >= Math.max(...acked(b).map((w) => w.rev)), 'a continues after b');
});

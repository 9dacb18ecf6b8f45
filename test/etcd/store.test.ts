/**
 * The etcd store against a real 3-member etcd cluster: round trip, epoch and revision across leaders, the hot
 * copy of a standby, fencing, and a split batch cut short.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { waitFor } from '../helpers/wait.ts';
import type { StoreError } from '../../src/leader/store-api.ts';
import { connectEtcd } from '../../src/leader/etcd-store.ts';
import type { Term } from '../../src/leader/election.ts';
import { candidate, freshPrefix, provider, readStore } from './support.ts';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster();
});
after(() => cluster.close());

test('round trip: a commit is read back by another client; epoch and revision continue under the next leader', async (t) => {
  const prefix = freshPrefix();
  const a = await candidate(cluster.url, prefix, 'a');
  t.after(() => a.close());
  await a.elected();
  const first = await a.store.load();
  assert.equal(first.rev, 0, 'a new store starts at revision 0');
  assert.equal(first.providers.length, 0);

  // A standby that follows the store hot while a leads.
  const b = await candidate(cluster.url, prefix, 'b');
  t.after(() => b.close());
  const follower = await b.store.follow();

  await a.store.commit(2, [provider('p1', 1), provider('p2', 2)], [], [['svc', 2]]);
  await a.store.commit(
    4,
    [provider('p3', 3, 'other')],
    ['p1'],
    [
      ['svc', 4],
      ['other', 3],
    ],
  );
  // 300 providers: more than etcd's 128 ops per transaction, so written as several fenced transactions.
  const many = Array.from({ length: 300 }, (_, i) => provider(`m${i}`, 5 + i, 'many'));
  const txBefore = a.store.transactions;
  await a.store.commit(304, many, [], [['many', 304]]);
  assert.ok(a.store.transactions - txBefore >= 3, `a 300-op batch took ${a.store.transactions - txBefore} txns`);

  const read = await readStore(cluster.url, prefix);
  assert.equal(read.epoch, first.epoch);
  assert.equal(read.rev, 304);
  assert.equal(read.pending, undefined, 'no split batch left open');
  assert.deepEqual(read.providers.map((p) => p.id).sort(), ['p2', 'p3', ...many.map((p) => p.id)].sort());
  assert.deepEqual(Object.fromEntries(read.serviceRevs), { svc: 4, other: 3, many: 304 });

  // a resigns; b takes over from its hot copy, without reading the store again.
  const readsBefore = b.store.fullReads;
  await a.election.close();
  await b.elected();
  const taken = await b.store.load();
  assert.equal(b.store.fullReads, readsBefore, 'take-over used the hot copy');
  assert.ok(follower.applied > 0, 'the hot copy applied changes from its watch');
  assert.equal(taken.epoch, first.epoch, 'one epoch per store');
  assert.equal(taken.rev, 304, 'revision continues where the last leader stopped');
  assert.deepEqual(taken.providers.map((p) => p.id).sort(), read.providers.map((p) => p.id).sort());
  await b.store.commit(305, [provider('p4', 305)], ['p2'], [['svc', 305]]);
  const after = await readStore(cluster.url, prefix);
  assert.equal(after.rev, 305);
  assert.ok(after.providers.some((p) => p.id === 'p4'));
  assert.ok(!after.providers.some((p) => p.id === 'p2'));
  // The follower keeps following after its own take-over.
  await follower.waitFor(after.storeRevision, 5_000);
  assert.equal(follower.snapshot().rev, 305);
});

test('fencing: a leader whose election key is gone cannot write; nothing changes', async (t) => {
  const prefix = freshPrefix();
  let stale: Term | undefined;
  // a keeps writing under the last term it won, as a process that froze and woke up before its timers ran.
  const a = await candidate(cluster.url, prefix, 'a', { fence: () => stale });
  t.after(() => a.close());
  stale = await a.elected();
  await a.store.load();
  await a.store.commit(1, [provider('a1', 1)], [], [['svc', 1]]);

  const b = await candidate(cluster.url, prefix, 'b');
  t.after(() => b.close());
  const lost = new Promise<string>((resolve) => a.election.once('lost', resolve));
  // a's lease ends behind its back (what etcd does when a's keep-alives stop arriving).
  const admin = connectEtcd(cluster.url);
  t.after(() => admin.close());
  const leaseId = BigInt('0x' + stale.key.slice('election/'.length)).toString();
  await admin.leaseClient.leaseRevoke({ ID: leaseId });
  await b.elected();
  assert.match(await lost, /gone|expired/, 'a says why it stepped down');
  const bLoaded = await b.store.load();
  assert.equal(bLoaded.rev, 1);
  const before = await readStore(cluster.url, prefix);

  await assert.rejects(
    a.store.commit(2, [provider('a2', 2)], ['a1'], [['svc', 2]]),
    (err: StoreError) => err.code === 'STORE_FENCED',
  );
  const after = await readStore(cluster.url, prefix);
  assert.equal(after.rev, before.rev, 'meta/rev unchanged');
  assert.deepEqual(
    after.providers.map((p) => p.id),
    ['a1'],
    'the fenced write changed nothing',
  );
  assert.equal(after.storeRevision, before.storeRevision, 'etcd itself saw no write');

  // The real leader writes on.
  await b.store.commit(2, [provider('b2', 2)], [], [['svc', 2]]);
  assert.equal((await readStore(cluster.url, prefix)).rev, 2);
  // And a process that knows it lost is refused before asking etcd.
  stale = undefined;
  await assert.rejects(a.store.commit(3, [provider('a3', 3)], []), (err: StoreError) =>
    ['STORE_FENCED', 'STORE_NOT_LEADER'].includes(err.code),
  );
});

test('a split batch cut short by a dying leader: the next leader continues after its revisions', async (t) => {
  const prefix = freshPrefix();
  const a = await candidate(cluster.url, prefix, 'a');
  t.after(() => a.close());
  await a.elected();
  await a.store.load();
  await a.store.commit(10, [provider('x', 10)], [], [['svc', 10]]);
  // What the first transaction of a split batch leaves when its writer dies right after it.
  const rawClient = connectEtcd(cluster.url);
  t.after(() => rawClient.close());
  const raw = rawClient.namespace(prefix);
  await raw.put('meta/pending').value('20');
  await raw.put('providers/half').value(JSON.stringify(provider('half', 15)));

  const b = await candidate(cluster.url, prefix, 'b');
  t.after(() => b.close());
  await a.election.close();
  await b.elected();
  const loaded = await b.store.load();
  assert.equal(loaded.rev, 20, 'the half-written batch revisions are never handed out again');
  const mid = await readStore(cluster.url, prefix);
  assert.equal(mid.pending, undefined, 'the take-over closed the open batch');
  assert.equal(mid.rev, 20);
  await b.store.commit(21, [provider('y', 21)], [], [['svc', 21]]);
  const end = await readStore(cluster.url, prefix);
  assert.equal(end.rev, 21);
  assert.deepEqual(end.providers.map((p) => p.id).sort(), ['half', 'x', 'y']);
});

test('a batch with more keys than one transaction allows is split and lands whole', async (t) => {
  const prefix = freshPrefix();
  const a = await candidate(cluster.url, prefix, 'a', { store: { maxTxnOps: 8 } });
  t.after(() => a.close());
  await a.elected();
  await a.store.load();
  const puts = Array.from({ length: 50 }, (_, i) => provider(`s${i}`, i + 1));
  await a.store.commit(50, puts, [], [['svc', 50]]);
  await a.store.commit(
    60,
    puts.slice(0, 10).map((p, i) => ({ ...p, rev: 51 + i, state: 'down' as const })),
    puts.slice(40).map((p) => p.id),
    [['svc', 60]],
  );
  const read = await readStore(cluster.url, prefix);
  assert.equal(read.rev, 60);
  assert.equal(read.providers.length, 40);
  assert.equal(read.providers.filter((p) => p.state === 'down').length, 10);
  assert.equal(read.pending, undefined);
});

test('a commit whose answer never came (it landed anyway) is taken into the next one, or retried as is', async (t) => {
  const prefix = freshPrefix();
  const a = await candidate(cluster.url, prefix, 'a');
  t.after(() => a.close());
  await a.elected();
  await a.store.load();
  // Give up on etcd's answer after 1 ms: the transaction is sent and lands, but the commit reports an unknown outcome.
  const inDoubt = async (rev: number, puts: ReturnType<typeof provider>[]): Promise<boolean> => {
    a.store.commitTimeoutMs = 1;
    try {
      await a.store.commit(rev, puts, [], [['svc', rev]]);
      return false;
    } catch (err) {
      assert.equal((err as StoreError).code, 'STORE_UNAVAILABLE');
      return true;
    } finally {
      a.store.commitTimeoutMs = 3000;
    }
  };
  const landed = (rev: number) => waitFor(async () => (await readStore(cluster.url, prefix)).rev === rev);

  // 1. The next commit is a superset under a higher revision (what the registry does): accepted.
  const first = await inDoubt(1, [provider('p1', 1)]);
  if (first) await landed(1);
  await a.store.commit(2, [provider('p1', 1), provider('p2', 2)], [], [['svc', 2]]);
  // 2. The same batch again, same revision: recognised as already written.
  const second = await inDoubt(3, [provider('p3', 3)]);
  if (second) await landed(3);
  t.diagnostic(`outcome unknown: first ${first}, second ${second}`);
  await a.store.commit(3, [provider('p3', 3)], [], [['svc', 3]]);
  await a.store.commit(4, [provider('p4', 4)], [], [['svc', 4]]);
  const read = await readStore(cluster.url, prefix);
  assert.equal(read.rev, 4);
  assert.deepEqual(read.providers.map((p) => p.id).sort(), ['p1', 'p2', 'p3', 'p4']);
});

/**
 * Tokens and policies in the etcd store, against a real 3-member etcd cluster: the bootstrap is committed once
 * (logged once) whichever leader takes the store first, an ACL change is fenced like a provider commit, the hot
 * standby follows the `acl/` keys so the next leader starts from them, and a change survives the take-over.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger, hashAclSecret, newAclAccessor, newAclSecret, type AclState } from '../../src/bridge/index.ts';
import { AclBootstrap, BOOTSTRAP_MESSAGE } from '../../src/leader/acl-bootstrap.ts';
import { AclRegistry } from '../../src/leader/acl-registry.ts';
import type { StoreError } from '../../src/leader/store-api.ts';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { candidate, freshPrefix, provider, readStore } from './support.ts';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster();
});
after(() => cluster.close());

test('etcd: the bootstrap is made once, ACL changes are fenced, and the next leader starts from them', async (t) => {
  const prefix = freshPrefix();
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
  const bootstrapped = () => lines.filter((l) => l.includes(BOOTSTRAP_MESSAGE)).length;

  const a = await candidate(cluster.url, prefix, 'a');
  t.after(() => a.close());
  await a.elected();
  const loaded = await a.store.load();
  assert.deepEqual(loaded.acl, { version: 0, tokens: [], policies: [] }, 'a new store has no ACLs');
  const acl: AclState = await new AclBootstrap({ log }).ensure(a.store, loaded.acl);
  assert.equal(acl.version, 1);
  assert.equal(bootstrapped(), 1, 'the secret is logged once');

  // A standby follows the store hot, ACL keys included.
  const b = await candidate(cluster.url, prefix, 'b');
  t.after(() => b.close());
  const hot = await b.store.follow();

  // A token change next to a provider commit: they share the store's one-at-a-time queue and never clash.
  const registry = new AclRegistry(acl);
  const token = {
    accessor: newAclAccessor(),
    secretHash: hashAclSecret(newAclSecret()),
    policies: ['global-management'],
    createdAt: Date.now(),
  };
  const change = registry.plan({ op: 'token.create', token });
  await Promise.all([a.store.commitAcl(change), a.store.commit(1, [provider('p1', 1)], [], [['svc', 1]])]);
  registry.apply(change);
  const stored = await readStore(cluster.url, prefix);
  assert.equal(stored.acl.version, 2);
  assert.equal(stored.rev, 1, 'the ACL change left the registry revision alone');
  assert.deepEqual(
    stored.acl.tokens.map((x) => x.accessor).sort(),
    registry
      .state()
      .tokens.map((x) => x.accessor)
      .sort(),
  );
  await hot.waitFor(stored.storeRevision, 5000);
  assert.equal(hot.snapshot().acl.version, 2, 'the hot copy has the change');

  // a resigns; b takes over from its hot copy: the same ACLs, no second bootstrap.
  await a.election.close();
  await b.elected();
  const taken = await b.store.load();
  assert.equal(taken.acl.version, 2);
  const again = await new AclBootstrap({ log }).ensure(b.store, taken.acl);
  assert.equal(again, taken.acl);
  assert.equal(bootstrapped(), 1, 'nothing bootstrapped or logged again');
  assert.ok(taken.acl.tokens.some((x) => x.accessor === token.accessor));

  // The old leader's ACL writes are fenced; the new one's land.
  const stale = registry.plan({ op: 'token.delete', accessor: token.accessor });
  await assert.rejects(a.store.commitAcl(stale), (err: StoreError) => err.code === 'STORE_FENCED');
  const next = new AclRegistry(taken.acl);
  await b.store.commitAcl(next.plan({ op: 'token.update', accessor: token.accessor, description: 'kept' }));
  const final = await b.store.readAcl();
  assert.equal(final.version, 3);
  assert.equal(final.tokens.find((x) => x.accessor === token.accessor)?.description, 'kept');
  // A change that does not follow the stored version is refused, nothing written.
  await assert.rejects(b.store.commitAcl(stale), (err: StoreError) => err.code === 'STORE_CONFLICT');
  assert.equal((await b.store.readAcl()).version, 3);
});

/**
 * Snapshot files carry the ACL state: a restore into SQLite brings the tokens and policies back (so the store is
 * not bootstrapped again), a file with a token naming a policy it does not have is refused whole, and a file
 * without ACLs (older, or from a store without them) restores with none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createLogger,
  globalManagementPolicy,
  hashAclSecret,
  newAclSecret,
  parseSnapshotFile,
  snapshotFile,
  type AclState,
} from '../../src/bridge/index.ts';
import { restoreSqlite } from '../../src/leader/snapshot.ts';
import { Store } from '../../src/leader/store.ts';
import { tempDir } from '../../harness/tmp.ts';
import { providerRecord } from '../helpers/provider-record.ts';

const log = createLogger({ level: 'silent' });

const acl: AclState = {
  version: 7,
  policies: [globalManagementPolicy()],
  tokens: [
    {
      accessor: 'a1',
      secretHash: hashAclSecret(newAclSecret()),
      policies: ['global-management'],
      createdAt: 1,
    },
  ],
};

test('a snapshot file carries the ACL state through a SQLite restore; a file without ACLs restores with none', (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const text = JSON.stringify(snapshotFile('e1', 3, [providerRecord('p1', 'billing', 3)], { acl }));
  restoreSqlite(parseSnapshotFile(text), dir.path, log);
  let store = new Store(dir.path, log);
  assert.deepEqual(store.load().acl, acl);
  store.close();

  const without = snapshotFile('e1', 3, [providerRecord('p1', 'billing', 3)]);
  assert.equal('acl' in without, false);
  restoreSqlite(parseSnapshotFile(JSON.stringify(without)), dir.path, log);
  store = new Store(dir.path, log);
  assert.deepEqual(store.load().acl, { version: 0, tokens: [], policies: [] });
  store.close();
});

test('a snapshot file whose ACL state is inconsistent is refused in one line naming the entry', () => {
  const bad = { ...acl, tokens: [{ ...acl.tokens[0], policies: ['missing'] }] };
  assert.throws(
    () => parseSnapshotFile(JSON.stringify(snapshotFile('e1', 0, [], { acl: bad }))),
    /acl\/tokens\/0 \(accessor 'a1'\): names policy 'missing'/,
  );
  const twice = { ...acl, tokens: [acl.tokens[0], acl.tokens[0]] };
  assert.throws(() => parseSnapshotFile(JSON.stringify(snapshotFile('e1', 0, [], { acl: twice }))), /appears twice/);
});

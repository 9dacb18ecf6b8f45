/** The store interface without etcd: `--store` parsing, and the SQLite store behind the async interface. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/bridge/index.ts';
import { Store } from '../../src/leader/store.ts';
import type { StoreError } from '../../src/leader/store-api.ts';
import { parseStoreSpec, sqliteStore } from '../../src/leader/store-api.ts';
import { tempDir } from '../../harness/tmp.ts';
import { providerRecord } from '../helpers/provider-record.ts';

test('--store: absent is SQLite; etcd:// lists endpoints; mistakes are named', () => {
  assert.deepEqual(parseStoreSpec(undefined), { kind: 'sqlite' });
  assert.deepEqual(parseStoreSpec('etcd://127.0.0.1:2379,10.0.0.2:22379'), {
    kind: 'etcd',
    url: 'etcd://127.0.0.1:2379,10.0.0.2:22379',
    endpoints: ['127.0.0.1:2379', '10.0.0.2:22379'],
    prefix: '/switchboard/',
  });
  assert.equal(parseStoreSpec('etcd://h:1/', '/sb/').kind, 'etcd');
  assert.throws(() => parseStoreSpec('http://127.0.0.1:2379'), /--store must be etcd:\/\//);
  assert.throws(() => parseStoreSpec('etcd://127.0.0.1'), /bad etcd endpoint '127.0.0.1'/);
  assert.throws(() => parseStoreSpec('etcd://127.0.0.1:70000'), /bad port/);
  assert.throws(() => parseStoreSpec('etcd://h:1', 'sb'), /--store-prefix/);
});

test('the SQLite store fits the async interface: commit, reload, and closed means refused', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const log = createLogger({ level: 'error' });
  const store = sqliteStore(new Store(dir.path, log));
  const first = await store.load();
  assert.equal(first.rev, 0);
  const p = providerRecord('p1', 'svc', 1);
  await store.commit(1, [p], [], [['svc', 1]]);
  await store.close();
  await assert.rejects(store.commit(2, [], ['p1']), (err: StoreError) => err.code === 'STORE_CLOSED');

  const again = sqliteStore(new Store(dir.path, log));
  t.after(() => again.close());
  const loaded = await again.load();
  assert.equal(loaded.epoch, first.epoch);
  assert.equal(loaded.rev, 1);
  assert.deepEqual(
    loaded.providers.map((x) => x.id),
    ['p1'],
  );
  assert.equal(again.kind, 'sqlite');
});

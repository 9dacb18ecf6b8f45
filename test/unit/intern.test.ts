/** Compact provider records (bridge/intern.ts): the same values, shared tag lists and meta maps, frozen. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compactProvider, createLogger, pack, Replica, unpack, type Provider } from '../../src/bridge/index.ts';
import { Registry } from '../../src/leader/registry.ts';
import { sqliteStore } from '../../src/leader/store-api.ts';
import { Store } from '../../src/leader/store.ts';
import { tempDir } from '../../harness/tmp.ts';
import { providerRecord } from '../helpers/provider-record.ts';

/** A record as a decoder gives it: every string and object its own copy. */
const decoded = (p: Provider): Provider => unpack(pack(p)) as Provider;

test('a compacted record serializes byte for byte as before, with equal tag lists and meta maps shared and frozen', () => {
  const a = decoded(providerRecord('a', 'billing', 1));
  const b = decoded({ ...providerRecord('b', 'billing', 2), meta: { rev: '1' } });
  const before = JSON.stringify(a);
  compactProvider(a);
  compactProvider(b);
  assert.equal(JSON.stringify(a), before);
  assert.equal(a.tags, b.tags, 'equal tag lists are one array');
  assert.equal(a.meta, b.meta, 'equal meta maps are one object');
  assert.ok(Object.isFrozen(a.tags) && Object.isFrozen(a.meta));
  assert.throws(() => a.tags.push('x'), TypeError, 'an edit throws instead of changing every record');
  const empty = [decoded({ ...providerRecord('c', 'x', 3), tags: [], meta: {} })].map(compactProvider);
  assert.deepEqual([empty[0].tags, empty[0].meta], [[], {}]);
  assert.equal(compactProvider(a), a, 'compacting twice is harmless');
});

test('registry and replica records share their lists; a re-registration with other tags gets its own', async (t) => {
  const dir = tempDir();
  const store = new Store(dir.path, createLogger({ level: 'silent' }));
  t.after(() => {
    store.close();
    dir.remove();
  });
  const registry = new Registry(sqliteStore(store), store.load(), {
    log: createLogger({ level: 'silent' }),
    publish: () => undefined,
  });
  const input = (port: number, tags: string[]) => ({
    service: 'web',
    host: '10.0.0.1',
    port,
    protocol: 'http',
    tags,
    meta: { zone: 'a' },
  });
  const p1 = registry.put('p1', input(1, ['blue'])).provider;
  const p2 = registry.put('p2', input(2, ['blue'])).provider;
  assert.equal(p1.tags, p2.tags);
  assert.equal(p1.meta, p2.meta);
  const moved = registry.put('p2', input(2, ['green'])).provider;
  assert.deepEqual([p1.tags, moved.tags], [['blue'], ['green']]);
  const replica = new Replica();
  replica.applySnapshot({ epoch: registry.epoch, rev: 3, providers: [p1, moved].map(decoded) });
  assert.equal(replica.provider('p1')?.meta, replica.provider('p2')?.meta);
  assert.deepEqual(replica.provider('p2')?.tags, ['green']);
});

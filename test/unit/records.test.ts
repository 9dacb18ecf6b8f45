/** Stored-record checks and the key-order-insensitive "same provider" of a re-registration. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, createLogger, providerProblem, sameJson } from '../../src/bridge/index.ts';
import { Registry } from '../../src/leader/registry.ts';
import { sqliteStore } from '../../src/leader/store-api.ts';
import { Store } from '../../src/leader/store.ts';
import { tempDir } from '../../harness/tmp.ts';
import { providerRecord } from '../helpers/provider-record.ts';

test('canonicalJson sorts object keys at every depth and keeps array order', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
  assert.ok(sameJson({ x: '1', y: '2' }, { y: '2', x: '1' }));
  assert.ok(sameJson(undefined, null));
  assert.ok(!sameJson(['a', 'b'], ['b', 'a']), 'tag order is kept');
  assert.ok(!sameJson({ x: '1' }, { x: '1', y: '2' }));
});

test('providerProblem names the first bad field as a JSON pointer', () => {
  assert.equal(providerProblem(providerRecord('a', 'billing', 1)), undefined);
  assert.match(providerProblem({ ...providerRecord('a', 'billing', 1), tags: 'x' }) ?? '', /^\/tags /);
  const { tags: _tags, ...noTags } = providerRecord('a', 'billing', 1);
  assert.match(providerProblem(noTags) ?? '', /tags/);
  assert.match(providerProblem(42) ?? '', /\S/);
});

test('re-registering the same fields in another key order is no change: no event, no revision, no commit', async (t) => {
  const dir = tempDir();
  const store = new Store(dir.path, createLogger({ level: 'silent' }));
  t.after(() => {
    store.close();
    dir.remove();
  });
  const published: number[] = [];
  const registry = new Registry(sqliteStore(store), store.load(), {
    log: createLogger({ level: 'silent' }),
    publish: (e) => published.push(e.rev),
  });
  const first = registry.put('p1', {
    service: 'billing',
    host: '127.0.0.1',
    port: 9000,
    protocol: 'http',
    tags: ['a', 'b'],
    meta: { zone: 'eu', rack: '7' },
    check: { type: 'zmq', endpoint: 'tcp://127.0.0.1:6001', intervalMs: 500, misses: 3 },
  });
  assert.equal(first.status, 201);
  await registry.committed();
  const commits = registry.commits;

  const again = registry.put('p1', {
    protocol: 'http',
    port: 9000,
    meta: { rack: '7', zone: 'eu' },
    check: { misses: 3, intervalMs: 500, endpoint: 'tcp://127.0.0.1:6001', type: 'zmq' },
    tags: ['a', 'b'],
    host: '127.0.0.1',
    service: 'billing',
  });
  assert.equal(again.changed, false);
  assert.equal(again.status, 200);
  await registry.committed();
  assert.equal(registry.rev, 1);
  assert.equal(registry.commits, commits);
  assert.deepEqual(published, [1]);

  // A real change still is one.
  assert.equal(
    registry.put('p1', {
      service: 'billing',
      host: '127.0.0.1',
      port: 9000,
      protocol: 'http',
      tags: ['b', 'a'],
      meta: { rack: '7', zone: 'eu' },
      check: { type: 'zmq', endpoint: 'tcp://127.0.0.1:6001', intervalMs: 500, misses: 3 },
    }).changed,
    true,
  );
});

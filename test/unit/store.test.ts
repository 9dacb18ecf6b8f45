/**
 * The leader's SQLite store on its own: what a leader relies on when it restarts (same epoch, same revision, every
 * committed provider), what `close()` promises (the file is let go at once, so a store reopens in the same
 * process), one leader per store (a second process is refused), and durability: every commit that returned
 * survives SIGKILL of the writing process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Store, STORE_FILE } from '../../src/leader/store.ts';
import { createLogger, type Provider } from '../../src/bridge/index.ts';
import { tempDir } from '../../harness/tmp.ts';
import { spawnTs } from '../../harness/process.ts';
import { providerRecord } from '../helpers/provider-record.ts';

const log = createLogger({ name: 'store-test', level: 'warn' });
const WRITER = new URL('../fixtures/store-writer.ts', import.meta.url).pathname;

test('a store keeps its epoch, revision, providers and service revisions across close and reopen', () => {
  const dir = tempDir();
  try {
    const first = new Store(dir.path, log);
    const fresh = first.load();
    assert.match(fresh.epoch, /\S/);
    assert.equal(fresh.rev, 0);
    assert.deepEqual(fresh.providers, []);

    const c = providerRecord('c', 'search', 2);
    first.commit(1, [providerRecord('a', 'billing', 1), providerRecord('b', 'billing', 1)], [], [['billing', 1]]);
    first.commit(
      2,
      [c],
      ['a'],
      [
        ['search', 2],
        ['billing', 2],
      ],
    );
    first.close();
    first.close(); // idempotent
    assert.ok(!existsSync(join(dir.path, `${STORE_FILE}-wal`)), 'close folds the WAL into the file');

    // Same process, right away: close() has let go of the exclusive lock.
    const second = new Store(dir.path, log);
    try {
      const loaded = second.load();
      assert.equal(loaded.epoch, fresh.epoch);
      assert.equal(loaded.rev, 2);
      assert.deepEqual(loaded.providers.map((p) => p.id).sort(), ['b', 'c']);
      assert.deepEqual(
        loaded.providers.find((p) => p.id === 'c'),
        c,
      );
      assert.deepEqual([...loaded.serviceRevs].sort(), [
        ['billing', 2],
        ['search', 2],
      ]);
      second.commit(3, [], ['b'], [['billing', 3]]);
    } finally {
      second.close();
    }
    const third = new Store(dir.path, log);
    try {
      assert.equal(third.load().rev, 3);
    } finally {
      third.close();
    }
  } finally {
    dir.remove();
  }
});

test('a commit that fails part-way leaves nothing behind and the store usable', () => {
  const dir = tempDir();
  const store = new Store(dir.path, log);
  try {
    store.commit(1, [providerRecord('a', 'billing', 1)], [], [['billing', 1]]);
    // JSON.stringify throws on a BigInt, after the delete and the first put have run inside the transaction.
    const bad = { ...providerRecord('b', 'billing', 2), meta: { big: 1n } } as unknown as Provider;
    assert.throws(() => store.commit(2, [providerRecord('c', 'billing', 2), bad], ['a'], [['billing', 2]]), /BigInt/);
    const after = store.load();
    assert.equal(after.rev, 1);
    assert.deepEqual(
      after.providers.map((p) => p.id),
      ['a'],
    );

    store.commit(2, [providerRecord('c', 'billing', 2)], [], [['billing', 2]]);
    assert.equal(store.load().rev, 2);
  } finally {
    store.close();
    dir.remove();
  }
});

test('every returned commit survives SIGKILL of the writer, and a second process cannot open a store in use', async (t) => {
  const dir = tempDir();
  const writer = spawnTs(WRITER, [dir.path, '20']);
  t.after(async () => {
    await writer.stop();
    dir.remove();
  });
  // Generous deadlines: on a busy machine a tsx process alone can take more than 20 s to start.
  await writer.waitForLine(/^ACK 10$/, 90_000);

  // One leader per store: while the writer holds it, opening it here fails once the busy timeout runs out.
  assert.throws(() => new Store(dir.path, log), /locked|SQLITE_BUSY/i);

  const seen = Number((await writer.waitForLine(/^ACK (\d*[05]0)$/, 60_000))[1]);
  writer.signal('SIGKILL');
  assert.equal(await writer.exited, 'SIGKILL');
  const acked = Math.max(...writer.lines.map((l) => Number(/^ACK (\d+)$/.exec(l)?.[1] ?? 0)));
  assert.ok(acked >= seen);
  t.diagnostic(`writer killed after ${acked} acknowledged commits of 20 providers`);

  const store = new Store(dir.path, log);
  try {
    const loaded = store.load();
    assert.ok(loaded.rev >= acked, `stored rev ${loaded.rev} < acknowledged ${acked}`);
    const perCommit = new Map<number, number>();
    for (const p of loaded.providers) perCommit.set(p.rev, (perCommit.get(p.rev) ?? 0) + 1);
    for (let k = 1; k <= acked; k++) assert.equal(perCommit.get(k), 20, `commit ${k} was acknowledged`);
    for (const [k, count] of perCommit) assert.equal(count, 20, `commit ${k} is all or nothing`);
    assert.equal(Math.max(...perCommit.keys()), loaded.rev, 'the revision and the rows are one transaction');
  } finally {
    store.close();
  }
});

/**
 * `switchboard snapshot restore FILE --store etcd://...` against a real etcd (one member): refused while a leader
 * candidate holds an election key under the prefix; otherwise the store holds exactly the file's providers, in
 * more transactions than etcd's op limit allows in one, under a new epoch, and a leader taking it over continues
 * from the file's revision.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { snapshotFile } from '../../src/bridge/index.ts';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../../harness/tmp.ts';
import { candidate, freshPrefix, provider, readStore } from './support.ts';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster({ size: 1 });
});
after(() => cluster.close());

test('restore into etcd: refused while a leader runs, then the whole file under a new epoch', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const prefix = freshPrefix();
  // 300 providers in two services: more than one transaction of 128 ops.
  const providers = Array.from({ length: 300 }, (_, i) => provider(`p${i}`, i + 1, i % 2 ? 'odd' : 'even'));
  const file = join(dir.path, 'snap.json');
  writeFileSync(file, JSON.stringify(snapshotFile('oldepoch', 400, providers)));
  const restore = (): ReturnType<typeof runCli> =>
    runCli(['snapshot', 'restore', file, '--store', cluster.url, '--store-prefix', prefix], { timeoutMs: 90_000 });

  // A leader (a candidate, elected) on the prefix: refused, nothing written.
  const leader = await candidate(cluster.url, prefix, 'running');
  await leader.elected();
  await leader.store.load();
  await leader.store.commit(1, [provider('old', 1)], [], [['svc', 1]]);
  const refused = await restore();
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr.trim(),
    new RegExp(
      `^switchboard snapshot restore: store ${cluster.url}${prefix}: in use by a leader \\(election key ${prefix}election/`,
    ),
  );
  assert.deepEqual(
    (await readStore(cluster.url, prefix)).providers.map((p) => p.id),
    ['old'],
  );
  await leader.close();

  const restored = await restore();
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stdout, /rev 400, 300 providers/);
  const read = await readStore(cluster.url, prefix);
  assert.equal(read.rev, 400);
  assert.notEqual(read.epoch, 'oldepoch');
  assert.equal(read.pending, undefined);
  assert.deepEqual(
    read.providers.map((p) => p.id).sort(),
    providers.map((p) => p.id).sort(),
    'exactly the file: the old provider is gone',
  );
  assert.deepEqual([...read.serviceRevs].sort(), [
    ['even', 299],
    ['odd', 300],
  ]);

  // A leader takes the restored store over and continues from its revision.
  const next = await candidate(cluster.url, prefix, 'next');
  t.after(() => next.close());
  await next.elected();
  const loaded = await next.store.load();
  assert.equal(loaded.rev, 400);
  assert.equal(loaded.epoch, read.epoch);
  assert.equal(loaded.providers.length, 300);
});

/**
 * `switchboard snapshot save` from a running system and `snapshot restore` into a fresh SQLite store, through the
 * CLI processes; a restore into a store in use and a bad file are refused in one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, SNAPSHOT_FORMAT } from '../../src/bridge/index.ts';
import { start as startLeader } from '../../src/leader/index.ts';
import { Store } from '../../src/leader/store.ts';
import { loopbackStartArgs, spawnRole } from '../../harness/process.ts';
import { http } from '../../harness/http.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';
import { runCli } from '../helpers/cli.ts';

const log = createLogger({ level: 'silent' });
const opts = { timeoutMs: 90_000 };

test('save a snapshot from a running system, restore it into a fresh data dir, and a leader there has the providers', async (t) => {
  const [running, fresh, files] = [tempDir(), tempDir(), tempDir()];
  const system = spawnRole('start', loopbackStartArgs(running.path));
  t.after(async () => {
    await system.stop();
    [running, fresh, files].forEach((d) => d.remove());
  });
  const url = (await system.waitForLine(/^switchboard gateway: url=(\S+)/, 90_000))[1];
  await waitFor(async () => (await http('GET', `${url}/readyz`)).status === 200, { what: 'ready', timeoutMs: 30_000 });
  for (const [id, port] of [
    ['a', 9001],
    ['b', 9002],
  ] as const) {
    const r = await http('PUT', `${url}/v1/providers/${id}`, {
      service: 'billing',
      host: '127.0.0.1',
      port,
      protocol: 'http',
      tags: ['v1'],
      meta: { zone: 'eu' },
    });
    assert.equal(r.status, 201);
  }

  const file = join(files.path, 'snap.json');
  const saved = await runCli(['snapshot', 'save', file, '--gateway', url], opts);
  assert.equal(saved.code, 0, saved.stderr);
  assert.match(saved.stdout, /saved .*snap\.json \(epoch \w+, rev 2, 2 providers\)/);
  const snapshot = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(snapshot.format, SNAPSHOT_FORMAT);
  assert.equal(snapshot.version, 1);
  assert.equal(snapshot.rev, 2);
  assert.ok(!Number.isNaN(Date.parse(snapshot.takenAt)));
  assert.deepEqual(snapshot.providers.map((p: { id: string }) => p.id).sort(), ['a', 'b']);
  // The system keeps running: a write after the save is still taken.
  const after = await http('PUT', `${url}/v1/providers/c`, {
    service: 'orders',
    host: '127.0.0.1',
    port: 9003,
    protocol: 'http',
  });
  assert.equal(after.status, 201);

  // A store in use is refused (its lock), and so is a bad file, each in one line.
  const busy = await runCli(['snapshot', 'restore', file, '--data-dir', running.path], opts);
  assert.equal(busy.code, 1);
  assert.match(
    busy.stderr.trim(),
    new RegExp(
      `^switchboard snapshot restore: store ${join(running.path, 'switchboard.db').replace(/[.]/g, '\\.')}: in use`,
    ),
  );
  const bad = join(files.path, 'bad.json');
  writeFileSync(
    bad,
    JSON.stringify({ ...snapshot, providers: [snapshot.providers[0], { ...snapshot.providers[1], tags: 'v1' }] }),
  );
  const refused = await runCli(['snapshot', 'restore', bad, '--data-dir', fresh.path], opts);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  assert.match(refused.stderr, /snapshot .*bad\.json: providers\[1\] \(id 'b'\): \/tags /);

  const restored = await runCli(['snapshot', 'restore', file, '--data-dir', fresh.path], opts);
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stdout, /restored .* \(new epoch \w+, rev 2, 2 providers\)/);

  const leader = await startLeader(
    { dataDir: fresh.path, bind: 'tcp://127.0.0.1:*', publish: 'tcp://127.0.0.1:*' },
    { log },
  );
  try {
    const status = leader.status();
    assert.equal(status.providers, 2);
    assert.equal(status.rev, 2, 'revisions go on from the snapshot');
    assert.notEqual(status.epoch, snapshot.epoch, 'a restored store has a new epoch');
  } finally {
    await leader.close();
  }
  const store = new Store(fresh.path, log);
  try {
    const loaded = store.load();
    assert.deepEqual(
      loaded.providers.sort((x, y) => x.id.localeCompare(y.id)),
      snapshot.providers.sort((x: { id: string }, y: { id: string }) => x.id.localeCompare(y.id)),
    );
    assert.deepEqual([...loaded.serviceRevs], [['billing', 2]]);
  } finally {
    store.close();
  }
});

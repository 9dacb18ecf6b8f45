/**
 * The leader's store fails for real (issue 10 item 6): the leader process gets a file-size limit (`prlimit
 * --fsize`), so SQLite's writes fail with EFBIG as on a full disk; raising the limit again is "space freed".
 * While failing: writes answer 503 SB_STORE_UNAVAILABLE, the gateway is not ready and says why, /metrics shows
 * it; presence decisions go on and are published once durable; nothing acknowledged is lost. A store that does
 * not recover makes the leader exit with code 75.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SwitchboardClient } from '../../src/client/index.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';
import { allInState, startFaultCluster, startProviders, type FaultCluster } from './harness.ts';

/**
 * Caps the size of any file the leader process writes (soft RLIMIT_FSIZE; Node ignores SIGXFSZ, so a write past
 * it fails with EFBIG): its store then fails as on a full disk. The hard limit stays unlimited, so the soft one
 * can be raised again without privileges.
 */
function limitFileSize(pid: number, bytes: number | 'unlimited'): void {
  execFileSync('prlimit', ['--pid', String(pid), `--fsize=${bytes}:unlimited`]);
}

/** The largest file of the store (database or its WAL). */
function largestStoreFile(dir: string): number {
  return Math.max(...readdirSync(dir).map((f) => statSync(join(dir, f)).size));
}

const register = (url: string, id: string, padBytes: number) =>
  http('PUT', `${url}/v1/providers/${id}`, {
    service: 'disk',
    host: '127.0.0.1',
    port: 1 + (Number.parseInt(id.replace(/\D/g, '') || '0', 10) % 60000),
    protocol: 'http',
    // Up to 64 values of 512 bytes each (the schema's bounds).
    meta: Object.fromEntries(Array.from({ length: Math.ceil(padBytes / 500) }, (_, i) => [`pad${i}`, 'x'.repeat(500)])),
  });

/** Registers padded providers until the store refuses one; returns the acknowledged ids and the refusal. */
async function fillUntilRefused(fc: FaultCluster, url: string, acked: Map<string, number>) {
  limitFileSize(fc.leader.pid, largestStoreFile(fc.dataDir) + 256 * 1024);
  for (let n = 0; n < 3000; n++) {
    const res = await register(url, `big-${n}`, 8000);
    if (res.status === 201) acked.set(`big-${n}`, res.body.rev);
    else return res;
  }
  throw new Error('the store never failed under the file-size limit');
}

test('disk full: writes 503 and not ready while failing, a crash is published and every ack kept after recovery', async (t) => {
  const fc = await startFaultCluster(t, { workers: 1, gateways: 1, leaderArgs: ['--store-fail-exit-ms', '120000'] });
  const url = fc.gateways[0].url;
  const client = new SwitchboardClient({ gateways: [url], lookupCacheMs: 0 });
  t.after(() => client.close());
  const [doomed] = await startProviders(fc, client, 'beats', [['doomed-0']]);
  await allInState(client, 'beats', ['doomed-0'], 'up');

  const acked = new Map<string, number>();
  const refused = await fillUntilRefused(fc, url, acked);
  const failedAt = Date.now();
  t.diagnostic(`store refused a write after ${acked.size} acknowledged padded registrations`);
  assert.equal(refused.status, 503);
  assert.equal(refused.body.code, 'SB_STORE_UNAVAILABLE', JSON.stringify(refused.body));

  const during = await register(url, 'during-0', 10);
  assert.equal(during.status, 503, 'later writes are refused while the store fails');
  assert.equal(during.body.code, 'SB_STORE_UNAVAILABLE');
  const ready = await waitFor(
    async () => {
      const r = await http('GET', `${url}/readyz`);
      return r.status === 503 && r.body.leaderStore?.healthy === false ? r : undefined;
    },
    { timeoutMs: 5000, what: 'gateway not ready while the leader store fails' },
  );
  assert.match(ready.body.reason, /store/);
  const metrics = await http('GET', `${url}/metrics`);
  assert.match(metrics.body, /^switchboard_leader_store_healthy 0$/m);
  assert.match(metrics.body, /^switchboard_leader_store_commit_failures_total [1-9]/m);

  // A provider crashes while nothing can be stored: the decision waits for the store.
  doomed.child.signal('SIGKILL');
  await waitFor(async () => (await client.lookup('beats', { state: 'all' }))[0]?.state === 'up', {
    what: 'not published while not durable',
  });

  limitFileSize(fc.leader.pid, 'unlimited'); // space freed
  const freedAt = Date.now();
  await waitFor(async () => (await http('GET', `${url}/readyz`)).status === 200, {
    timeoutMs: 10_000,
    what: 'gateway ready again once the store recovers',
  });
  t.diagnostic(`failing for ${freedAt - failedAt} ms; ready again ${Date.now() - freedAt} ms after space was freed`);
  await allInState(client, 'beats', ['doomed-0'], 'down', 10_000);
  const after = await register(url, 'after-4242', 10);
  assert.equal(after.status, 201, 'writes work again');
  acked.set('after-4242', after.body.rev);

  fc.leader.signal('SIGKILL');
  await fc.leader.exited;
  await fc.startLeader();
  const stored = await fc.leaderSnapshot();
  const ids = new Set(stored.providers.map((p) => p.id));
  assert.deepEqual(
    [...acked.keys()].filter((id) => !ids.has(id)),
    [],
    'every acknowledged write is in the store after a restart',
  );
  assert.equal(stored.providers.find((p) => p.id === 'doomed-0')?.state, 'down', 'the crash is stored too');
});

test('a store that does not recover: the leader logs one fatal line and exits with code 75', async (t) => {
  const fc = await startFaultCluster(t, { workers: 0, gateways: 1, leaderArgs: ['--store-fail-exit-ms', '1500'] });
  const acked = new Map<string, number>();
  const refused = await fillUntilRefused(fc, fc.gateways[0].url, acked);
  assert.equal(refused.body.code, 'SB_STORE_UNAVAILABLE');
  const code = await Promise.race([
    fc.leader.exited,
    new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000).unref()),
  ]);
  assert.equal(code, 75);
  const fatal = fc.leader
    .stderrTail()
    .split('\n')
    .filter((l) => l.includes('"level":60'));
  assert.equal(fatal.length, 1, fatal.join('\n'));
  assert.match(fatal[0], /store keeps failing/);
});

/**
 * A service whose last provider left keeps no row in the store (names of services long gone would pile up), and
 * the revision its followers know it by stays right across a leader restart: the next event of that service
 * carries a `prev` at or past its last change, a gateway that followed throughout converges, and a blocking
 * query on the service wakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/bridge/index.ts';
import { start as startGateway } from '../../src/gateway/index.ts';
import { start as startLeader, type LeaderHandle } from '../../src/leader/index.ts';
import { Store } from '../../src/leader/store.ts';
import { freePort } from '../../harness/ports.ts';
import { http } from '../../harness/http.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';
import { providerRecord } from '../helpers/provider-record.ts';

const log = createLogger({ level: 'silent' });

test('the store drops the row of a service whose last provider left, and remembers the revision in one value', (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const store = new Store(dir.path, log);
  store.commit(
    2,
    [providerRecord('a', 'solo', 1), providerRecord('b', 'other', 2)],
    [],
    [
      ['solo', 1],
      ['other', 2],
    ],
  );
  store.commit(3, [], ['a'], [['solo', 3]]);
  // A move empties a service too: b goes from other to moved.
  store.commit(
    4,
    [providerRecord('b', 'moved', 4)],
    [],
    [
      ['other', 4],
      ['moved', 4],
    ],
  );
  store.close();
  const reopened = new Store(dir.path, log);
  try {
    const loaded = reopened.load();
    assert.deepEqual([...loaded.serviceRevs], [['moved', 4]]);
    assert.equal(loaded.emptiedRev, 4);
  } finally {
    reopened.close();
  }
});

test('register, deregister the last provider of S, restart the leader, register S again: followers converge', async (t) => {
  const dir = tempDir();
  const [bindPort, pubPort] = [await freePort(), await freePort()];
  const leaderConfig = {
    dataDir: dir.path,
    bind: `tcp://127.0.0.1:${bindPort}`,
    publish: `tcp://127.0.0.1:${pubPort}`,
  };
  let leader: LeaderHandle = await startLeader(leaderConfig, { log });
  const gateway = await startGateway(
    { leader: leader.control, leaderEvents: leader.events, httpPort: 0, zmqPub: 'off', zmqSnapshot: 'off' },
    { log },
  );
  t.after(async () => {
    await gateway.close();
    await leader.close();
    dir.remove();
  });
  const url = gateway.url;
  await waitFor(async () => (await http('GET', `${url}/readyz`)).status === 200, { what: 'gateway ready' });
  const solo = { service: 'solo', host: '127.0.0.1', port: 9001, protocol: 'http' };
  assert.equal((await http('PUT', `${url}/v1/providers/s1`, solo)).status, 201);
  assert.equal((await http('PUT', `${url}/v1/providers/o1`, { ...solo, service: 'other', port: 9002 })).status, 201);
  assert.equal((await http('DELETE', `${url}/v1/providers/s1`)).status, 204); // rev 3: solo is empty
  assert.equal((await http('PUT', `${url}/v1/providers/o2`, { ...solo, service: 'other', port: 9003 })).status, 201); // rev 4

  await waitFor(async () => (await http('GET', `${url}/v1/services`)).body.rev === 4, { what: 'gateway at rev 4' });
  const before = await http('GET', `${url}/v1/services/solo`);
  const index = Number(before.headers.get('x-switchboard-index'));
  assert.equal(index, 3, 'the gateway knows solo by its removal');

  await leader.close();
  const stored = new Store(dir.path, log);
  try {
    const loaded = stored.load();
    assert.ok(!loaded.serviceRevs.has('solo'), 'no row is kept for the empty service');
    assert.equal(loaded.serviceRevs.get('other'), 4);
  } finally {
    stored.close();
  }
  leader = await startLeader(leaderConfig, { log });

  // A blocking query on solo, from the index the gateway gave before the restart, wakes when solo comes back.
  const blocked = http('GET', `${url}/v1/services/solo?index=${index}&wait=30s`);
  // Writes answer 503 until the gateway has found the restarted leader.
  const again = await waitFor(
    async () => {
      const r = await http('PUT', `${url}/v1/providers/s1`, solo);
      return r.status === 503 ? undefined : r;
    },
    { what: 'a write to the restarted leader', timeoutMs: 20_000, intervalMs: 100 },
  );
  assert.equal(again.status, 201, JSON.stringify(again.body));
  assert.equal(again.body.rev, 5);
  const woke = await blocked;
  assert.equal(woke.status, 200);
  assert.deepEqual(
    woke.body.providers.map((p: { id: string }) => p.id),
    ['s1'],
  );
  assert.equal(Number(woke.headers.get('x-switchboard-index')), 5);

  // Its event still says when solo last changed, so a follower that missed the removal sees the gap.
  const [event] = leader.history(4) ?? [];
  assert.equal(event.service, 'solo');
  assert.equal(event.prev, 3);
  await waitFor(async () => (await http('GET', `${url}/v1/services`)).body.rev === 5, { what: 'gateway at rev 5' });
  const services = (await http('GET', `${url}/v1/services`)).body.services.map((s: { name: string }) => s.name);
  assert.deepEqual(services.sort(), ['other', 'solo']);
});

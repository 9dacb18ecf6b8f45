/**
 * Workers and gateways given a list of leader endpoints follow whichever leader is bound: one leader stops, another
 * (the same store, another endpoint, a new session) starts, and both follow it without being restarted. This is
 * what an HA failover looks like from their side; the etcd election itself is tested in test/faults/ha.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/bridge/index.ts';
import { start as startGateway } from '../../src/gateway/index.ts';
import { start as startLeader, type LeaderHandle } from '../../src/leader/index.ts';
import { start as startWorker } from '../../src/worker/index.ts';
import { http } from '../../harness/http.ts';
import { freePort } from '../../harness/ports.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';

test('a gateway and a worker with a leader list move to the leader that binds next', async (t) => {
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const dir = tempDir();
  const endpoints = await Promise.all([0, 1, 2, 3].map(async () => `tcp://127.0.0.1:${await freePort()}`));
  const [controlA, controlB, eventsA, eventsB] = endpoints;
  const leaders: LeaderHandle[] = [];
  t.after(async () => {
    for (const l of leaders) await l.close();
    dir.remove();
  });
  const leaderA = await startLeader(
    { dataDir: dir.path, bind: controlA, publish: eventsA, reassignGraceMs: 0 },
    { log },
  );
  leaders.push(leaderA);
  const gateway = await startGateway(
    { leader: [controlA, controlB], httpPort: 0, zmqPub: 'off', zmqSnapshot: 'off' },
    { log },
  );
  t.after(() => gateway.close());
  const worker = await startWorker({ leader: `${controlA},${controlB}` }, { log });
  t.after(() => worker.close());
  await waitFor(async () => (await http('GET', `${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
  await waitFor(() => leaderA.status().workers === 1, { what: 'worker welcomed by A' });
  const body = { service: 'billing', host: '127.0.0.1', port: 9001, protocol: 'http' };
  const first = await http('PUT', `${gateway.url}/v1/providers/billing-1`, body);
  assert.equal(first.status, 201);
  assert.equal(gateway.follower.activeLeader, controlA);
  const sessionA = gateway.follower.leaderSession;

  await leaderA.close();
  await waitFor(async () => (await http('GET', `${gateway.url}/readyz`)).status === 503, {
    what: 'gateway not ready while no leader is bound',
  });
  const startedB = performance.now();
  const leaderB = await startLeader(
    { dataDir: dir.path, bind: controlB, publish: eventsB, reassignGraceMs: 0 },
    { log },
  );
  leaders.push(leaderB);
  await waitFor(async () => (await http('GET', `${gateway.url}/readyz`)).status === 200, {
    what: 'gateway ready with leader B',
  });
  t.diagnostic(`gateway ready again ${(performance.now() - startedB).toFixed(0)} ms after leader B started`);
  assert.equal(gateway.follower.activeLeader, controlB, 'the pong named B as the active leader');
  assert.notEqual(gateway.follower.leaderSession, sessionA);
  await waitFor(() => leaderB.status().workers === 1, { what: 'the worker said hello to B' });

  // Writes go to B, and B's events reach the replica through the SUB, which moved to B's PUB.
  const second = await http('PUT', `${gateway.url}/v1/providers/billing-2`, { ...body, port: 9002 });
  assert.equal(second.status, 201);
  assert.equal(second.body.rev, first.body.rev + 1, 'the same store: revisions continue');
  await waitFor(async () => (await http('GET', `${gateway.url}/v1/services/billing`)).body.providers.length === 2, {
    what: 'the replica has both providers',
  });
});

/**
 * Bad input never crashes a role or changes state: every route answers 4xx naming the field, and garbage frames on
 * every ZeroMQ socket are dropped and counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dealer, Publisher } from 'zeromq';
import { createLogger, Follower, Metrics, pack } from '../../src/bridge/index.ts';
import { startCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';

const good = { service: 'billing', host: '127.0.0.1', port: 9000, protocol: 'http' };

function dropped(metricsText: string): number {
  return [...metricsText.matchAll(/^switchboard_frames_dropped_total\{[^}]*\} (\d+)$/gm)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
}

test('REST refusals that come from the leader cross its socket: unknown ids 404, a taken address 409', async (t) => {
  // Validation, error shapes and every 400 are route-level: test/gateway/routes.test.ts checks them through inject().
  const c = await startCluster();
  t.after(() => c.close());
  const invalid = await http('PUT', `${c.url}/v1/providers/p1`, { ...good, port: 70000 });
  assert.equal(invalid.status, 400, 'refused by the gateway itself');
  for (const [method, path] of [
    ['DELETE', '/v1/providers/nope'],
    ['PUT', '/v1/providers/nope/maintenance'],
    ['PUT', '/v1/providers/nope/ttl'],
  ]) {
    const res = await http(method, `${c.url}${path}`, path.endsWith('maintenance') ? { enabled: true } : undefined);
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.equal(res.body.code, 'SB_PROVIDER_NOT_FOUND');
    assert.equal(res.body.statusCode, 404);
  }
  // The same address under another id is a conflict, not a duplicate.
  assert.equal((await http('PUT', `${c.url}/v1/providers/p1`, good)).status, 201);
  const conflict = await http('PUT', `${c.url}/v1/providers/p2`, good);
  assert.equal(conflict.status, 409);
  assert.equal(conflict.body.code, 'SB_ADDRESS_CONFLICT');
  // A TTL pass for a provider whose check is not ttl.
  const notTtl = await http('PUT', `${c.url}/v1/providers/p1/ttl`);
  assert.equal(notTtl.status, 409);
  assert.equal(notTtl.body.code, 'SB_NOT_TTL_CHECK');
  // Nothing above changed the registry but the one good write.
  const services = await http('GET', `${c.url}/v1/services`);
  assert.deepEqual(services.body.services, [{ name: 'billing', providers: 1, up: 1 }]);
  assert.equal(services.body.rev, 1);
});

test('ZeroMQ: garbage frames to the leader, the gateway follower and the worker are dropped and counted', async (t) => {
  const c = await startCluster();
  t.after(() => c.close());
  const log = createLogger({ level: 'silent' });

  // Leader ROUTER: garbage, truncated msgpack, wrong types, too many frames.
  const dealer = new Dealer({ linger: 0 });
  dealer.connect(c.leader.control);
  t.after(() => dealer.close());
  await dealer.send(Buffer.from([0xc1, 0xff, 0x00]));
  await dealer.send(Buffer.from([0x92, 0x01]));
  await dealer.send(pack({ type: 'put', reqId: 1, input: { service: 'x' } }));
  await dealer.send(pack({ type: 'launch-missiles' }));
  await dealer.send(['a', 'b', 'c']);
  await waitFor(async () => dropped(await c.leader.metrics.render()) >= 5, { what: 'leader drops counted' });

  // A follower fed by a hostile publisher: unknown topics, garbage events, events of a bad shape.
  const evil = new Publisher({ linger: 0 });
  await evil.bind('tcp://127.0.0.1:*');
  t.after(() => evil.close());
  const metrics = new Metrics();
  const follower = new Follower({ leader: c.leader.control, events: evil.lastEndpoint!, log, metrics });
  t.after(() => follower.close());
  await waitFor(() => follower.replica.loaded, { what: 'follower snapshot' });
  const revBefore = follower.replica.rev;
  await waitFor(
    async () => {
      await evil.send(['ev', Buffer.from([0xc1])]);
      await evil.send(['ev', pack({ epoch: 'x', rev: 'one' })]);
      // A commit's events in one message: an empty list and a list with a malformed event are dropped whole.
      await evil.send(['evs', pack([])]);
      await evil.send(['evs', pack([{ epoch: 'x', rev: 'one' }])]);
      await evil.send(['zz', 'nonsense']);
      await evil.send(['hb', pack([1, 2, 3])]);
      return dropped(await metrics.render()) >= 12;
    },
    { what: 'follower drops counted', intervalMs: 50 },
  );
  assert.equal(follower.replica.rev, revBefore, 'no state change from garbage');

  // Worker SUB: a "provider" publishing malformed heartbeats.
  const provider = new Publisher({ linger: 0 });
  await provider.bind('tcp://127.0.0.1:*');
  t.after(() => provider.close());
  const res = await http('PUT', `${c.url}/v1/providers/hb-1`, {
    ...good,
    check: { type: 'zmq', endpoint: provider.lastEndpoint, intervalMs: 5000 },
  });
  assert.equal(res.status, 201);
  const workerMetrics = c.workers[0].metrics;
  await waitFor(
    async () => {
      await provider.send(['heartbeat']);
      await provider.send(['heartbeat', 'hb-1', 'extra']);
      await provider.send(['heartbeatz', 'hb-1']);
      return dropped(await workerMetrics.render()) >= 3;
    },
    { what: 'worker drops counted', intervalMs: 50 },
  );
  assert.equal(
    (await http('GET', `${c.url}/v1/providers/hb-1`)).body.state,
    'pending',
    'malformed beats are no proof of life',
  );
  // Everyone still works.
  assert.equal((await http('GET', `${c.url}/readyz`)).status, 200);
  await provider.send(['heartbeat', 'hb-1']);
  await waitFor(async () => (await http('GET', `${c.url}/v1/providers/hb-1`)).body.state === 'up', {
    what: 'real beat accepted',
  });
});

test('ZeroMQ: a frame over the size limit is refused by libzmq and the leader keeps serving', async (t) => {
  const c = await startCluster();
  t.after(() => c.close());
  const dealer = new Dealer({ linger: 0 });
  dealer.connect(c.leader.control);
  t.after(() => dealer.close());
  // The leader's ROUTER takes frames up to 64 MiB; libzmq drops the connection that sends more.
  await dealer.send(Buffer.alloc(65 * 1024 * 1024, 0x41));
  const res = await http('PUT', `${c.url}/v1/providers/after-oversize`, good);
  assert.equal(res.status, 201, 'the leader still acknowledges writes');
  assert.equal((await http('GET', `${c.url}/readyz`)).status, 200);
});

test("GET /metrics: gateway families and the leader's, renamed, each family once", async (t) => {
  const c = await startCluster();
  t.after(() => c.close());
  assert.equal((await http('PUT', `${c.url}/v1/providers/m-1`, good)).status, 201);
  const text = (await http('GET', `${c.url}/metrics`)).body as string;
  assert.match(text, /^switchboard_replica_rev \d+$/m, 'the gateway own');
  assert.match(text, /^switchboard_leader_store_commits_total [1-9]\d*$/m, 'the leader store commits');
  assert.match(text, /^switchboard_leader_providers\{state="up"\} 1$/m);
  const families = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(families, [...new Set(families)], 'no family twice');
});

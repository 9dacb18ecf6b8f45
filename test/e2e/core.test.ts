/**
 * The working core as a newcomer meets it: the CLI's own processes (leader, worker, gateway), a provider
 * process heartbeating over ZeroMQ, registration over HTTP, a SIGKILL, a leader restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fixedLeaderEndpoints,
  startGatewayProcess,
  startLeaderProcess,
  startProviderProcess,
  startWorkerProcess,
  type Child,
} from '../../harness/process.ts';
import { http } from '../../harness/http.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';

/** Blocks on the gateway until the provider's state is `state` (event-driven, via blocking queries). */
async function waitForState(url: string, service: string, id: string, state: string, timeoutMs = 10_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let index = 0;
  for (;;) {
    const res = await http(
      'GET',
      `${url}/v1/services/${service}?index=${index}&wait=${Math.max(1, Math.ceil((deadline - Date.now()) / 1000))}s`,
    );
    const p = res.body?.providers?.find((x: any) => x.id === id);
    if (p?.state === state) return p;
    if (Date.now() > deadline)
      throw new Error(`provider ${id} not ${state} within ${timeoutMs} ms (last: ${p?.state})`);
    index = Number(res.headers.get('x-switchboard-index') ?? 0);
  }
}

test('register, come alive by heartbeat, die by SIGKILL, survive a leader restart', async (t) => {
  const dir = tempDir();
  const children: Child[] = [];
  t.after(async () => {
    for (const c of children.reverse()) await c.stop();
    dir.remove();
  });
  // Fixed ports, both asked for, so the restarted leader is where workers and gateways look for it.
  const { bind, publish } = await fixedLeaderEndpoints();
  let leader = await startLeaderProcess(dir.path, bind, publish);
  children.push(leader.child);
  const worker = await startWorkerProcess(leader.control);
  children.push(worker.child);
  const gateway = await startGatewayProcess(leader.control);
  children.push(gateway.child);
  const provider = await startProviderProcess(['billing-1'], { intervalMs: 50 });
  children.push(provider.child);
  const url = gateway.url;
  await waitFor(async () => (await http('GET', `${url}/readyz`)).status === 200, { what: 'gateway ready' });

  const body = {
    service: 'billing',
    host: '127.0.0.1',
    port: 9001,
    protocol: 'rpc-server',
    tags: ['blue'],
    meta: { version: '1.4.2' },
    check: { type: 'zmq', endpoint: provider.endpoint, intervalMs: 200, misses: 3 },
  };
  const created = await http('PUT', `${url}/v1/providers/billing-1`, body);
  assert.equal(created.status, 201);
  assert.equal(created.body.id, 'billing-1');
  assert.equal(created.body.state, 'pending', 'registered, not yet seen alive');
  assert.ok(created.body.rev >= 1);

  const again = await http('PUT', `${url}/v1/providers/billing-1`, body);
  assert.equal(again.status, 200, 'same registration again: 200, not a duplicate');

  const up = await waitForState(url, 'billing', 'billing-1', 'up');
  assert.equal(up.lastCheck.ok, true);
  const lookup = await http('GET', `${url}/v1/services/billing?state=up&tag=blue&protocol=rpc-server`);
  assert.deepEqual(
    lookup.body.providers.map((p: any) => p.id),
    ['billing-1'],
  );
  assert.equal((await http('GET', `${url}/v1/services/billing?tag=green`)).body.providers.length, 0);

  const killedAt = Date.now();
  provider.child.signal('SIGKILL');
  const down = await waitForState(url, 'billing', 'billing-1', 'down');
  const detectMs = Date.now() - killedAt;
  t.diagnostic(`SIGKILL of the provider → down seen through the gateway in ${detectMs} ms`);
  assert.match(down.lastCheck.output, /dropped/);

  const before = await http('GET', `${url}/readyz`);
  const services = await http('GET', `${url}/v1/services`);
  assert.deepEqual(services.body.services, [{ name: 'billing', providers: 1, up: 0 }]);

  // Leader stops cleanly; the gateway keeps serving reads (stale) and refuses writes.
  assert.equal(await leader.child.stop(), 0, 'leader exits 0 on SIGTERM');
  await waitFor(async () => (await http('GET', `${url}/readyz`)).status === 503, {
    what: 'gateway not ready without leader',
  });
  const staleRead = await http('GET', `${url}/v1/services/billing`);
  assert.equal(staleRead.status, 200);
  assert.equal(staleRead.body.stale, true);
  assert.equal(staleRead.headers.get('x-switchboard-stale'), 'true');
  assert.equal(staleRead.body.providers.length, 1);
  const refused = await http('PUT', `${url}/v1/providers/billing-2`, { ...body, port: 9002 });
  assert.equal(refused.status, 503);
  assert.equal(refused.body.code, 'SB_LEADER_UNAVAILABLE');

  // Restarted on the same store and port: same epoch, same rev, the registration is still there.
  leader = await startLeaderProcess(dir.path, bind, publish);
  children.push(leader.child);
  await waitFor(async () => (await http('GET', `${url}/readyz`)).status === 200, { what: 'gateway ready again' });
  const after = await http('GET', `${url}/readyz`);
  assert.equal(after.body.epoch, before.body.epoch);
  assert.equal(after.body.rev, before.body.rev);
  const kept = await http('GET', `${url}/v1/providers/billing-1`);
  assert.equal(kept.status, 200);
  assert.equal(kept.body.state, 'down');
  assert.deepEqual(kept.body.meta, { version: '1.4.2' });

  // A new provider process on the same endpoint brings it back up.
  const port = Number(provider.endpoint.split(':').pop());
  const revived = await startProviderProcess(['billing-1'], { bind: `tcp://127.0.0.1:${port}`, intervalMs: 50 });
  children.push(revived.child);
  await waitForState(url, 'billing', 'billing-1', 'up');

  // POST: the server chooses a stable id.
  const post1 = await http('POST', `${url}/v1/providers`, {
    service: 'search',
    host: '10.0.0.7',
    port: 80,
    protocol: 'http',
  });
  const post2 = await http('POST', `${url}/v1/providers`, {
    service: 'search',
    host: '10.0.0.7',
    port: 80,
    protocol: 'http',
  });
  assert.equal(post1.status, 201);
  assert.equal(post2.status, 200);
  assert.equal(post1.body.id, post2.body.id);
  assert.equal(post1.body.state, 'up', 'no check: up at once');
  assert.equal((await http('GET', `${url}/v1/services/search`)).body.providers.length, 1);

  const del = await http('DELETE', `${url}/v1/providers/${post1.body.id}`);
  assert.equal(del.status, 204);
  assert.equal((await http('GET', `${url}/v1/providers/${post1.body.id}`)).status, 404);

  for (const c of [gateway.child, worker.child, leader.child]) assert.equal(await c.stop(), 0, 'clean exit on SIGTERM');
});

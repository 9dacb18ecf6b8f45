/** Maintenance mode and auto-deregistration, end to end over the REST API. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';
import { changes, holds, provider, register, startCluster, waitState } from './cluster.ts';

test('maintenance: out of up lookups, checks ignored meanwhile, back to what the checks say', async (t) => {
  const c = await startCluster();
  t.after(() => c.close());
  let status = 200;
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(status).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  await register(c.url, 'api-1', {
    service: 'api',
    host: '127.0.0.1',
    port: 9100,
    protocol: 'http',
    // A generous timeout: on a loaded machine a 50 ms one expires before the 503 arrives, and the output to check
    // below is the target's answer.
    check: { type: 'http', url, intervalMs: 50, timeoutMs: 2000 },
  });
  await waitState(c.url, 'api-1', 'up');

  const on = await http('PUT', `${c.url}/v1/providers/api-1/maintenance`, { enabled: true, reason: 'deploy 42' });
  assert.equal(on.status, 200);
  assert.equal(on.body.state, 'maintenance');
  assert.equal(on.body.lastCheck.output, 'deploy 42');
  const lookup = async (state: string): Promise<string[]> =>
    ((await http('GET', `${c.url}/v1/services/api?state=${state}`)).body.providers as Array<{ id: string }>).map(
      (p) => p.id,
    );
  assert.deepEqual(await lookup('up'), []);
  assert.deepEqual(await lookup('maintenance'), ['api-1']);

  // The target fails during maintenance: no down is published, but it is remembered.
  status = 503;
  const failing = hits;
  await waitFor(() => hits >= failing + 4, { what: 'failing checks during maintenance' });
  await holds(
    async () => (await provider(c.url, 'api-1'))?.state === 'maintenance',
    200,
    'maintenance outranks the checks',
  );

  const off = await http('PUT', `${c.url}/v1/providers/api-1/maintenance`, { enabled: false });
  assert.equal(off.status, 200);
  assert.equal(off.body.state, 'down', 'leaves maintenance in the state its checks saw');
  assert.match(off.body.lastCheck.output, /HTTP 503/, 'the real check result, not the maintenance reason');
  status = 200;
  await waitState(c.url, 'api-1', 'up');
  assert.deepEqual(await lookup('up'), ['api-1']);
  assert.deepEqual(
    changes(c, 'api-1').map((e) => e.change),
    ['registered', 'up', 'maintenance', 'down', 'up'],
  );

  assert.equal((await http('PUT', `${c.url}/v1/providers/nope/maintenance`, { enabled: true })).status, 404);
  assert.equal((await http('PUT', `${c.url}/v1/providers/api-1/maintenance`, { enabled: 'yes' })).status, 400);
});

test('auto-deregistration: per check, and the leader default; maintenance is never reaped', async (t) => {
  // Three checks failing together would trip the mass-down guard (3 of 3); it is not under test here.
  const c = await startCluster({ leader: { deregisterAfterMs: 600, massDownPercent: 100 } });
  t.after(() => c.close());
  const closedPort = 1; // nothing listens on port 1
  const tcp = { type: 'tcp', intervalMs: 50, timeoutMs: 50, failuresBeforeDown: 1 };
  await register(c.url, 'gone-fast', {
    service: 'gone',
    host: '127.0.0.1',
    port: closedPort,
    protocol: 'rpc-server',
    check: { ...tcp, deregisterAfterMs: 200 },
  });
  await register(c.url, 'gone-default', {
    service: 'gone',
    host: '127.0.0.2',
    port: closedPort,
    protocol: 'rpc-server',
    check: tcp,
  });
  await register(c.url, 'kept', {
    service: 'gone',
    host: '127.0.0.3',
    port: closedPort,
    protocol: 'rpc-server',
    check: tcp,
  });
  await waitState(c.url, 'kept', 'down');
  assert.equal(
    (await http('PUT', `${c.url}/v1/providers/kept/maintenance`, { enabled: true, reason: 'investigating' })).status,
    200,
  );

  for (const [id, after] of [
    ['gone-fast', 200],
    ['gone-default', 600],
  ] as const) {
    await waitFor(async () => (await http('GET', `${c.url}/v1/providers/${id}`)).status === 404, {
      what: `${id} deregistered`,
    });
    const events = changes(c, id);
    assert.deepEqual(
      events.map((e) => e.change),
      ['registered', 'down', 'deregistered'],
    );
    const downFor = events[2].at - events[1].at;
    assert.ok(
      downFor >= after && downFor < after + 500,
      `${id} removed after ${downFor} ms down (deregisterAfterMs ${after})`,
    );
  }
  assert.equal((await provider(c.url, 'kept'))?.state, 'maintenance');
  assert.match(await c.leader.metrics.render(), /switchboard_providers_deregistered_auto_total 2/);
});

/**
 * Counterexamples the fuzzers found (test/fuzz/*.test.ts), kept as plain regression tests: each one failed before
 * its fix in the source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES } from '../../src/bridge/index.ts';
import { startCluster } from '../../harness/cluster.ts';
import { waitFor } from '../../harness/wait.ts';
import { gatewayApp } from '../helpers/gateway-app.ts';

test('a broken percent-encoding or an over-long path parameter answers our codes, not Fastify router codes', async (t) => {
  const g = await gatewayApp();
  t.after(() => g.close());
  for (const [url, status, code] of [
    ['/v1/operator/%c0%ae', 400, 'SB_BAD_REQUEST'],
    ['/v1/providers/%', 400, 'SB_BAD_REQUEST'],
    ['/v1/providers/a%zz', 400, 'SB_BAD_REQUEST'],
    [`/v1/catalog/service/${'y'.repeat(5000)}`, 400, 'FST_ERR_VALIDATION'],
    [`/v1/providers/${'x'.repeat(300)}`, 400, 'FST_ERR_VALIDATION'],
  ] as const) {
    const res = await g.app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, status, `${url.slice(0, 40)}: ${res.body.slice(0, 200)}`);
    const body = res.json<{ code: string; statusCode: number; message: string }>();
    assert.equal(body.code, code, url.slice(0, 40));
    assert.ok(body.code in ERROR_CODES);
    assert.equal(body.statusCode, status);
    assert.ok(body.message.length < 1000, 'the message does not echo a huge path');
  }
});

test('GET /v1/admin/snapshot twice within a second, or several at once, answers 200 each time', async (t) => {
  // The leader refuses a peer the same revision twice within a second (SB_BUSY), and a gateway is one peer.
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const snapshot = () => c.gateway.app.inject({ method: 'GET', url: '/v1/admin/snapshot' });
  const statuses = [(await snapshot()).statusCode, (await snapshot()).statusCode];
  statuses.push(...(await Promise.all([snapshot(), snapshot(), snapshot()])).map((r) => r.statusCode));
  assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
  // A write moves the revision: the next snapshot is asked of the leader again and shows it.
  const put = await c.gateway.app.inject({
    method: 'PUT',
    url: '/v1/providers/p1',
    payload: { service: 'billing', host: '10.0.0.1', port: 80, protocol: 'http' },
  });
  assert.equal(put.statusCode, 201);
  await waitFor(() => c.gateway.follower.replica.rev === 1, { what: 'the write in the replica' });
  const after = await snapshot();
  assert.equal(after.statusCode, 200);
  assert.deepEqual(
    after.json<{ providers: Array<{ id: string }> }>().providers.map((p) => p.id),
    ['p1'],
  );
  // Tokens and policies change apart from the revision: a snapshot right after an ACL change is still answered
  // (it used to ask the leader for the same revision again, and got SB_BUSY), and carries the change.
  const policy = await c.gateway.app.inject({ method: 'PUT', url: '/v1/acl/policies/p', payload: { rules: [] } });
  assert.equal(policy.statusCode, 201);
  const withAcl = await snapshot();
  assert.equal(withAcl.statusCode, 200, withAcl.body);
  assert.ok(withAcl.json<{ acl: { policies: Array<{ name: string }> } }>().acl.policies.some((p) => p.name === 'p'));
  // JSON's 1e400 is Infinity, which Ajv calls an integer: a finite maximum refuses it at the gateway (the leader's
  // frame check would have dropped the write, and the request waited for its timeout).
  const infinite = await c.gateway.app.inject({
    method: 'POST',
    url: '/v1/acl/tokens',
    headers: { 'content-type': 'application/json' },
    payload: '{"policies":[],"maxProviders":1e400}',
  });
  assert.equal(infinite.statusCode, 400, infinite.body);
  assert.equal(infinite.json<{ code: string }>().code, 'FST_ERR_VALIDATION');
});

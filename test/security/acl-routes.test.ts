/**
 * The gateway's token check route by route through `inject()`, with the replica and its tokens filled by hand
 * (test/helpers/gateway-app.ts) — what the gateway decides on its own: where a token may come from, that no secret
 * reaches a log line, and when ACLs are on by default. The same checks against a real leader are in acl.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import {
  AclIndex,
  createLogger,
  globalManagementPolicy,
  hashAclSecret,
  isLoopbackHost,
  type AclState,
} from '../../src/bridge/index.ts';
import { aclDecision, gatewayConfig } from '../../src/gateway/config.ts';
import { redactUrl } from '../../src/gateway/acl.ts';
import { gatewayApp } from '../helpers/gateway-app.ts';
import { providerRecord } from '../helpers/records.ts';

const SECRET = 'reader-secret-0123456789abcdef';
const STATE: AclState = {
  version: 3,
  policies: [globalManagementPolicy(), { name: 'billing-read', rules: [{ service: 'billing', access: 'read' }] }],
  tokens: [{ accessor: 'a-reader', secretHash: hashAclSecret(SECRET), policies: ['billing-read'], createdAt: 1 }],
};

test('a token comes as Bearer, X-Switchboard-Token or X-Consul-Token; ?token= only on the streams', async (t) => {
  const lines: string[] = [];
  const log = createLogger({
    level: 'trace',
    destination: new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  });
  const g = await gatewayApp({
    snapshot: { providers: [providerRecord('b1', 1)] },
    context: { aclEnabled: true, aclSource: { acl: new AclIndex(STATE) } },
    log,
  });
  t.after(() => g.close());
  const get = (url: string, headers: Record<string, string> = {}) => g.app.inject({ url, headers });
  assert.equal((await get('/v1/services/billing')).statusCode, 401);
  assert.equal((await get('/v1/services/billing', { authorization: `Bearer ${SECRET}` })).statusCode, 200);
  assert.equal((await get('/v1/services/billing', { authorization: `bearer  ${SECRET}` })).statusCode, 200);
  assert.equal((await get('/v1/services/billing', { 'x-switchboard-token': SECRET })).statusCode, 200);
  assert.equal((await get('/v1/services/billing', { 'x-consul-token': SECRET })).statusCode, 200);
  assert.equal((await get('/v1/services/orders', { 'x-switchboard-token': SECRET })).statusCode, 403);
  // The query is for browsers' WebSocket and EventSource only: elsewhere it is not a credential.
  assert.equal((await get(`/v1/services/billing?token=${SECRET}`)).statusCode, 401);
  const stream = await get(`/v1/events?service=orders&token=${SECRET}`);
  assert.equal(stream.statusCode, 403);
  assert.match(stream.json().message, /read on service 'orders'/);
  assert.equal((await get('/v1/events?token=wrong')).statusCode, 401);
  // A refused write is audited with the token's accessor (never its secret).
  const write = await g.app.inject({
    method: 'DELETE',
    url: `/v1/providers/b1?token=${SECRET}`,
    headers: { 'x-switchboard-token': SECRET },
  });
  assert.equal(write.statusCode, 403);
  const audit = lines.map((l) => JSON.parse(l)).find((l) => l.audit === true);
  assert.equal(audit?.who?.token, 'a-reader');
  assert.equal(audit?.result, 'refused');
  // No line, at any level, carries the secret.
  for (const line of lines) assert.ok(!line.includes(SECRET), `secret in a log line: ${line}`);
  assert.equal(redactUrl(`/v1/watch?service=a&token=${SECRET}&rev=1`), '/v1/watch?service=a&token=[redacted]&rev=1');
});

test('ACLs off (the default of a loopback gateway): no token needed, nothing filtered', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [providerRecord('b1', 1)] } });
  t.after(() => g.close());
  assert.equal((await g.app.inject({ url: '/v1/services' })).json().services.length, 1);
  assert.equal((await g.app.inject({ url: '/v1/admin/snapshot' })).statusCode, 503);
  assert.equal((await g.app.inject({ url: '/v1/acl/token/self' })).json().code, 'SB_ACL_NOT_FOUND');
});

test('--acl default: off on loopback listeners, on beyond loopback unless --insecure; --acl wins', () => {
  const decide = (input: Parameters<typeof gatewayConfig>[0]) =>
    aclDecision(gatewayConfig({ httpPort: 0, ...input }), isLoopbackHost);
  assert.equal(decide({}).enabled, false);
  assert.equal(decide({ httpHost: 'localhost', dns: '127.0.0.1:8600' }).enabled, false);
  assert.equal(decide({ httpHost: '0.0.0.0' }).enabled, true);
  assert.deepEqual(decide({ zmqPub: 'tcp://0.0.0.0:7701' }).publicListeners, ['zmq-pub=tcp://0.0.0.0:7701']);
  assert.equal(decide({ dns: '10.0.0.5:53' }).enabled, true);
  assert.equal(decide({ httpHost: '0.0.0.0', insecure: true }).enabled, false);
  assert.equal(decide({ httpHost: '0.0.0.0', acl: 'off' }).enabled, false);
  assert.equal(decide({ acl: 'on' }).enabled, true);
});

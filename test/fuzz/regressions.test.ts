/**
 * Counterexamples the fuzzers found (test/fuzz/*.test.ts), kept as plain regression tests: each one failed before
 * its fix in the source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES } from '../../src/bridge/index.ts';
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

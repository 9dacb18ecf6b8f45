import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Compile } from 'typebox/compile';
import { ProviderInput, providerIdFor } from '../../src/bridge/index.ts';

const input = Compile(ProviderInput);
const base = { service: 'billing', host: '127.0.0.1', port: 8080, protocol: 'http' };

test('valid registrations pass', () => {
  for (const body of [
    base,
    { ...base, host: 'api.example.internal' },
    { ...base, host: '::1' },
    { ...base, host: '[fe80::1]' },
    { ...base, check: { type: 'zmq', endpoint: 'tcp://127.0.0.1:6000', intervalMs: 200, misses: 3 } },
    { ...base, check: { type: 'http', url: 'https://127.0.0.1/health' } },
    { ...base, check: { type: 'tcp' } },
    { ...base, check: { type: 'ttl', ttlMs: 100 } },
    { ...base, tags: ['blue', 'eu-west'], meta: { version: '1.2.3' } },
  ]) {
    assert.ok(input.Check(body), JSON.stringify(body));
  }
});

test('invalid registrations fail', () => {
  for (const body of [
    { ...base, service: 'Billing' },
    { ...base, service: '-billing' },
    { ...base, service: 'a'.repeat(64) },
    { ...base, host: 'bad host' },
    { ...base, host: '' },
    { ...base, port: 0 },
    { ...base, port: 65536 },
    { ...base, port: 80.5 },
    { ...base, protocol: 'SMTP' },
    { ...base, protocol: 'grpc web' },
    { ...base, check: { type: 'zmq', endpoint: 'http://x:1' } },
    { ...base, check: { type: 'zmq' } },
    { ...base, check: { type: 'http', url: 'ftp://x/' } },
    { ...base, check: { type: 'ttl', ttlMs: 99 } },
    { ...base, check: { type: 'carrier-pigeon' } },
    { ...base, tags: Array.from({ length: 33 }, (_, i) => `t${i}`) },
    { ...base, meta: { 'bad key': 'v' } },
    { ...base, extra: true },
    { service: 'billing', host: '127.0.0.1', port: 80 },
  ]) {
    assert.ok(!input.Check(body), JSON.stringify(body));
  }
});

test('server-chosen ids are stable per service/host/port/protocol and differ otherwise', () => {
  const a = providerIdFor('billing', '10.0.0.1', 80, 'http');
  assert.equal(a, providerIdFor('billing', '10.0.0.1', 80, 'http'));
  assert.equal(a, providerIdFor('billing', '10.0.0.1'.toUpperCase(), 80, 'http'));
  assert.notEqual(a, providerIdFor('billing', '10.0.0.1', 81, 'http'));
  assert.notEqual(a, providerIdFor('billing', '10.0.0.1', 80, 'rpc-server'));
  assert.match(a, /^billing-[0-9a-f]{12}$/);
});

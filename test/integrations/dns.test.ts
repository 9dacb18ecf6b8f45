/**
 * The gateway's DNS server, asked by `dig` (the real client operators use) over UDP and TCP: A and SRV for up
 * providers, tag filtering, NXDOMAIN for unknown services, REFUSED outside the zone, and a short TTL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { startCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';

const run = promisify(execFile);
const hasDig = spawnSync('dig', ['-v']).status === 0;

test('dig answers A and SRV from the replica, over UDP and TCP', { skip: !hasDig && 'no dig' }, async (t) => {
  const cluster = await startCluster({ gateway: { dns: '127.0.0.1:0', dnsTtlS: 3 } });
  t.after(() => cluster.close());
  const address = cluster.gateway.app.switchboardDns.address;
  assert.match(address ?? '', /^127\.0\.0\.1:\d+$/);
  const port = address!.split(':')[1];
  const dig = async (...args: string[]): Promise<string> =>
    (await run('dig', ['@127.0.0.1', '-p', port, '+time=2', '+tries=2', ...args])).stdout;

  const reg = (id: string, host: string, p: number, extra: object = {}): Promise<unknown> =>
    http('PUT', `${cluster.url}/v1/providers/${id}`, { service: 'billing', host, port: p, protocol: 'http', ...extra });
  await reg('b-1', '10.0.0.1', 9001, { tags: ['blue'] });
  await reg('b-2', '10.0.0.2', 9002, { tags: ['green'] });
  await reg('b-3', '::1', 9003, { tags: ['blue'] });
  // A provider that is not up (no TTL pass yet) is never answered.
  await reg('b-4', '10.0.0.4', 9004, { check: { type: 'ttl', ttlMs: 60_000 } });

  const a = (await dig('+short', 'billing.service.switchboard', 'A')).trim().split('\n').sort();
  assert.deepEqual(a, ['10.0.0.1', '10.0.0.2']);
  assert.equal((await dig('+short', 'billing.service.switchboard', 'AAAA')).trim(), '::1');
  const tcp = (await dig('+tcp', '+short', 'billing.service.switchboard', 'A')).trim().split('\n').sort();
  assert.deepEqual(tcp, ['10.0.0.1', '10.0.0.2']);

  const srv = (await dig('+short', 'billing.service.switchboard', 'SRV')).trim().split('\n').sort();
  assert.deepEqual(srv, [
    '1 1 9001 0a000001.addr.switchboard.',
    '1 1 9002 0a000002.addr.switchboard.',
    '1 1 9003 00000000000000000000000000000001.addr.switchboard.',
  ]);
  // The targets resolve, in the additional section and on their own.
  const full = await dig('billing.service.switchboard', 'SRV');
  assert.match(full, /ADDITIONAL SECTION:[\s\S]*0a000001\.addr\.switchboard\.\s+3\s+IN\s+A\s+10\.0\.0\.1/);
  assert.match(full, /flags: qr aa/);
  assert.match(full, /billing\.service\.switchboard\.\s+3\s+IN\s+SRV/, 'TTL is the configured 3 s');
  assert.equal((await dig('+short', '0a000002.addr.switchboard', 'A')).trim(), '10.0.0.2');

  // Tag filter: <tag>.<service>.service.switchboard.
  assert.equal((await dig('+short', 'green.billing.service.switchboard', 'A')).trim(), '10.0.0.2');
  const blue = (await dig('+short', 'blue.billing.service.switchboard', 'SRV')).trim().split('\n');
  assert.equal(blue.length, 2);

  assert.match(await dig('nothing.service.switchboard', 'A'), /status: NXDOMAIN/);
  assert.match(await dig('example.com', 'A'), /status: REFUSED/);
  // A change is seen at once (answers come from the live replica).
  assert.equal((await http('DELETE', `${cluster.url}/v1/providers/b-2`)).status, 204);
  assert.equal((await dig('+short', 'billing.service.switchboard', 'A')).trim(), '10.0.0.1');
});

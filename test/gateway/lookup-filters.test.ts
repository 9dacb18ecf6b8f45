/** Lookups: several tag filters, meta filters, and the memory their cached answers may take. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startCluster } from '../helpers/cluster.ts';
import { http } from '../helpers/http.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('tag filters all must match; meta.<key>=<value> filters too; a bad meta key is a 400 naming it', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const put = (id: string, port: number, tags: string[], meta: Record<string, string>) =>
    http('PUT', `${c.url}/v1/providers/${id}`, {
      service: 'api',
      host: '10.0.0.1',
      port,
      protocol: 'grpc',
      tags,
      meta,
    });
  assert.equal((await put('a', 1, ['blue', 'eu'], { version: '2', zone: 'a' })).status, 201);
  assert.equal((await put('b', 2, ['blue'], { version: '2', zone: 'b' })).status, 201);
  assert.equal((await put('c', 3, ['green', 'eu'], { version: '1' })).status, 201);
  const ids = async (query: string): Promise<string[]> => {
    const res = await http('GET', `${c.url}/v1/services/api?${query}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body.providers as Array<{ id: string }>).map((p) => p.id);
  };
  assert.deepEqual(await ids('tag=blue'), ['a', 'b']);
  assert.deepEqual(await ids('tag=blue&tag=eu'), ['a']);
  assert.deepEqual(await ids('tag=eu&tag=blue&tag=green'), []);
  assert.deepEqual(await ids('meta.version=2'), ['a', 'b']);
  assert.deepEqual(await ids('meta.version=2&meta.zone=b'), ['b']);
  assert.deepEqual(await ids('meta.version=1&tag=eu&protocol=grpc'), ['c'], 'any lowercase protocol token is kept');
  const bad = await http('GET', `${c.url}/v1/services/api?meta.bad$key=1`);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'FST_ERR_VALIDATION');
  assert.match(bad.body.message, /meta\.bad\$key|additional/);
});

test('distinct filtered lookups of a large service do not pin a copy each (answer cache bounded in bytes)', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const tags = Array.from({ length: 32 }, (_, i) => `tag-${i}`);
  const meta = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`key${i}`, 'x'.repeat(500)]));
  for (let i = 0; i < 500; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, j) =>
        http('PUT', `${c.url}/v1/providers/big-${i + j}`, {
          service: 'big',
          host: '10.0.0.1',
          port: 1000 + i + j,
          protocol: 'http',
          tags,
          meta,
        }),
      ),
    );
  }
  const one = await http('GET', `${c.url}/v1/services/big`);
  assert.equal(one.body.providers.length, 500);
  gc();
  const before = process.memoryUsage().heapUsed;
  // 100 distinct filters, each matching every provider: ~2.3 MB of answer each, 230 MB if each were kept.
  for (let i = 0; i < 100; i++) {
    const res = await fetch(
      `${c.url}/v1/services/big?tag=${tags[i % 32]}&tag=${tags[Math.floor(i / 32)]}&meta.key${i % 8}=${'x'.repeat(500)}&state=up`,
    );
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  t.diagnostic(`heap grew ${(grown / 1048576).toFixed(1)} MiB over 100 distinct lookups of a 2.3 MB answer`);
  assert.ok(grown < 100 * 1024 * 1024, `heap grew ${(grown / 1048576).toFixed(1)} MiB`);
});

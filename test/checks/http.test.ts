/** The `http` check against a real HTTP server that answers 200, then 500, then hangs, then 200 again. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { waitFor } from '../../harness/wait.ts';
import { changes, holds, register, startCluster, waitState } from './cluster.ts';

type Mode = 'ok' | 'fail' | 'hang' | 'flap';

async function target(): Promise<{ url: string; mode: Mode; hits: Record<string, number>; close(): Promise<void> }> {
  const hung: ServerResponse[] = [];
  let flip = 0;
  const state = {
    url: '',
    mode: 'ok' as Mode,
    hits: { ok: 0, fail: 0, hang: 0 } as Record<string, number>,
    async close() {
      for (const r of hung) r.destroy();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  const server = createServer((_req, res) => {
    const mode = state.mode === 'flap' ? (flip++ % 2 === 0 ? 'ok' : 'fail') : state.mode;
    state.hits[mode]++;
    if (mode === 'hang') return void hung.push(res);
    res.writeHead(mode === 'ok' ? 200 : 500).end(mode);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/health`;
  return state;
}

test('http check: 200 up, 500 down, hang down, 200 up again, with damping 2/2', async (t) => {
  const c = await startCluster();
  t.after(() => c.close());
  const srv = await target();
  t.after(() => srv.close());
  const other = await target();
  t.after(() => other.close());
  const check = {
    type: 'http',
    url: srv.url,
    intervalMs: 100,
    timeoutMs: 150,
    failuresBeforeDown: 2,
    successesBeforeUp: 2,
  };
  await register(c.url, 'web-1', { service: 'web', host: '127.0.0.1', port: 8080, protocol: 'http', check });
  await register(c.url, 'web-2', {
    service: 'web',
    host: '127.0.0.1',
    port: 8081,
    protocol: 'http',
    check: { ...check, url: other.url },
  });
  await waitState(c.url, 'web-1', 'up');
  await waitState(c.url, 'web-2', 'up');

  srv.mode = 'fail';
  const down = await waitState(c.url, 'web-1', 'down');
  assert.ok(srv.hits.fail >= 2, `down after ${srv.hits.fail} failures; failuresBeforeDown is 2`);
  assert.equal(down.lastCheck?.ok, false);
  assert.match(down.lastCheck?.output ?? '', /HTTP 500 from .* \(expected 2xx\)/);
  assert.deepEqual(down.check, check, 'the record shows its check');

  srv.hits.ok = 0;
  srv.mode = 'ok';
  const up = await waitState(c.url, 'web-1', 'up');
  assert.ok(srv.hits.ok >= 2, `up after ${srv.hits.ok} successes; successesBeforeUp is 2`);
  assert.match(up.lastCheck?.lastFailure ?? '', /HTTP 500/, 'the last failure stays visible');

  // A hanging target times out on its own; the other provider's checks keep running meanwhile.
  srv.mode = 'hang';
  const before = other.hits.ok;
  const hungDown = await waitState(c.url, 'web-1', 'down');
  assert.match(hungDown.lastCheck?.output ?? '', /timeout: no answer .* within 150 ms/);
  await waitFor(() => other.hits.ok >= before + 5, { what: 'the other target keeps being checked' });
  assert.equal((await waitState(c.url, 'web-2', 'up')).state, 'up');

  srv.mode = 'ok';
  await waitState(c.url, 'web-1', 'up');
  assert.deepEqual(
    changes(c, 'web-1').map((e) => e.change),
    ['registered', 'up', 'down', 'up', 'down', 'up'],
  );
});

test('http check: expectStatus, and a flapping target never flaps its provider', async (t) => {
  const c = await startCluster();
  t.after(() => c.close());
  const srv = await target();
  t.after(() => srv.close());
  await register(c.url, 'strict-1', {
    service: 'strict',
    host: '127.0.0.1',
    port: 9000,
    protocol: 'http',
    check: { type: 'http', url: srv.url, intervalMs: 100, expectStatus: 204 },
  });
  const strict = await waitState(c.url, 'strict-1', 'down');
  assert.match(strict.lastCheck?.output ?? '', /HTTP 200 .*expected 204/);

  // Answers alternate 200/500: never two of a kind in a row, so thresholds of 2 never move the provider.
  // Its own server: requests of another provider would break the alternation.
  const flappy = await target();
  t.after(() => flappy.close());
  await register(c.url, 'flappy-1', {
    service: 'flappy',
    host: '127.0.0.1',
    port: 9001,
    protocol: 'http',
    check: { type: 'http', url: flappy.url, intervalMs: 50, failuresBeforeDown: 2, successesBeforeUp: 2 },
  });
  await waitState(c.url, 'flappy-1', 'up');
  flappy.mode = 'flap';
  await holds(() => changes(c, 'flappy-1').length === 2, 1000, 'no transition while flapping');
  assert.ok(flappy.hits.fail >= 5, `${flappy.hits.fail} failures answered while flapping`);
  assert.deepEqual(
    changes(c, 'flappy-1').map((e) => e.change),
    ['registered', 'up'],
  );
});

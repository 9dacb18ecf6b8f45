/**
 * The DEALER to the leader watches its connection: a request whose connection drops fails at once (its answer died
 * with the connection) instead of waiting for its timeout, and the link says when a new connection is up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router } from 'zeromq';
import { createLogger, LeaderLink, LinkError, Metrics, pack, toFollower, unpack } from '../../src/bridge/index.ts';
import { waitFor } from '../../harness/wait.ts';

test('a dropped connection fails requests in flight at once; a new handshake clears connectionLost', async (t) => {
  let router = new Router({ linger: 0 });
  await router.bind('tcp://127.0.0.1:*');
  const endpoint = router.lastEndpoint!;
  t.after(() => router.close());
  const link = new LeaderLink({
    endpoint,
    validator: toFollower,
    name: 'test-dealer',
    log: createLogger({ level: 'silent' }),
    metrics: new Metrics(),
    requestTimeoutMs: 30_000,
  });
  t.after(() => link.close());
  const seen: boolean[] = [];
  link.onConnection((up) => seen.push(up));
  await waitFor(() => seen.includes(true), { what: 'first handshake' });
  assert.equal(link.connectionLost, false);

  // The "leader" receives the request and never answers, then goes away.
  const asked = link.request({ type: 'ping' });
  await router.receive();
  const closedAt = performance.now();
  router.close();
  await assert.rejects(asked, (err: unknown) => err instanceof LinkError && err.code === 'LINK_LOST');
  const failedMs = performance.now() - closedAt;
  t.diagnostic(`request failed ${failedMs.toFixed(0)} ms after the peer closed (request timeout 30 s)`);
  assert.ok(failedMs < 5000, `failed after ${failedMs.toFixed(0)} ms, long before its 30 s timeout`);
  assert.equal(link.connectionLost, true);
  assert.deepEqual(seen, [true, false]);

  // The leader returns on the same endpoint: the link reconnects by itself and requests are answered again.
  router = new Router({ linger: 0 });
  await router.bind(endpoint);
  await waitFor(() => !link.connectionLost, { what: 'reconnected' });
  const answered = link.request({ type: 'ping' });
  const [peer, frame] = await router.receive();
  const { reqId } = unpack(frame) as { reqId: number };
  await router.send([
    peer,
    pack({
      type: 'pong',
      reqId,
      session: 's',
      epoch: 'e',
      rev: 0,
      events: 'tcp://127.0.0.1:1',
    }),
  ]);
  assert.equal((await answered).type, 'pong');
});

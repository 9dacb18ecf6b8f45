/**
 * The DEALER to the leader watches its connection: a request whose connection drops fails at once (its answer died
 * with the connection) instead of waiting for its timeout, and the link says when a new connection is up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router } from 'zeromq';
import { createLogger, LeaderLink, LinkError, Metrics, pack, toFollower, unpack } from '../../src/bridge/index.ts';
import { freePort } from '../../harness/ports.ts';
import { waitFor } from '../../harness/wait.ts';

test('a dropped connection fails requests in flight at once; a new handshake clears connectionLost', async (t) => {
  let router = new Router({ linger: 0 });
  await router.bind('tcp://127.0.0.1:*');
  const endpoint = router.lastEndpoint!;
  t.after(() => router.close());
  const link = new LeaderLink({
    endpoints: endpoint,
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

test('a link to several endpoints talks to whichever is bound, and moves when another one binds instead', async (t) => {
  const log = createLogger({ level: 'silent' });
  const first = new Router({ linger: 0 });
  await first.bind('tcp://127.0.0.1:*');
  const a = first.lastEndpoint!;
  const b = `tcp://127.0.0.1:${await freePort()}`; // a standby: nobody bound here yet
  const link = new LeaderLink({
    endpoints: [b, a],
    validator: toFollower,
    name: 'test-dealer',
    log,
    metrics: new Metrics(),
    requestTimeoutMs: 30_000,
  });
  t.after(() => link.close());
  const seen: boolean[] = [];
  link.onConnection((up) => seen.push(up));
  await waitFor(() => seen.includes(true), { what: 'handshake with the bound endpoint' });
  assert.deepEqual(link.connectedEndpoints, [a]);

  // ZMQ_IMMEDIATE: every request reaches the bound ROUTER, none waits on the endpoint nobody listens on.
  const answers = Array.from({ length: 4 }, () => link.request({ type: 'ping' }));
  for (let i = 0; i < 4; i++) await answer(first, 'a');
  for (const r of await Promise.all(answers)) assert.equal(r.type === 'pong' && r.session, 'a');

  const asked = link.request({ type: 'ping' });
  await first.receive();
  first.close();
  await assert.rejects(asked, (err: unknown) => err instanceof LinkError && err.code === 'LINK_LOST');
  assert.equal(link.connectionLost, true, 'no endpoint connected: lost');

  const second = new Router({ linger: 0 });
  t.after(() => second.close());
  const started = performance.now();
  await second.bind(b);
  await waitFor(() => !link.connectionLost, { what: 'the link follows the newly bound endpoint' });
  t.diagnostic(`connected to the other endpoint ${(performance.now() - started).toFixed(0)} ms after it bound`);
  assert.deepEqual(link.connectedEndpoints, [b]);
  const moved = link.request({ type: 'ping' });
  await answer(second, 'b');
  const reply = await moved;
  assert.equal(reply.type === 'pong' && reply.session, 'b');
  assert.deepEqual(seen, [true, false, true]);
});

/** Answers one ping on `router` with a pong of `session`. */
async function answer(router: Router, session: string): Promise<void> {
  const [peer, frame] = await router.receive();
  const { reqId } = unpack(frame) as { reqId: number };
  await router.send([
    peer,
    pack({ type: 'pong', reqId, session, epoch: 'e', rev: 0, events: 'tcp://127.0.0.1:1', control: 'x' }),
  ]);
}

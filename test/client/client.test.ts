/** The Node client against a real Switchboard (in-process roles, real sockets, real HTTP). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardClient, SwitchboardError, type WatchUpdate } from '../../src/client/index.ts';
import { startCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/wait.ts';

test('announce beats for itself; lookup sees it up; deregister removes it', async (t) => {
  const c = await startCluster();
  const client = new SwitchboardClient({ gateways: [c.url], lookupCacheMs: 0 });
  t.after(async () => {
    await client.close();
    await c.close();
  });
  const me = await client.announce(
    { service: 'billing', host: '127.0.0.1', port: 9001, protocol: 'rpc-server' },
    { checkIntervalMs: 200 },
  );
  assert.equal(me.check?.type, 'zmq');
  await waitFor(async () => (await client.lookup('billing')).some((p) => p.id === me.id), {
    what: 'announced provider up',
  });
  assert.equal((await client.get(me.id)).state, 'up');
  await client.deregister(me.id);
  assert.deepEqual(await client.lookup('billing', { state: 'all' }), []);
  await assert.rejects(
    client.get(me.id),
    (err: unknown) => err instanceof SwitchboardError && err.statusCode === 404 && err.code === 'SB_PROVIDER_NOT_FOUND',
  );
  await assert.rejects(
    client.register({ service: 'Bad', host: '127.0.0.1', port: 1, protocol: 'http' }),
    (err: unknown) => err instanceof SwitchboardError && err.statusCode === 400 && /body\/service/.test(err.message),
  );
});

test('lookup answers from its last result when no gateway answers', async (t) => {
  const c = await startCluster();
  const client = new SwitchboardClient({ gateways: [c.url], lookupCacheMs: 0, requestTimeoutMs: 1000 });
  t.after(() => client.close());
  await client.register({ service: 'search', host: '10.0.0.1', port: 80, protocol: 'http' });
  assert.equal((await client.lookup('search')).length, 1);
  await c.close();
  assert.equal((await client.lookup('search')).length, 1, 'stale beats empty');
  await assert.rejects(client.lookup('never-seen'));
});

for (const transport of ['websocket', 'zmq'] as const) {
  test(`watch over ${transport}: the view follows every change; prev chains each service's revisions`, async (t) => {
    const c = await startCluster();
    const feed = c.gateway.feed;
    const client = new SwitchboardClient({
      gateways: [{ url: c.url, pub: feed.pub ?? undefined, snapshot: feed.snapshot ?? undefined }],
    });
    t.after(async () => {
      await client.close();
      await c.close();
    });
    await client.register({ service: 'a', host: '10.0.0.1', port: 1, protocol: 'http' }, 'a-0');
    const watch = client.watch({ transport });
    const seen: WatchUpdate[] = [];
    watch.on((u) => seen.push(u));
    await watch.ready;
    let lastRev = 0;
    for (let i = 1; i <= 20; i++) {
      const service = i % 3 === 0 ? 'b' : 'a';
      lastRev = (
        await client.register({ service, host: '10.0.0.1', port: 100 + i, protocol: 'http' }, `${service}-${i}`)
      ).rev;
    }
    lastRev = (
      await client.register({ service: 'a', host: '10.0.0.1', port: 100, protocol: 'http', tags: ['x'] }, 'a-0')
    ).rev;
    await client.deregister('b-3');
    await waitFor(() => watch.view.rev > lastRev, { what: 'watch caught up' });
    const rest = await client.lookup('a', { state: 'all' });
    assert.deepEqual(
      watch
        .providers('a')
        .map((p) => p.id)
        .sort(),
      rest.map((p) => p.id).sort(),
    );
    assert.ok(!watch.view.providers.has('b-3'));
    const events = seen.flatMap((u) => (u.type === 'event' ? [u.event] : []));
    const lastOf = new Map<string, number>();
    for (const e of events) {
      if (lastOf.has(e.service))
        assert.equal(e.prev, lastOf.get(e.service), `prev of rev ${e.rev} names the previous ${e.service} change`);
      lastOf.set(e.service, e.rev);
    }
  });
}

/**
 * A gateway dies (SIGKILL) under a Node client watching through it: the client moves to the next gateway and
 * resumes from its last revision — every event exactly once, no gap, and its view ends equal to the leader's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardClient } from '../../src/client/index.ts';
import { waitFor } from '../helpers/wait.ts';
import { record, startFaultCluster, statesOf } from './harness.ts';

test('SIGKILL of the gateway a client watches through: failover without a missed or repeated event', async (t) => {
  const fc = await startFaultCluster(t);
  const [first, second] = fc.gateways;
  const watcher = new SwitchboardClient({ gateways: [first.url, second.url] });
  const writer = new SwitchboardClient({ gateways: [second.url] });
  t.after(() => {
    void watcher.close();
    void writer.close();
  });
  const watch = watcher.watch();
  const seen = record(watch);
  await watch.ready;
  assert.equal(watch.gateway.url, first.url);

  let n = 0;
  let stop = false;
  const writes = (async () => {
    while (!stop) {
      const i = n++;
      await writer.register(
        { service: 'orders', host: '127.0.0.1', port: 1000 + i, protocol: 'http', meta: { i: String(i) } },
        `order-${i}`,
      );
      if (i % 3 === 2) await writer.deregister(`order-${i - 1}`);
    }
  })();
  await waitFor(() => watch.view.rev >= 30, { what: '30 changes seen before the kill' });
  const killedAt = Date.now();
  first.child.signal('SIGKILL');
  await waitFor(() => watch.gateway.url === second.url && watch.view.rev > 0, {
    what: 'watch moved to the second gateway',
  });
  const revAtKill = watch.view.rev;
  await waitFor(() => watch.view.rev >= revAtKill + 30, { what: '30 more changes through the second gateway' });
  t.diagnostic(
    `failover: watching through ${second.url} ${Date.now() - killedAt} ms after SIGKILL (30 more changes included)`,
  );
  stop = true;
  await writes;

  const truth = await fc.leaderSnapshot();
  await waitFor(() => watch.view.rev === truth.rev, { what: 'watch at the leader revision' });
  assert.deepEqual(statesOf([...watch.view.providers.values()]), statesOf(truth.providers), 'view equals the leader');

  const snapshots = seen.filter((u) => u.type === 'snapshot');
  assert.equal(snapshots.length, 1, 'one snapshot at the start; the failover resumed from history');
  const revs = seen.flatMap((u) => (u.type === 'event' ? [u.event.rev] : []));
  const start = (snapshots[0] as { rev: number }).rev;
  assert.deepEqual(
    revs,
    Array.from({ length: revs.length }, (_, i) => start + 1 + i),
    'every revision exactly once, in order',
  );
  assert.ok(seen.some((u) => u.type === 'failover'));
});

/**
 * A worker dies (SIGKILL) or hangs (SIGSTOP) while its providers heartbeat: the leader declares it dead, moves its
 * tasks to the surviving worker, and no healthy provider is reported down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardClient } from '../../src/client/index.ts';
import { waitFor } from '../../harness/wait.ts';
import { allInState, record, startFaultCluster, startProviders } from './harness.ts';

for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
  test(`${signal} of a worker: its tasks move, healthy providers never go down`, async (t) => {
    const fc = await startFaultCluster(t);
    const client = new SwitchboardClient({ gateways: fc.gateways.map((g) => g.url), lookupCacheMs: 0 });
    t.after(() => client.close());
    const watch = client.watch();
    await watch.ready;
    const groups = [0, 1, 2].map((g) => Array.from({ length: 8 }, (_, i) => `svc-${g}-${i}`));
    await startProviders(fc, client, 'payments', groups);
    const ids = groups.flat();
    await allInState(client, 'payments', ids, 'up');
    const before = await fc.cluster();
    assert.equal(
      before.workers.reduce((n, w) => n + w.tasks, 0),
      ids.length,
    );
    assert.ok(
      before.workers.every((w) => w.tasks > 0),
      'both workers watch some providers',
    );

    const seen = record(watch);
    const victim = fc.workers[0];
    const survivor = fc.workers[1];
    const t0 = Date.now();
    victim.child.signal(signal);
    const after = await waitFor(
      async () => {
        const c = await fc.cluster();
        return c.workers.length === 1 &&
          c.workers[0].id === survivor.id &&
          c.workers[0].tasks === ids.length &&
          c.unassigned === 0
          ? c
          : undefined;
      },
      { timeoutMs: 10_000, what: 'tasks moved to the surviving worker' },
    );
    const moveMs = Date.now() - t0;
    t.diagnostic(
      `${signal} of a worker → its ${before.workers.find((w) => w.id === victim.id)?.tasks} tasks on the survivor after ${moveMs} ms`,
    );
    assert.equal(after.unassigned, 0);

    // Let a full miss window pass under the new worker, then mark the end of the observation with a known change.
    await new Promise((r) => setTimeout(r, 300 * 3 + 300));
    const marker = await client.register(
      { service: 'marker', host: '127.0.0.1', port: 1, protocol: 'http' },
      `marker-${signal.toLowerCase()}`,
    );
    await waitFor(() => watch.view.rev >= marker.rev, { what: 'marker seen by the watch' });
    const downs = seen.filter((u) => u.type === 'event' && u.event.change === 'down');
    assert.deepEqual(downs, [], 'no healthy provider was reported down');
    assert.deepEqual((await client.lookup('payments')).map((p) => p.id).sort(), [...ids].sort(), 'all still up');

    if (signal === 'SIGSTOP') {
      // The hung worker comes back: it is told what it watches now, and the load is balanced again.
      victim.child.signal('SIGCONT');
      await waitFor(
        async () => {
          const c = await fc.cluster();
          // Balanced by whole endpoint groups (8 providers share each heartbeat socket): 16 and 8.
          return c.workers.length === 2 && c.workers.every((w) => w.tasks >= 8) && c.unassigned === 0;
        },
        { timeoutMs: 10_000, what: 'returning worker rebalanced' },
      );
    }
  });
}

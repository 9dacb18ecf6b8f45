/**
 * The writes a gateway asks in one turn of its event loop reach the leader as batch frames and are answered one by
 * one: each its own ack or nack, in one group commit, every guarantee of a single write kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, LeaderLink, LinkError, Metrics, toFollower, type Reply } from '../../src/bridge/index.ts';
import { start as startLeader } from '../../src/leader/index.ts';
import { tempDir } from '../../harness/tmp.ts';

const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

async function counter(metrics: Metrics, name: string): Promise<number> {
  const line = (await metrics.render()).split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? 0);
}

test('writes of one turn travel as batch frames; each is acked or refused on its own, in one commit', async (t) => {
  const dir = tempDir();
  const leader = await startLeader(
    { dataDir: dir.path, bind: 'tcp://127.0.0.1:*', publish: 'tcp://127.0.0.1:*' },
    { log },
  );
  const link = new LeaderLink({
    endpoints: leader.control,
    validator: toFollower,
    name: 'test',
    log,
    metrics: new Metrics(),
  });
  t.after(async () => {
    await link.close();
    await leader.close();
    dir.remove();
  });
  // Warm up: the first request waits for the connection; afterwards a turn's writes leave together.
  assert.equal((await link.request({ type: 'ping' })).type, 'pong');
  const commitsBefore = await counter(leader.metrics, 'switchboard_store_commits_total');

  const n = 1500; // more than one batch frame holds (MAX_BATCH_REQUESTS)
  const input = (i: number) => ({ service: 'batched', host: '127.0.0.1', port: 1000 + i, protocol: 'http' as const });
  const puts = Array.from({ length: n }, (_, i) => link.request({ type: 'put', id: `b-${i}`, input: input(i) }));
  const missing = link.request({ type: 'delete', id: 'nobody' });
  const replies = await Promise.all(puts);
  replies.forEach((r: Reply, i) => {
    assert.equal(r.type, 'ack', `put ${i} acknowledged`);
    assert.equal(r.type === 'ack' && r.provider?.id, `b-${i}`, `put ${i} answered with its own provider`);
    assert.equal(r.type === 'ack' && r.status, 201);
  });
  const refused = await missing;
  assert.equal(refused.type, 'nack');
  assert.equal(refused.type === 'nack' && refused.code, 'SB_PROVIDER_NOT_FOUND');

  assert.equal(leader.status().providers, n);
  assert.equal(await counter(leader.metrics, 'switchboard_batched_writes_total'), n + 1);
  assert.equal(await counter(leader.metrics, 'switchboard_write_batches_total'), 2, '1,501 writes in two frames');
  const commits = (await counter(leader.metrics, 'switchboard_store_commits_total')) - commitsBefore;
  assert.ok(commits <= 2, `${n} writes in ${commits} commit(s)`);

  // With the leader gone a batched write still fails on its own terms (connection lost, or its timeout).
  await leader.close();
  await assert.rejects(
    link.request({ type: 'put', id: 'late', input: input(0) }, 300),
    (err: unknown) => err instanceof LinkError && ['LINK_TIMEOUT', 'LINK_LOST'].includes(err.code),
  );
});

/**
 * The leader's observation queue: a worker's transition (a crash just seen) is decided at once even while full
 * reports wait in slices, and the older observations it overtook are not applied over it afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, Metrics, type Observation } from '../../src/bridge/index.ts';
import { OBSERVATION_SLICE, ObservationQueue } from '../../src/leader/observation-queue.ts';

function queue(): { q: ObservationQueue; applied: Array<{ workerId: string; o: Observation }> } {
  const applied: Array<{ workerId: string; o: Observation }> = [];
  const q = new ObservationQueue({
    apply: (workerId, list) => {
      for (const o of list) applied.push({ workerId, o });
    },
    closed: () => false,
    metrics: new Metrics(),
    log: createLogger({ level: 'silent' }),
  });
  return { q, applied };
}

const up = (id: string, at: number): Observation => ({ id, alive: true, cause: 'beat', at });
const down = (id: string, at: number): Observation => ({ id, alive: false, cause: 'disconnect', at });
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function drained(q: ObservationQueue): Promise<void> {
  for (let i = 0; i < 100 && q.queued > 0; i++) await turn();
  assert.equal(q.queued, 0);
}

test('a transition is decided ahead of queued full reports; what it overtook is not applied over it', async () => {
  const { q, applied } = queue();
  const full = Array.from({ length: OBSERVATION_SLICE * 3 }, (_, i) => up(`p${i}`, 1000));
  q.push('w1', full);
  q.push('w2', full.slice(0, 10));
  assert.ok(q.queued > 0, 'the full report waits in slices');
  const crashedAt = 2000;
  q.pushTransitions('w1', [down('p5000', crashedAt)]);
  assert.deepEqual(applied.at(-1), { workerId: 'w1', o: down('p5000', crashedAt) }, 'decided at once');
  await drained(q);
  const last = applied.filter((a) => a.o.id === 'p5000').at(-1)!;
  assert.equal(last.o.alive, false, 'the older "up" of the full report was skipped');
  assert.equal(applied.filter((a) => a.o.id === 'p5001').length, 1, 'the rest of the report was applied');
  // Once the queue is empty, later reports apply normally (nothing remembered past it).
  q.push('w1', [up('p5000', 3000)]);
  assert.equal(applied.at(-1)!.o.alive, true);
});

test("a worker's transition waits behind its own queued hello", async () => {
  const { q, applied } = queue();
  let welcomed = false;
  const hello = Array.from({ length: OBSERVATION_SLICE * 2 }, (_, i) => up(`p${i}`, 1000));
  q.push('w1', hello, { hello: true, done: () => (welcomed = true) });
  q.pushTransitions('w1', [down('p1', 2000)]);
  assert.equal(
    applied.some((a) => !a.o.alive),
    false,
    'not ahead of the hello',
  );
  await drained(q);
  assert.ok(welcomed);
  assert.deepEqual(applied.at(-1)!.o, down('p1', 2000));
});

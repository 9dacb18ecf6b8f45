import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Provider } from '../../src/bridge/index.ts';
import { decide, stateAfterMaintenance } from '../../src/leader/presence.ts';
import { WorkerPool } from '../../src/leader/workers.ts';

const check = { type: 'zmq' as const, endpoint: 'tcp://127.0.0.1:1' };
function provider(state: Provider['state']): Provider {
  return {
    id: 'p',
    service: 's',
    host: 'h',
    port: 1,
    protocol: 'http',
    tags: [],
    meta: {},
    state,
    stateSince: 0,
    registeredAt: 0,
    updatedAt: 0,
    rev: 1,
    check,
  };
}

test('alive → up, not alive → down, with the failure text kept', () => {
  assert.equal(decide(provider('pending'), { id: 'p', alive: true, cause: 'beat', at: 1 })?.state, 'up');
  const down = decide(provider('up'), {
    id: 'p',
    alive: false,
    cause: 'disconnect',
    at: 2,
    output: 'connection dropped',
  });
  assert.equal(down?.state, 'down');
  assert.equal(down?.lastCheck.output, 'connection dropped');
});

test('no change, no decision; unknown observations are ignored', () => {
  assert.equal(decide(provider('up'), { id: 'p', alive: true, cause: 'beat', at: 1 }), undefined);
  assert.equal(decide(provider('down'), { id: 'p', alive: false, cause: 'missed', at: 1 }), undefined);
  assert.equal(decide(provider('up'), { id: 'p', alive: null, cause: 'assigned', at: 1 }), undefined);
});

test('maintenance holds whatever the checks say, and ends in the last observed state', () => {
  assert.equal(decide(provider('maintenance'), { id: 'p', alive: false, cause: 'missed', at: 1 }), undefined);
  assert.equal(stateAfterMaintenance(provider('maintenance'), true), 'up');
  assert.equal(stateAfterMaintenance(provider('maintenance'), false), 'down');
  assert.equal(stateAfterMaintenance(provider('maintenance'), undefined), 'pending');
});

test('tasks are balanced, survive a worker death by moving, and a returning worker keeps its claims', () => {
  const pool = new WorkerPool();
  const isTask = (): boolean => true;
  pool.hello('w1', Buffer.from('r1'), [], isTask, 0);
  pool.hello('w2', Buffer.from('r2'), [], isTask, 0);
  for (let i = 0; i < 10; i++) pool.assign(`t${i}`);
  assert.equal(pool.workers.get('w1')!.tasks.size, 5);
  assert.equal(pool.workers.get('w2')!.tasks.size, 5);
  pool.touch('w1', Buffer.from('r1'), 5000);
  const dead = pool.expire(5000, 2000);
  assert.deepEqual(
    dead.map((w) => w.id),
    ['w2'],
  );
  assert.equal(pool.unassigned.size, 5);
  const moves = pool.placeUnassigned();
  assert.equal(moves.add.get('w1')!.length, 5);
  assert.equal(pool.workers.get('w1')!.tasks.size, 10);
  // w2 comes back claiming t0: w1 owns it now, so the claim is refused; rebalance then evens the load.
  pool.hello('w2', Buffer.from('r2b'), ['t0'], isTask, 6000);
  assert.equal(pool.ownerOf('t0'), 'w1');
  const balance = pool.rebalance();
  assert.equal(balance.add.get('w2')!.length, 5);
  assert.equal(pool.workers.get('w1')!.tasks.size, 5);
  assert.equal(pool.workers.get('w2')!.tasks.size, 5);
});

test('a restarted leader lets workers reclaim the tasks they watch', () => {
  const pool = new WorkerPool();
  for (const t of ['a', 'b', 'c']) pool.unassigned.add(t);
  pool.hello('w1', Buffer.from('r1'), ['a', 'b', 'gone'], (id) => id !== 'gone', 0);
  assert.equal(pool.ownerOf('a'), 'w1');
  assert.equal(pool.ownerOf('b'), 'w1');
  assert.equal(pool.ownerOf('gone'), undefined);
  assert.deepEqual([...pool.unassigned], ['c']);
});

test('tasks that share a heartbeat endpoint share a worker, also when placed after a death and when rebalanced', () => {
  const endpointOf = (id: string): string | undefined =>
    id.startsWith('x') ? undefined : `tcp://h:${id.split('-')[0]}`;
  const pool = new WorkerPool(endpointOf);
  const isTask = (): boolean => true;
  pool.hello('w1', Buffer.from('r1'), [], isTask, 0);
  pool.hello('w2', Buffer.from('r2'), [], isTask, 0);
  const ids = ['1-a', '1-b', '1-c', '2-a', '2-b', '2-c', 'x1', 'x2'];
  for (const id of ids) pool.assign(id);
  const ownerOf = (prefix: string): Set<string | undefined> =>
    new Set(ids.filter((i) => i.startsWith(prefix)).map((i) => pool.ownerOf(i)));
  assert.equal(ownerOf('1-').size, 1, 'endpoint 1 on one worker');
  assert.equal(ownerOf('2-').size, 1, 'endpoint 2 on one worker');
  assert.notDeepEqual([...ownerOf('1-')], [...ownerOf('2-')], 'the two endpoints spread over both workers');
  // A worker dies: its groups move whole to the survivor; a new worker then takes whole groups.
  const victim = [...ownerOf('1-')][0]!;
  pool.touch(victim === 'w1' ? 'w2' : 'w1', Buffer.from('r'), 5000);
  pool.expire(5000, 2000);
  pool.placeUnassigned();
  pool.hello('w3', Buffer.from('r3'), [], isTask, 5000);
  pool.rebalance();
  assert.equal(ownerOf('1-').size, 1);
  assert.equal(ownerOf('2-').size, 1);
  assert.equal(pool.unassigned.size, 0);
  assert.ok(pool.workers.get('w3')!.tasks.size > 0, 'the new worker took a share');
  // Every group's worker is still found after all that: a new task of a group joins it.
  for (const group of ['1', '2']) {
    const id = `${group}-new`;
    ids.push(id);
    pool.assign(id);
    assert.equal(ownerOf(`${group}-`).size, 1, `a new task of endpoint ${group} joins its group`);
  }
});

test('a group is found at once among thousands of tasks (placing them is not quadratic)', () => {
  let lookups = 0;
  const pool = new WorkerPool((id) => {
    lookups++;
    return `tcp://h:${id.split('-')[0]}`;
  });
  pool.hello('w1', Buffer.from('r1'), [], () => true, 0);
  pool.hello('w2', Buffer.from('r2'), [], () => true, 0);
  // 10,000 tasks, 10 per endpoint, placed endpoint by endpoint interleaved as registrations arrive.
  for (let k = 0; k < 10; k++) for (let e = 0; e < 1000; e++) pool.assign(`${e}-${k}`);
  for (let e = 0; e < 1000; e += 97)
    assert.equal(new Set(Array.from({ length: 10 }, (_, k) => pool.ownerOf(`${e}-${k}`))).size, 1);
  assert.ok(lookups < 5 * 10_000, `${lookups} affinity lookups for 10,000 placements`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/bridge/index.ts';
import { GroupCommit, MAX_COMMIT_BATCH, MAX_COMMIT_DELAY_MS } from '../../src/leader/group-commit.ts';
import { Registry } from '../../src/leader/registry.ts';
import { sqliteStore } from '../../src/leader/store-api.ts';
import { Store } from '../../src/leader/store.ts';

/** One turn of the event loop: immediates queued before this one have run when it resolves. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A scheduler over a counter of staged changes, a settable clock and a settable "more input waiting". */
function rig(opts: { maxBatch?: number; maxDelayMs?: number } = {}) {
  const state = { staged: 0, waiting: false, clock: 0, commits: [] as number[] };
  const gc = new GroupCommit({
    staged: () => state.staged,
    moreWaiting: () => state.waiting,
    commit: () => {
      state.commits.push(state.staged);
      state.staged = 0;
    },
    now: () => state.clock,
    ...opts,
  });
  const stage = (n = 1): void => {
    state.staged += n;
    gc.staged();
  };
  return { state, gc, stage };
}

test('the defaults are the documented bounds', () => {
  assert.equal(MAX_COMMIT_BATCH, 2000);
  assert.equal(MAX_COMMIT_DELAY_MS, 5);
});

test('nothing waiting: commits on the next turn, everything staged in this turn in one commit', async () => {
  const { state, gc, stage } = rig();
  stage();
  stage();
  stage();
  assert.equal(gc.scheduled, true);
  assert.deepEqual(state.commits, [], 'never synchronously');
  await turn();
  assert.deepEqual(state.commits, [3]);
  assert.equal(gc.scheduled, false);
});

test('more input waiting: the commit waits for it, turn after turn, until the delay bound', async () => {
  const { state, gc, stage } = rig({ maxDelayMs: 5 });
  state.waiting = true;
  stage();
  for (let i = 0; i < 50; i++) {
    await turn();
    stage(); // requests read meanwhile join the same batch
    state.clock += 0.09; // 50 turns: 4.5 ms, still inside the bound
  }
  assert.deepEqual(state.commits, [], 'held while input waits and the bounds allow');
  assert.equal(gc.scheduled, true);
  state.clock = 5; // the first change of the batch is now MAX delay old
  await turn();
  assert.deepEqual(state.commits, [51], 'one commit carries the whole batch');
});

test('the delay counts from the first change of the batch, not the latest', async () => {
  const { state, stage } = rig({ maxDelayMs: 5 });
  state.waiting = true;
  stage();
  state.clock = 4;
  stage(); // must not restart the clock
  await turn();
  assert.deepEqual(state.commits, []);
  state.clock = 5;
  await turn();
  assert.deepEqual(state.commits, [2]);
});

test('more input waiting: the commit does not wait past the batch bound', async () => {
  const { state, stage } = rig({ maxBatch: 10 });
  state.waiting = true;
  stage(9);
  await turn();
  assert.deepEqual(state.commits, [], '9 < 10: still waiting');
  stage(1);
  await turn();
  assert.deepEqual(state.commits, [10]);
});

test('input stops waiting: commits on the next turn', async () => {
  const { state, stage } = rig();
  state.waiting = true;
  stage();
  await turn();
  await turn();
  assert.deepEqual(state.commits, []);
  state.waiting = false;
  await turn();
  assert.deepEqual(state.commits, [1]);
});

test('after a commit the next change starts a new batch with its own clock', async () => {
  const { state, stage } = rig({ maxDelayMs: 5 });
  stage();
  await turn();
  state.clock = 100;
  state.waiting = true;
  stage();
  await turn();
  assert.deepEqual(state.commits, [1], 'the second batch waits: its clock started at 100');
  state.clock = 105;
  await turn();
  assert.deepEqual(state.commits, [1, 1]);
});

test('cancel (the owner flushed by itself): the scheduled commit does not run', async () => {
  const { state, gc, stage } = rig();
  stage();
  gc.cancel();
  gc.cancel(); // idempotent
  assert.equal(gc.scheduled, false);
  await turn();
  await turn();
  assert.deepEqual(state.commits, []);
});

test('the registry with a real store: writes staged in one turn share one SQLite transaction', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-group-commit-'));
  const store = new Store(dir, createLogger({ level: 'silent' }));
  t.after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const published: number[] = [];
  const registry = new Registry(sqliteStore(store), store.load(), {
    log: createLogger({ level: 'silent' }),
    publish: (e) => published.push(e.rev),
  });
  for (let port = 1; port <= 3; port++)
    registry.put(`p${port}`, { service: 'billing', host: '127.0.0.1', port, protocol: 'http' });
  assert.equal(registry.commits, 0);
  assert.deepEqual(published, [], 'nothing is published before it is durable');
  await registry.committed();
  assert.equal(registry.commits, 1);
  assert.equal(registry.committedChanges, 3);
  assert.equal(registry.committedRev, registry.rev);
  assert.deepEqual(published, [1, 2, 3], 'published in revision order after the commit');
  registry.remove('p1');
  await registry.committed();
  assert.equal(registry.commits, 2);
  assert.equal(store.load().providers.length, 2, 'the store holds what was committed');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Replica, orderBeacon } from '../../src/bridge/index.ts';
import { eventOf as event, providerRecord as provider } from '../helpers/records.ts';

test('applies a snapshot then consecutive events', () => {
  const r = new Replica();
  r.applySnapshot({ epoch: 'E1', rev: 5, providers: [provider('a', 4)] });
  assert.equal(r.applyEvent(event(6, 'registered', provider('b', 6))), 'next');
  assert.equal(r.applyEvent(event(7, 'down', provider('a', 7, { state: 'down' }))), 'next');
  assert.equal(r.rev, 7);
  assert.equal(r.provider('a')?.state, 'down');
  assert.deepEqual(
    r
      .service('billing')
      .map((p) => p.id)
      .sort(),
    ['a', 'b'],
  );
  assert.equal(r.serviceRev('billing'), 7);
});

test('a gap is refused and leaves the replica untouched', () => {
  const r = new Replica();
  r.applySnapshot({ epoch: 'E1', rev: 5, providers: [] });
  assert.equal(r.applyEvent(event(7, 'registered', provider('x', 7))), 'gap');
  assert.equal(r.rev, 5);
  assert.equal(r.provider('x'), undefined);
});

test('duplicates (rev at or below ours) are ignored', () => {
  const r = new Replica();
  r.applySnapshot({ epoch: 'E1', rev: 5, providers: [provider('a', 5)] });
  assert.equal(r.applyEvent(event(5, 'deregistered', provider('a', 5))), 'duplicate');
  assert.equal(r.applyEvent(event(3, 'deregistered', provider('a', 3))), 'duplicate');
  assert.ok(r.provider('a'));
});

test('a new epoch is a reset: nothing applied until a snapshot', () => {
  const r = new Replica();
  r.applySnapshot({ epoch: 'E1', rev: 5, providers: [provider('a', 5)] });
  assert.equal(r.applyEvent(event(6, 'registered', provider('b', 1), 'E2')), 'reset');
  assert.equal(r.provider('b'), undefined);
  r.applySnapshot({ epoch: 'E2', rev: 1, providers: [provider('b', 1)] });
  assert.equal(r.epoch, 'E2');
  assert.equal(r.provider('a'), undefined, 'the old copy is thrown away');
});

test('a beacon behind us (revision went backwards) or of another epoch means reset; ahead means behind', () => {
  assert.equal(orderBeacon({ epoch: 'E1', rev: 10 }, { epoch: 'E1', rev: 8 }), 'reset');
  assert.equal(orderBeacon({ epoch: 'E1', rev: 10 }, { epoch: 'E2', rev: 10 }), 'reset');
  assert.equal(orderBeacon({ epoch: 'E1', rev: 10 }, { epoch: 'E1', rev: 12 }), 'behind');
  assert.equal(orderBeacon({ epoch: 'E1', rev: 10 }, { epoch: 'E1', rev: 10 }), 'in-sync');
});

test('deregistration removes the provider and the empty service; serviceRev still moves', () => {
  const r = new Replica();
  r.applySnapshot({ epoch: 'E1', rev: 1, providers: [provider('a', 1)] });
  r.applyEvent(event(2, 'deregistered', provider('a', 2)));
  assert.equal(r.size, 0);
  assert.deepEqual(r.serviceNames(), []);
  assert.equal(r.serviceRev('billing'), 2);
});

test('waitForRev resolves when the replica reaches the revision, false at the timeout', async () => {
  const r = new Replica();
  r.applySnapshot({ epoch: 'E1', rev: 1, providers: [] });
  const reached = r.waitForRev(2, 5000);
  r.applyEvent(event(2, 'registered', provider('a', 2)));
  assert.equal(await reached, true);
  assert.equal(await r.waitForRev(9, 20), false);
});

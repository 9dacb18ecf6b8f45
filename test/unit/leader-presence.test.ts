/** Is the leader there: a dropped connection says no at once, silence says no after `staleAfterMs`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaderPresence } from '../../src/bridge/index.ts';

test('never heard from: not reachable; heard from: reachable until the silence lasts longer than staleAfterMs', () => {
  const p = new LeaderPresence({ staleAfterMs: 2000 });
  assert.equal(p.reachable(1000), false);
  p.contact(1000);
  assert.equal(p.reachable(1000), true);
  assert.equal(p.reachable(3000), true);
  assert.equal(p.reachable(3001), false, 'a hung leader: silence');
});

test('a dropped control connection is unreachable at once; data read after the drop does not undo it, a handshake does', () => {
  const p = new LeaderPresence({ staleAfterMs: 2000 });
  p.contact(1000);
  p.dropped('control');
  assert.equal(p.reachable(1001), false, 'a killed leader: no waiting for the silence');
  p.contact(1002); // a pong that was already queued before the connection dropped
  assert.equal(p.reachable(1002), false);
  p.connected('control');
  assert.equal(p.reachable(1003), true);
});

test('a dropped event feed: the leader still answers, but the follower is not following', () => {
  const p = new LeaderPresence({ staleAfterMs: 2000 });
  p.contact(1000);
  p.dropped('events');
  assert.equal(p.reachable(1001), true, 'writes may still go through');
  assert.equal(p.following(1001), false, 'reads are stale');
  p.connected('events');
  assert.equal(p.following(1002), true);
});

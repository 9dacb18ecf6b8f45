/**
 * The follower's sync state machine without sockets: every repair path, driven by what a leader would send, checked
 * by the actions that come out (what is applied, what is asked for, and why).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FollowerSync,
  type Provider,
  type RegistryEvent,
  type Snapshot,
  type SyncAction,
} from '../../src/bridge/index.ts';
import { providerRecord } from '../helpers/records.ts';

function provider(id: string, rev: number, service = 'billing'): Provider {
  return providerRecord(id, rev, { service });
}

/** Event `rev` of `service`; `prev` is the previous revision of that service, as the leader sets it. */
function ev(rev: number, opts: { service?: string; prev?: number; epoch?: string } = {}): RegistryEvent {
  const service = opts.service ?? 'billing';
  return {
    epoch: opts.epoch ?? 'E1',
    rev,
    prev: opts.prev ?? rev - 1,
    change: 'registered',
    service,
    provider: provider(`${service}-${rev}`, rev, service),
    at: rev,
  };
}

function snap(rev: number, epoch = 'E1', providers: Provider[] = []): Snapshot {
  return { epoch, rev, providers };
}

/** Revisions of the `apply` actions. */
function applied(actions: SyncAction[]): number[] {
  return actions.flatMap((a) => (a.type === 'apply' ? [a.event.rev] : []));
}

/** The requests among `actions`, as short strings: what is asked for, from where, and why. */
function requests(actions: SyncAction[]): string[] {
  return actions.flatMap((a) =>
    a.type === 'request-since'
      ? [`since ${a.since} (${a.reason})`]
      : a.type === 'request-snapshot'
        ? [`snapshot (${a.reason})`]
        : [],
  );
}

/** A machine loaded with a snapshot at `rev`. */
function loadedAt(rev: number, epoch = 'E1', opts: { maxBufferedEvents?: number } = {}): FollowerSync {
  const s = new FollowerSync(opts);
  assert.deepEqual(requests(s.onPong({ epoch, rev })), ['snapshot (start)']);
  const out = s.onSnapshot(snap(rev, epoch));
  assert.equal(out[0]?.type, 'load');
  assert.equal(s.syncing, null);
  return s;
}

test('start: the first pong asks for a snapshot; events before it are buffered, newer ones applied after it', () => {
  const s = new FollowerSync();
  assert.deepEqual(s.onEvent(ev(9)), [], 'nothing applied before a snapshot');
  assert.deepEqual(requests(s.onPong({ epoch: 'E1', rev: 10 })), ['snapshot (start)']);
  assert.deepEqual(requests(s.onPong({ epoch: 'E1', rev: 10 })), [], 'one snapshot at a time, not one per pong');
  s.onEvent(ev(11));
  s.onEvent(ev(10));
  const out = s.onSnapshot(snap(9));
  assert.equal(out[0]?.type, 'load');
  assert.deepEqual(applied(out), [10, 11]);
  assert.equal(s.rev, 11);
  assert.equal(s.syncing, null);
});

test('consecutive events apply at once; duplicates are ignored', () => {
  const s = loadedAt(5);
  assert.deepEqual(applied(s.onEvent(ev(6))), [6]);
  assert.deepEqual(s.onEvent(ev(6)), []);
  assert.deepEqual(s.onEvent(ev(4)), []);
  assert.deepEqual(applied(s.onEvent(ev(7))), [7]);
});

test('a gap is caught up by since; events arriving meanwhile are applied after it in order', () => {
  const s = loadedAt(5);
  assert.deepEqual(requests(s.onEvent(ev(8))), ['since 5 (gap)']);
  assert.equal(s.syncing, 'since');
  assert.deepEqual(s.onEvent(ev(10)), [], 'buffered while the catch-up is out');
  assert.deepEqual(s.onEvent(ev(9)), []);
  const out = s.onSinceReply({ complete: true, events: [ev(6), ev(7), ev(8)] });
  assert.deepEqual(applied(out), [6, 7, 8, 9, 10], 'the missed events, then the buffered ones, each once, in order');
  assert.deepEqual(requests(out), []);
  assert.equal(s.syncing, null);
  assert.equal(s.rev, 10);
});

test('history exhausted: a since the leader cannot answer falls back to a snapshot', () => {
  const s = loadedAt(5);
  assert.deepEqual(requests(s.onEvent(ev(9))), ['since 5 (gap)']);
  const out = s.onSinceReply({ complete: false, events: [] });
  assert.deepEqual(requests(out), ['snapshot (history-exhausted)']);
  assert.equal(s.syncing, 'snapshot');
  const loaded = s.onSnapshot(snap(8));
  assert.equal(loaded[0]?.type, 'load');
  assert.deepEqual(applied(loaded), [9], 'the event that showed the gap is applied after the snapshot');
});

test('a since reply with a hole in it is not trusted: snapshot', () => {
  const s = loadedAt(5);
  s.onEvent(ev(9));
  const out = s.onSinceReply({ complete: true, events: [ev(6), ev(8)] });
  assert.deepEqual(applied(out), [6]);
  assert.deepEqual(requests(out), ['snapshot (since-incomplete)']);
});

test('buffer overflow during a sync: memory stays bounded and the dropped events are fetched by since afterwards', () => {
  const s = loadedAt(5, 'E1', { maxBufferedEvents: 3 });
  assert.deepEqual(requests(s.onEvent(ev(7))), ['since 5 (gap)']);
  for (let rev = 8; rev <= 20; rev++) s.onEvent(ev(rev));
  assert.ok(s.buffered <= 3, `buffer bounded (${s.buffered})`);
  assert.ok(s.overflows > 0);
  const out = s.onSinceReply({ complete: true, events: [ev(6), ev(7), ev(8)] });
  assert.deepEqual(applied(out), [6, 7, 8]);
  assert.deepEqual(requests(out), ['since 8 (overflow)'], 'what was dropped is asked for, from where we are');
  const caught = s.onSinceReply({ complete: true, events: Array.from({ length: 12 }, (_, i) => ev(9 + i)) });
  assert.deepEqual(applied(caught), [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  assert.equal(s.rev, 20);
  assert.equal(s.syncing, null);
});

test('a new epoch on an event throws the copy away: snapshot, then the new epoch continues', () => {
  const s = loadedAt(50);
  const out = s.onEvent(ev(3, { epoch: 'E2' }));
  assert.deepEqual(requests(out), ['snapshot (epoch)']);
  s.onEvent(ev(51)); // a late event of the old store, buffered during the snapshot
  s.onEvent(ev(4, { epoch: 'E2' }));
  const loaded = s.onSnapshot(snap(3, 'E2'));
  assert.equal(s.epoch, 'E2');
  assert.deepEqual(applied(loaded), [4], 'old-epoch events are dropped, not looped on');
  assert.deepEqual(requests(loaded), []);
  assert.equal(s.syncing, null);
});

test('a new epoch on a beacon or a pong: snapshot', () => {
  const a = loadedAt(50);
  assert.deepEqual(requests(a.onBeacon({ epoch: 'E2', rev: 2 })), ['snapshot (epoch)']);
  const b = loadedAt(50);
  assert.deepEqual(requests(b.onPong({ epoch: 'E2', rev: 2 })), ['snapshot (epoch)']);
});

test('the revision going backwards (the leader lost changes): snapshot, and the lower revision is taken', () => {
  const s = loadedAt(50);
  assert.deepEqual(requests(s.onBeacon({ epoch: 'E1', rev: 40 })), ['snapshot (rev-backwards)']);
  s.onSnapshot(snap(40));
  assert.equal(s.rev, 40);
  assert.deepEqual(applied(s.onEvent(ev(41))), [41], 'the new history continues from the lower revision');
});

test('a pong behind the replica is no reset: events sent after it may have overtaken it', () => {
  const s = loadedAt(50);
  assert.deepEqual(applied(s.onEvent(ev(51))), [51]);
  assert.deepEqual(s.onPong({ epoch: 'E1', rev: 50 }), [], 'answered before event 51 was published');
  assert.deepEqual(s.onPong({ epoch: 'E1', rev: 49 }), []);
  assert.equal(s.syncing, null);
  assert.equal(s.rev, 51);
});

test('a gap seen by prev: the next revision, but a change of its service is missing below ours → snapshot', () => {
  const s = loadedAt(10);
  assert.deepEqual(applied(s.onEvent(ev(11, { service: 'billing', prev: 4 }))), [11]);
  assert.deepEqual(applied(s.onEvent(ev(12, { service: 'auth', prev: 0 }))), [12]);
  assert.deepEqual(applied(s.onEvent(ev(13, { service: 'billing', prev: 11 }))), [13], 'prev = last billing event');
  // Revision 14 follows 13, yet it says auth last changed at 13, a change we never saw: our copy has a hole below
  // its own revision, which no `since` from here can fill.
  const out = s.onEvent(ev(14, { service: 'auth', prev: 13 }));
  assert.deepEqual(applied(out), [], 'not applied: auth changed at 13 according to the leader, we never saw it');
  assert.deepEqual(requests(out), ['snapshot (prev-gap)']);
  const loaded = s.onSnapshot(snap(13));
  assert.deepEqual(applied(loaded), [14], 'after the snapshot the same event fits (prev ≤ the snapshot revision)');
});

test('a beacon ahead of the replica means events were dropped: since', () => {
  const s = loadedAt(5);
  assert.deepEqual(s.onBeacon({ epoch: 'E1', rev: 5 }), [], 'in sync: nothing to do');
  assert.deepEqual(requests(s.onBeacon({ epoch: 'E1', rev: 7 })), ['since 5 (beacon-ahead)']);
  assert.deepEqual(s.onBeacon({ epoch: 'E1', rev: 8 }), [], 'no second request while one is out');
  const out = s.onSinceReply({ complete: true, events: [ev(6), ev(7)] });
  assert.deepEqual(applied(out), [6, 7]);
});

test('a pong that overtakes events is no proof of a drop: since only if still behind at the next pong', () => {
  const s = loadedAt(5);
  assert.deepEqual(s.onPong({ epoch: 'E1', rev: 7 }), [], 'the events may still be on their way');
  assert.deepEqual(applied([...s.onEvent(ev(6)), ...s.onEvent(ev(7))]), [6, 7]);
  assert.deepEqual(s.onPong({ epoch: 'E1', rev: 8 }), [], 'caught up with the previous pong: no request');
  assert.deepEqual(requests(s.onPong({ epoch: 'E1', rev: 8 })), ['since 7 (pong-ahead)'], 'still behind: ask');
});

test('a failed request is retried, after a pause, as the strongest sync asked for meanwhile', () => {
  const s = loadedAt(5);
  s.onEvent(ev(8));
  assert.deepEqual(s.onPong({ epoch: 'E2', rev: 3 }), [], 'the snapshot it calls for waits for the since under way');
  const retried = s.onRequestFailed();
  assert.equal(retried.length, 1);
  assert.deepEqual(retried[0], { type: 'request-snapshot', reason: 'retry', retry: true });
  assert.equal(s.syncing, 'snapshot', 'still stale while the retry waits');
  const again = loadedAt(5);
  again.onEvent(ev(8));
  assert.deepEqual(again.onRequestFailed(), [
    { type: 'request-since', epoch: 'E1', since: 5, reason: 'retry', retry: true },
  ]);
});

test('replies nobody asked for change nothing', () => {
  const s = loadedAt(5);
  assert.deepEqual(s.onSinceReply({ complete: true, events: [ev(6)] }), []);
  assert.deepEqual(s.onSnapshot(snap(99)), []);
  assert.equal(s.rev, 5);
});

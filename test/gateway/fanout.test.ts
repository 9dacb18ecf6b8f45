/**
 * The fan-out of one event-loop turn's events: each subscriber gets them in one write of frames built once
 * (src/gateway/ws-frames.ts), and still sees every event once, in order, as its own message, through real
 * WebSocket and SSE clients; a subscriber that starts in the middle of a burst sees no event twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectSse, connectWs, revs } from '../../harness/clients.ts';
import { gatewayApp } from '../helpers/gateway-app.ts';
import { providerRecord } from '../helpers/records.ts';
import type { Outgoing } from '../../src/gateway/subscribers.ts';
import { type OutgoingEvents, type SnapshotBody, type Watcher } from '../../src/gateway/subscribers.ts';
import { textFrame } from '../../src/gateway/ws-frames.ts';

test('a text frame carries its length in 7, 16 or 64 bits, unmasked (RFC 6455)', () => {
  const small = textFrame(Buffer.from('hi'));
  assert.deepEqual([...small], [0x81, 2, 0x68, 0x69]);
  const medium = textFrame(Buffer.alloc(300, 0x61));
  assert.deepEqual([...medium.subarray(0, 4)], [0x81, 126, 300 >> 8, 300 & 0xff]);
  assert.equal(medium.length, 304);
  const large = textFrame(Buffer.alloc(70_000, 0x61));
  assert.equal(large[1], 127);
  assert.equal(large.readBigUInt64BE(2), 70_000n);
  assert.equal(large.length, 70_010);
});

test('events of one turn reach every subscriber once, in order, each its own message; filters get theirs', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] } });
  t.after(() => g.close());
  const url = await g.listen();
  const all = await connectWs(url);
  const onlyA = await connectWs(url, '?service=a');
  const sse = await connectSse(url, '/v1/events');
  t.after(() => all.close());
  t.after(() => onlyA.close());
  t.after(() => sse.close());
  await all.next((m) => m.type === 'snapshot');
  await onlyA.next((m) => m.type === 'snapshot');
  await sse.next((m) => m.event === 'hello');
  // Frame lengths of every size class, services interleaved, all in one turn of the event loop.
  const big = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`k${i}`, 'x'.repeat(500)]));
  const published = [
    g.publish('registered', providerRecord('a1', 0, { service: 'a' })),
    g.publish('registered', providerRecord('b1', 0, { service: 'b', meta: big })),
    g.publish('registered', providerRecord('a2', 0, { service: 'a', meta: big })),
    g.publish('registered', providerRecord('b2', 0, { service: 'b' })),
  ];
  const last = published.at(-1)!.rev;
  await all.next((m) => m.type === 'event' && m.rev === last, 'all four events');
  await sse.next((m) => m.id === String(last), 'all four SSE events');
  const aRevs = published.filter((e) => e.service === 'a').map((e) => e.rev);
  await onlyA.next((m) => m.type === 'event' && m.rev === aRevs.at(-1), 'the events of service a');
  assert.deepEqual(
    revs(all.messages),
    published.map((e) => e.rev),
  );
  assert.deepEqual(all.messages.filter((m) => m.type === 'event')[2].provider.meta, big);
  assert.deepEqual(revs(onlyA.messages), aRevs);
  assert.deepEqual(
    sse.messages.filter((m) => m.id !== undefined && m.event !== 'hello').map((m) => Number(m.id)),
    published.map((e) => e.rev),
  );
});

/** A subscriber as the hub sees it, keeping what it is sent. */
class Recorder implements Watcher {
  readonly transport = 'ws' as const;
  readonly address = 'test';
  readonly services = null;
  readonly access = null;
  readonly got: Array<{ snapshot: number } | { event: number }> = [];
  snapshot(message: Outgoing<SnapshotBody>): void {
    this.got.push({ snapshot: message.value.rev });
  }
  events(message: OutgoingEvents): void {
    for (const e of message.events) this.got.push({ event: e.value.rev });
  }
  resumed(): void {}
  hello(): void {}
  shutdown(): void {}
  revoke(): void {}
}

test('a subscriber that starts while events of the turn are pending gets its snapshot, then only later events', async (t) => {
  const g = await gatewayApp({ snapshot: { providers: [] } });
  t.after(() => g.close());
  const early = new Recorder();
  assert.ok(g.ctx.hub.add(early, 'snapshot'));
  const first = g.publish('registered', providerRecord('p1', 0)).rev;
  const second = g.publish('registered', providerRecord('p2', 0)).rev;
  // Same turn: both events are in the replica, not yet handed out.
  const late = new Recorder();
  assert.ok(g.ctx.hub.add(late, 'snapshot'));
  const third = g.publish('registered', providerRecord('p3', 0)).rev;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(early.got, [{ snapshot: first - 1 }, { event: first }, { event: second }, { event: third }]);
  assert.deepEqual(late.got, [{ snapshot: second }, { event: third }]);
});

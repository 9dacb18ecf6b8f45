import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toLeader, type ToLeader } from '../../src/bridge/index.ts';
import { dispatch, type Handlers, type LeaderMessageType } from '../../src/leader/handlers.ts';

test('dispatch hands each message type to its own handler, with the message, the routing id and the time', () => {
  const calls: Array<{ type: LeaderMessageType; routing: string; message: ToLeader; now: number }> = [];
  const record =
    <K extends LeaderMessageType>(type: K) =>
    (routing: Buffer, message: Extract<ToLeader, { type: K }>, now: number): void => {
      calls.push({ type, routing: routing.toString(), message, now });
    };
  // The table must name every type: leaving one out does not compile.
  const handlers: Handlers = {
    'worker.hello': record('worker.hello'),
    'worker.ping': record('worker.ping'),
    presence: record('presence'),
    put: record('put'),
    delete: record('delete'),
    ttl: record('ttl'),
    maintenance: record('maintenance'),
    snapshot: record('snapshot'),
    since: record('since'),
    ping: record('ping'),
    'guard.release': record('guard.release'),
    cluster: record('cluster'),
    metrics: record('metrics'),
    'acl.get': record('acl.get'),
    'acl.write': record('acl.write'),
  };
  const messages: ToLeader[] = [
    { type: 'worker.hello', workerId: 'w1', observations: [{ id: 'p1', alive: true, cause: 'beat', at: 1 }] },
    { type: 'worker.ping', workerId: 'w1' },
    { type: 'presence', workerId: 'w1', full: false, observations: [] },
    { type: 'put', reqId: 1, input: { service: 's', host: 'h', port: 1, protocol: 'http' } },
    { type: 'delete', reqId: 2, id: 'p1' },
    { type: 'ttl', reqId: 3, id: 'p1' },
    { type: 'maintenance', reqId: 4, id: 'p1', enabled: true },
    { type: 'snapshot', reqId: 5 },
    { type: 'since', reqId: 6, epoch: 'e', since: 0 },
    { type: 'ping', reqId: 7 },
    { type: 'guard.release', reqId: 8 },
    { type: 'cluster', reqId: 9 },
    { type: 'metrics', reqId: 10 },
    { type: 'acl.get', reqId: 11 },
    { type: 'acl.write', reqId: 12, op: { op: 'token.delete', accessor: 'a1' } },
  ];
  for (const m of messages) assert.ok(toLeader.Check(m), `${m.type} is a valid wire message`);
  assert.equal(new Set(messages.map((m) => m.type)).size, Object.keys(handlers).length, 'one message per handler');
  messages.forEach((m, i) => dispatch(handlers, Buffer.from(`peer-${i}`), m, 1000 + i));
  assert.deepEqual(
    calls,
    messages.map((message, i) => ({ type: message.type, routing: `peer-${i}`, message, now: 1000 + i })),
  );
});

test('an observation cause outside the protocol list is refused at the wire', () => {
  const hello = (cause: string): unknown => ({
    type: 'worker.hello',
    workerId: 'w1',
    observations: [{ id: 'p1', alive: false, cause, at: 1 }],
  });
  assert.equal(toLeader.Check(hello('disconnect')), true);
  assert.equal(toLeader.Check(hello('cannot connect: Invalid argument')), false);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Unpackr } from 'msgpackr';
import { pack, unpack, toLeader, registryEvent, FrameDecoder, Metrics, createLogger } from '../../src/bridge/index.ts';
import { providerRecord } from '../helpers/records.ts';

const silent = createLogger({ level: 'silent' });

test('pack/unpack round-trips nested maps, arrays and numbers', () => {
  const value = {
    type: 'put',
    reqId: 7,
    input: { service: 'a', tags: ['x', 'y'], meta: { k: 'v' }, port: 65535 },
    big: 2 ** 40,
  };
  assert.deepEqual(unpack(pack(value)), value);
});

test('packed frames are plain MessagePack maps any decoder reads (no msgpackr records)', () => {
  const frame = pack({ epoch: 'e', rev: 3, provider: { id: 'p', tags: [] } });
  // 0x80..0x8f = fixmap: a plain map at the top level, not a record extension.
  assert.equal(frame[0] & 0xf0, 0x80);
  const plain = new Unpackr({ useRecords: false, mapsAsObjects: true });
  assert.deepEqual(plain.unpack(frame), { epoch: 'e', rev: 3, provider: { id: 'p', tags: [] } });
});

test('a __proto__ key in untrusted input cannot pollute prototypes', () => {
  // {"__proto__": {"polluted": 1}} encoded by hand
  const frame = Buffer.concat([
    Buffer.from([0x81, 0xa9]),
    Buffer.from('__proto__'),
    Buffer.from([0x81, 0xa8]),
    Buffer.from('polluted'),
    Buffer.from([0x01]),
  ]);
  const value = unpack(frame) as Record<string, unknown>;
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
});

test('FrameDecoder drops and counts garbage, truncated and schema-invalid frames', async () => {
  const metrics = new Metrics();
  const decoder = new FrameDecoder('test', metrics, silent);
  assert.equal(decoder.decode(toLeader, Buffer.from([0x92, 0x01])), undefined, 'truncated array');
  assert.equal(decoder.decode(toLeader, Buffer.from('not msgpack at all \xc1')), undefined);
  assert.equal(decoder.decode(toLeader, pack({ type: 'nope' })), undefined, 'unknown type');
  assert.equal(decoder.decode(toLeader, pack({ type: 'delete', reqId: 1, id: '../etc' })), undefined, 'bad id');
  assert.equal(decoder.decode(toLeader, undefined), undefined);
  const dropped = (await metrics.render()).match(/switchboard_frames_dropped_total\{[^}]*\} (\d+)/g) ?? [];
  const total = dropped.map((l) => Number(l.split(' ').pop())).reduce((a, b) => a + b, 0);
  assert.equal(total, 5);
  const ok = decoder.decode(toLeader, pack({ type: 'delete', reqId: 1, id: 'billing-1' }));
  assert.deepEqual(ok, { type: 'delete', reqId: 1, id: 'billing-1' });
});

test('registry events validate against the schema', () => {
  const provider = providerRecord('p1', 3, { stateSince: 1, registeredAt: 1, updatedAt: 1 });
  assert.ok(registryEvent.Check({ epoch: 'e', rev: 3, change: 'up', service: 'billing', provider, at: 5 }));
  assert.ok(!registryEvent.Check({ epoch: 'e', rev: 3, change: 'exploded', service: 'billing', provider, at: 5 }));
});

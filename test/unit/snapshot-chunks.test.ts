/**
 * Snapshots in chunks, in memory: the rows the leader encodes decode (through the follower's own frame check) to
 * the same records, and a chunk sequence that is out of order, of two revisions, short or pointing past its lists
 * is refused as a whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeRows,
  SnapshotAssembly,
  SnapshotChunkError,
  snapshotChunkFrame,
  toFollower,
  unpack,
  type Provider,
  type SnapshotChunk,
} from '../../src/bridge/index.ts';

function provider(i: number, extra: Partial<Provider> = {}): Provider {
  return {
    id: `p-${i}`,
    service: `svc-${i % 3}`,
    host: `10.0.0.${i % 250}`,
    port: 8000 + i,
    protocol: i % 2 ? 'http' : 'rpc-server',
    tags: i % 4 ? ['blue', 'v2'] : [],
    meta: i % 5 ? { zone: `z${i % 2}` } : {},
    state: i % 3 ? 'up' : 'down',
    stateSince: 1_000 + i,
    registeredAt: 500 + i,
    updatedAt: 1_000 + i,
    rev: i + 1,
    ...extra,
  };
}

const PROVIDERS: Provider[] = [
  ...Array.from({ length: 23 }, (_, i) => provider(i)),
  provider(23, { check: { type: 'zmq', endpoint: 'tcp://127.0.0.1:5555', intervalMs: 200 } }),
  provider(24, { lastCheck: { ok: false, at: 7, output: 'refused' }, owner: 'acc-1' }),
  provider(25, { check: { type: 'ttl', ttlMs: 1000 }, lastCheck: { ok: true, at: 9 } }),
];

/** The frames a leader sends for `providers` in chunks of `size`, decoded and checked as the follower does. */
function chunks(providers: Provider[], size: number, head = { reqId: 7, epoch: 'e1', rev: 99 }): SnapshotChunk[] {
  const count = Math.max(1, Math.ceil(providers.length / size));
  return Array.from({ length: count }, (_, seq) => {
    const frame = snapshotChunkFrame(
      { ...head, seq, total: providers.length, last: seq === count - 1 },
      encodeRows(providers, seq * size, size),
    );
    const value = unpack(frame);
    assert.ok(toFollower.Check(value), `chunk ${seq} passes the follower's frame check`);
    assert.equal(value.type, 'snapshot.chunk');
    return value;
  });
}

function assemble(parts: SnapshotChunk[]): SnapshotAssembly {
  const assembly = new SnapshotAssembly();
  parts.forEach((part, i) => assert.equal(assembly.add(part), i === parts.length - 1, `chunk ${i} last or not`));
  return assembly;
}

test('rows in chunks decode to the same records, optional fields included', () => {
  for (const size of [1, 4, 26, 1000]) {
    const snapshot = assemble(chunks(PROVIDERS, size)).snapshot();
    assert.equal(snapshot.epoch, 'e1');
    assert.equal(snapshot.rev, 99);
    assert.deepEqual(snapshot.providers, PROVIDERS, `chunks of ${size}`);
  }
});

test('an empty registry is one empty last chunk', () => {
  const parts = chunks([], 10);
  assert.equal(parts.length, 1);
  assert.deepEqual(assemble(parts).snapshot().providers, []);
});

test('records of a chunk share their tag lists and meta maps (frozen)', () => {
  const [{ providers }] = [assemble(chunks(PROVIDERS, 100)).snapshot()];
  assert.equal(providers[1].tags, providers[2].tags, 'one tag list for equal tags');
  assert.ok(Object.isFrozen(providers[1].tags));
  assert.equal(providers[1].meta, providers[3].meta, 'one meta map for equal meta');
});

/** Feeds `parts` and expects a refusal for `reason`; nothing comes out. */
function refused(parts: SnapshotChunk[], reason: string): void {
  const assembly = new SnapshotAssembly();
  assert.throws(
    () => {
      for (const part of parts) assembly.add(part);
    },
    (err: unknown) => err instanceof SnapshotChunkError && err.reason === reason,
  );
  assert.throws(() => assembly.snapshot(), SnapshotChunkError, 'no snapshot from a refused sequence');
}

test('a sequence with a chunk missing, repeated or out of order is refused', () => {
  const parts = chunks(PROVIDERS, 5);
  assert.ok(parts.length >= 4);
  refused([parts[0], parts[2]], 'order');
  refused([parts[0], parts[0]], 'order');
  refused([parts[1]], 'order');
  refused([...parts, parts[parts.length - 1]], 'order');
});

test('chunks of two revisions, a short last chunk or a row past its lists are refused', () => {
  const a = chunks(PROVIDERS, 5, { reqId: 7, epoch: 'e1', rev: 99 });
  const b = chunks(PROVIDERS, 5, { reqId: 7, epoch: 'e1', rev: 100 });
  refused([a[0], b[1]], 'revision');
  // The last chunk arrives early: fewer providers than announced.
  refused([a[0], { ...a[a.length - 1], seq: 1 }], 'count');
  // More rows than announced.
  refused([{ ...a[0], total: 2 }], 'count');
  const bad = structuredClone(a[0]);
  bad.rows[0][1] = bad.services.length;
  refused([bad], 'index');
});

/**
 * The follower's CPU per snapshot at N providers, in this process: one `snapshot.reply` frame (maps) against
 * `snapshot.chunk` frames (rows), each decoded, checked and loaded into a fresh replica, alternating rounds.
 *
 *   node --import tsx bench/snapshot-decode.ts --providers 100000 --rounds 4
 */
import { parseArgs } from 'node:util';
import {
  DEFAULT_SNAPSHOT_CHUNK,
  encodeRows,
  pack,
  Replica,
  SnapshotAssembly,
  snapshotChunkFrame,
  toFollower,
  unpack,
} from '../src/bridge/index.ts';
import { snapshotReply } from '../src/leader/snapshot-replies.ts';
import { scaleRecord } from './gateway-ready.ts';

const { values } = parseArgs({
  options: { providers: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '4' } },
});
const n = Number(values.providers);
const services = Math.max(1, Math.round(n / 100));
const now = Date.now();
const providers = Array.from({ length: n }, (_, i) => scaleRecord(i, services, now));

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function time(label: string, fn: () => void): number {
  const c0 = cpuMs();
  fn();
  return cpuMs() - c0;
}

let t = cpuMs();
const whole = snapshotReply(1, 'e', n, Buffer.from(pack(providers)));
const encodeWhole = cpuMs() - t;
t = cpuMs();
const chunks: Buffer[] = [];
const count = Math.ceil(n / DEFAULT_SNAPSHOT_CHUNK);
for (let seq = 0; seq < count; seq++)
  chunks.push(
    snapshotChunkFrame(
      { reqId: 1, epoch: 'e', rev: n, seq, total: n, last: seq === count - 1 },
      encodeRows(providers, seq * DEFAULT_SNAPSHOT_CHUNK, DEFAULT_SNAPSHOT_CHUNK),
    ),
  );
const encodeChunks = cpuMs() - t;
console.log(
  `encode: one frame ${Math.round(encodeWhole)} ms (${(whole.length / 1e6).toFixed(1)} MB), chunks ${Math.round(encodeChunks)} ms (${(chunks.reduce((a, b) => a + b.length, 0) / 1e6).toFixed(1)} MB)`,
);

for (let r = 0; r < Number(values.rounds); r++) {
  const one = time('one', () => {
    const v = unpack(whole);
    if (!toFollower.Check(v) || v.type !== 'snapshot.reply') throw new Error('bad');
    new Replica().applySnapshot({ epoch: v.epoch, rev: v.rev, providers: v.providers });
  });
  const chunked = time('chunks', () => {
    const a = new SnapshotAssembly();
    for (const frame of chunks) {
      const v = unpack(frame);
      if (!toFollower.Check(v) || v.type !== 'snapshot.chunk') throw new Error('bad');
      a.add(v);
    }
    new Replica().applySnapshot(a.snapshot());
  });
  console.log(`round ${r + 1}: one frame ${Math.round(one)} ms CPU, chunks ${Math.round(chunked)} ms CPU`);
}

if (process.env.PHASES) {
  for (let r = 0; r < 3; r++) {
    let unpackMs = 0;
    let checkMs = 0;
    let rowsMs = 0;
    const a = new SnapshotAssembly();
    for (const frame of chunks) {
      let c = cpuMs();
      const v = unpack(frame);
      unpackMs += cpuMs() - c;
      c = cpuMs();
      if (!toFollower.Check(v) || v.type !== 'snapshot.chunk') throw new Error('bad');
      checkMs += cpuMs() - c;
      c = cpuMs();
      a.add(v);
      rowsMs += cpuMs() - c;
    }
    const loadMs = time('load', () => new Replica().applySnapshot(a.snapshot()));
    console.log(
      `phases: unpack ${Math.round(unpackMs)} check ${Math.round(checkMs)} rows→records ${Math.round(rowsMs)} replica ${Math.round(loadMs)} ms CPU`,
    );
  }
}

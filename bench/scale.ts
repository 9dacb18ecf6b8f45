/**
 * The registry at scale (issue 15): N providers written to a SQLite store in batches of 10,000 (the store's own
 * `commit`, the same transaction the leader writes; no HTTP in the way, so 1,000,000 take seconds, not minutes),
 * then the CLI's own leader and gateway processes on that store:
 * - leader: start → store loaded (its `control=` line), RSS once settled, and RSS beside an empty leader's;
 * - snapshot: one request from a DEALER for chunks, as a gateway asks (encode + transfer), the leader's CPU for it
 *   and its RSS while it keeps the encoding and after it lets it go; the chunks' pieces timed here, in this
 *   process, as the gateway does them: unpack, schema check, rows → records, replica load;
 * - gateway: start → /readyz 200 (process start + snapshot + replica load) in wall and CPU time, with the load
 *   average, and its RSS once ready.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Dealer } from 'zeromq';
import { DEFAULT_SNAPSHOT_CHUNK, pack, Replica, SnapshotAssembly, toFollower, unpack } from '../src/bridge/index.ts';
import { ENCODED_KEEP_MS } from '../src/leader/snapshot-replies.ts';
import { STORE_FILE } from '../src/leader/store.ts';
import { gatewayReadyRound, seedStore, type ReadyRound } from './gateway-ready.ts';
import { cpuSeconds, rssMiB, spawnCli, tempDir, type Proc } from './lib/procs.ts';
import { sleep } from './lib/switchboard.ts';
const MiB = 1024 * 1024;
/** RSS is read this long after a process is ready: the start-up garbage has been collected by then. */
export const SETTLE_MS = 3_000;

export interface ScaleResult {
  providers: number;
  services: number;
  /** Providers written to the store per second, in batches of BATCH. */
  seedPerSecond: number;
  storeMiB: number;
  emptyLeaderRssMiB: number;
  leaderRssMiB: number;
  /** (leader RSS − empty leader RSS) / providers. */
  bytesPerProvider: number;
  /** Leader process start → its line printed (store opened, read, checked and loaded). */
  leaderLoadMs: number;
  /** Snapshot request sent → last chunk received (encode at the leader + transfer). */
  snapshotMs: number;
  /** The leader's CPU time for that request. */
  snapshotLeaderCpuMs: number;
  snapshotFrames: number;
  snapshotMiB: number;
  leaderRssWithSnapshotMiB: number;
  leaderRssAfterSnapshotMiB: number;
  /** The gateway's pieces, timed in this process on the same chunks. */
  unpackMs: number;
  checkMs: number;
  /** Rows → compact records (SnapshotAssembly). */
  rowsMs: number;
  replicaLoadMs: number;
  /** A gateway process started on the leader, to /readyz 200: wall and CPU time, load average, RSS. */
  gateway: ReadyRound;
}

async function startLeader(name: string, dataDir: string): Promise<{ proc: Proc; control: string; loadMs: number }> {
  const t0 = performance.now();
  const proc = spawnCli(name, ['leader', '--data-dir', dataDir, '--bind', 'tcp://127.0.0.1:*']);
  const [, control] = await proc.waitForLine(/^switchboard leader: control=(\S+)/, 600_000);
  return { proc, control, loadMs: performance.now() - t0 };
}

/** One snapshot request from a DEALER, in chunks as a gateway asks; the frames and how long they took. */
async function requestSnapshot(control: string): Promise<{ frames: Buffer[]; ms: number }> {
  const dealer = new Dealer({ linger: 0, maxMessageSize: 1024 * MiB, receiveTimeout: 600_000 });
  try {
    dealer.connect(control);
    const t0 = performance.now();
    await dealer.send(pack({ type: 'snapshot', reqId: 1, chunk: DEFAULT_SNAPSHOT_CHUNK }));
    const frames: Buffer[] = [];
    for (;;) {
      const [frame] = await dealer.receive();
      frames.push(frame);
      // The last chunk says so in its header, before the rows: no need to decode it here.
      if (frame.subarray(0, 256).includes(LAST_TRUE)) break;
    }
    return { frames, ms: performance.now() - t0 };
  } finally {
    dealer.close();
  }
}

/** `last: true` as msgpack: a fixstr "last" then true (0xc3). */
const LAST_TRUE = Buffer.concat([pack('last'), Buffer.from([0xc3])]);

export async function measureScale(
  providers: number,
  say: (text: string) => void = () => undefined,
): Promise<ScaleResult> {
  const services = Math.max(1, Math.round(providers / 100));
  const empty = tempDir('switchboard-scale-empty-');
  const dir = tempDir('switchboard-scale-');
  const procs: Proc[] = [];
  try {
    say('empty leader');
    const emptyLeader = await startLeader('leader-empty', empty.path);
    procs.push(emptyLeader.proc);
    await sleep(SETTLE_MS);
    const emptyLeaderRssMiB = rssMiB(emptyLeader.proc.pid) ?? 0;
    await emptyLeader.proc.stop(5_000);

    const s0 = performance.now();
    seedStore(dir.path, providers, say);
    const seedPerSecond = providers / ((performance.now() - s0) / 1000);
    const storeMiB = statSync(join(dir.path, STORE_FILE)).size / MiB;

    say('leader loading the store');
    const leader = await startLeader('leader-scale', dir.path);
    procs.push(leader.proc);
    await sleep(SETTLE_MS);
    const leaderRssMiB = rssMiB(leader.proc.pid) ?? 0;

    say('snapshot');
    const leaderCpu0 = cpuSeconds(leader.proc.pid) ?? 0;
    const snap = await requestSnapshot(leader.control);
    const snapshotLeaderCpuMs = ((cpuSeconds(leader.proc.pid) ?? 0) - leaderCpu0) * 1000;
    const leaderRssWithSnapshotMiB = rssMiB(leader.proc.pid) ?? 0;
    let unpackMs = 0;
    let checkMs = 0;
    let rowsMs = 0;
    const assembly = new SnapshotAssembly();
    for (const frame of snap.frames) {
      let t = performance.now();
      const value = unpack(frame);
      unpackMs += performance.now() - t;
      t = performance.now();
      if (!toFollower.Check(value) || value.type !== 'snapshot.chunk')
        throw new Error(`not a snapshot chunk: ${JSON.stringify(value).slice(0, 300)}`);
      checkMs += performance.now() - t;
      t = performance.now();
      assembly.add(value);
      rowsMs += performance.now() - t;
    }
    const snapshot = assembly.snapshot();
    const t = performance.now();
    new Replica().applySnapshot(snapshot);
    const replicaLoadMs = performance.now() - t;
    if (snapshot.providers.length !== providers) throw new Error(`snapshot of ${snapshot.providers.length} providers`);
    const snapshotMiB = snap.frames.reduce((n, f) => n + f.length, 0) / MiB;

    say('gateway');
    const gateway = await gatewayReadyRound('gateway-scale', leader.control, leader.proc.pid, [], SETTLE_MS);

    say('leader after the snapshot is let go');
    await sleep(ENCODED_KEEP_MS + 1_000 - SETTLE_MS);
    // The buffers go back to the system at the leader's next garbage collection: the lowest RSS of 10 s.
    let leaderRssAfterSnapshotMiB = Infinity;
    for (let i = 0; i < 20; i++) {
      leaderRssAfterSnapshotMiB = Math.min(leaderRssAfterSnapshotMiB, rssMiB(leader.proc.pid) ?? 0);
      await sleep(500);
    }
    return {
      providers,
      services,
      seedPerSecond,
      storeMiB,
      emptyLeaderRssMiB,
      leaderRssMiB,
      bytesPerProvider: ((leaderRssMiB - emptyLeaderRssMiB) * MiB) / providers,
      leaderLoadMs: leader.loadMs,
      snapshotMs: snap.ms,
      snapshotLeaderCpuMs,
      snapshotFrames: snap.frames.length,
      snapshotMiB,
      leaderRssWithSnapshotMiB,
      leaderRssAfterSnapshotMiB,
      unpackMs,
      checkMs,
      rowsMs,
      replicaLoadMs,
      gateway,
    };
  } finally {
    for (const p of procs) await p.stop(5_000);
    empty.remove();
    dir.remove();
  }
}

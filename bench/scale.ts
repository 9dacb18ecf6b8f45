/**
 * The registry at scale (issue 15): N providers written to a SQLite store in batches of 10,000 (the store's own
 * `commit`, the same transaction the leader writes; no HTTP in the way, so 1,000,000 take seconds, not minutes),
 * then the CLI's own leader and gateway processes on that store:
 * - leader: start → store loaded (its `control=` line), RSS once settled, and RSS beside an empty leader's;
 * - snapshot: one request from a DEALER (encode + transfer), the leader's RSS while it keeps the encoding and
 *   after it lets it go; the reply's pieces timed here, in this process: unpack, schema check, replica load;
 * - gateway: start → /readyz 200 (process start + snapshot + replica load), its RSS once ready.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Dealer } from 'zeromq';
import { createLogger, pack, Replica, toFollower, unpack, type Provider } from '../src/bridge/index.ts';
import { ENCODED_KEEP_MS } from '../src/leader/snapshot-replies.ts';
import { Store, STORE_FILE } from '../src/leader/store.ts';
import { rssMiB, spawnCli, tempDir, type Proc } from './lib/procs.ts';
import { get, sleep, until } from './lib/switchboard.ts';

const BATCH = 10_000;
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
  /** Snapshot request sent → whole reply received (encode at the leader + transfer). */
  snapshotMs: number;
  snapshotMiB: number;
  leaderRssWithSnapshotMiB: number;
  leaderRssAfterSnapshotMiB: number;
  /** The gateway's pieces, timed in this process on the same reply. */
  unpackMs: number;
  checkMs: number;
  replicaLoadMs: number;
  gatewayReadyMs: number;
  gatewayRssMiB: number;
}

/** A provider record as the leader stores it: the bench's `plainProvider`, registered and up. */
function record(i: number, services: number, now: number): Provider {
  return {
    id: `big-${i}`,
    service: `big-${i % services}`,
    host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8000 + (i % 1000),
    protocol: 'http',
    tags: ['bench'],
    meta: { zone: 'local', version: '1.0.0' },
    state: 'up',
    stateSince: now,
    registeredAt: now,
    updatedAt: now,
    rev: i + 1,
  };
}

async function startLeader(name: string, dataDir: string): Promise<{ proc: Proc; control: string; loadMs: number }> {
  const t0 = performance.now();
  const proc = spawnCli(name, ['leader', '--data-dir', dataDir, '--bind', 'tcp://127.0.0.1:*']);
  const [, control] = await proc.waitForLine(/^switchboard leader: control=(\S+)/, 600_000);
  return { proc, control, loadMs: performance.now() - t0 };
}

/** One snapshot request from a DEALER; the reply's raw bytes and how long it took. */
async function requestSnapshot(control: string): Promise<{ frame: Buffer; ms: number }> {
  const dealer = new Dealer({ linger: 0, maxMessageSize: 1024 * MiB, receiveTimeout: 600_000 });
  try {
    dealer.connect(control);
    const t0 = performance.now();
    await dealer.send(pack({ type: 'snapshot', reqId: 1 }));
    const [frame] = await dealer.receive();
    return { frame, ms: performance.now() - t0 };
  } finally {
    dealer.close();
  }
}

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

    const store = new Store(dir.path, createLogger({ level: 'silent' }));
    const now = Date.now();
    const s0 = performance.now();
    for (let first = 0; first < providers; first += BATCH) {
      say(`writing the store ${first}/${providers}`);
      const puts: Provider[] = [];
      const revs = new Map<string, number>();
      for (let i = first; i < Math.min(providers, first + BATCH); i++) {
        const p = record(i, services, now);
        puts.push(p);
        revs.set(p.service, p.rev);
      }
      store.commit(puts[puts.length - 1].rev, puts, [], revs);
    }
    const seedPerSecond = providers / ((performance.now() - s0) / 1000);
    store.close();
    const storeMiB = statSync(join(dir.path, STORE_FILE)).size / MiB;

    say('leader loading the store');
    const leader = await startLeader('leader-scale', dir.path);
    procs.push(leader.proc);
    await sleep(SETTLE_MS);
    const leaderRssMiB = rssMiB(leader.proc.pid) ?? 0;

    say('snapshot');
    const snap = await requestSnapshot(leader.control);
    const leaderRssWithSnapshotMiB = rssMiB(leader.proc.pid) ?? 0;
    let t = performance.now();
    const value = unpack(snap.frame);
    const unpackMs = performance.now() - t;
    t = performance.now();
    if (!toFollower.Check(value) || value.type !== 'snapshot.reply')
      throw new Error(`not a snapshot: ${JSON.stringify(value).slice(0, 300)}`);
    const checkMs = performance.now() - t;
    t = performance.now();
    new Replica().applySnapshot({ epoch: value.epoch, rev: value.rev, providers: value.providers });
    const replicaLoadMs = performance.now() - t;
    if (value.providers.length !== providers) throw new Error(`snapshot of ${value.providers.length} providers`);
    const snapshotMiB = snap.frame.length / MiB;

    say('gateway');
    const g0 = performance.now();
    const gateway = spawnCli('gateway-scale', ['gateway', '--leader', leader.control, '--http-port', '0']);
    procs.push(gateway);
    const [, url] = await gateway.waitForLine(/^switchboard gateway: url=(\S+)/, 600_000);
    await until(async () => (await get(`${url}/readyz`)).status === 200, 'scale gateway ready', 600_000, 5);
    const gatewayReadyMs = performance.now() - g0;
    await sleep(SETTLE_MS);
    const gatewayRssMiB = rssMiB(gateway.pid) ?? 0;

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
      snapshotMiB,
      leaderRssWithSnapshotMiB,
      leaderRssAfterSnapshotMiB,
      unpackMs,
      checkMs,
      replicaLoadMs,
      gatewayReadyMs,
      gatewayRssMiB,
    };
  } finally {
    for (const p of procs) await p.stop(5_000);
    empty.remove();
    dir.remove();
  }
}

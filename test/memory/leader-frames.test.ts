/**
 * Hostile frames on the leader's ROUTER (a real leader process): a flood of garbage, then the largest messages the
 * schemas allow, then one over the cap. The leader's memory must stay bounded and it must keep answering pings.
 * HOSTILE_SECONDS sets how long each flood lasts (default 4; the report's figure used 20).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Dealer } from 'zeromq';
import {
  MAX_OBSERVATIONS_PER_REPORT,
  MAX_TASKS_PER_WORKER,
  pack,
  unpack,
  type Observation,
} from '../../src/bridge/index.ts';
import { startLeaderProcess } from '../../harness/process.ts';
import { rssMiB as processRss } from '../../harness/memory.ts';
import { tempDir } from '../../harness/tmp.ts';

const SECONDS = Number(process.env.HOSTILE_SECONDS ?? 4);
const MiB = 1024 * 1024;

/** The process's resident memory, 0 once it has exited. */
const rssMiB = (pid: number): number => processRss(pid) ?? 0;

/** Pings the leader every 100 ms on its own DEALER; keeps the slowest answer (a ping unanswered counts as it waits). */
function pinger(endpoint: string) {
  const dealer = new Dealer({ linger: 0, maxMessageSize: 16 * MiB });
  dealer.connect(endpoint);
  const sent = new Map<number, number>();
  let reqId = 0;
  let slowest = 0;
  let answered = 0;
  const timer = setInterval(() => {
    for (const at of sent.values()) slowest = Math.max(slowest, Date.now() - at);
    sent.set(++reqId, Date.now());
    void dealer.send(pack({ type: 'ping', reqId })).catch(() => {});
  }, 100);
  const loop = (async () => {
    try {
      for await (const [frame] of dealer) {
        const reply = unpack(frame) as { type: string; reqId: number; text?: string };
        const at = sent.get(reply.reqId);
        if (at === undefined) continue;
        sent.delete(reply.reqId);
        slowest = Math.max(slowest, Date.now() - at);
        answered++;
      }
    } catch {
      // closed
    }
  })();
  return {
    get slowest() {
      return slowest;
    },
    get answered() {
      return answered;
    },
    reset() {
      slowest = 0;
    },
    async metrics(): Promise<string> {
      const probe = new Dealer({ linger: 0, maxMessageSize: 16 * MiB, receiveTimeout: 5000 });
      probe.connect(endpoint);
      try {
        await probe.send(pack({ type: 'metrics', reqId: 1 }));
        const [frame] = await probe.receive();
        return (unpack(frame) as { text: string }).text;
      } finally {
        probe.close();
      }
    },
    async close() {
      clearInterval(timer);
      dealer.close();
      await loop;
    },
  };
}

/** Sends `frames()` as fast as the socket takes them for `seconds`, sampling the leader's RSS. */
async function flood(endpoint: string, pid: number, seconds: number, frame: (i: number) => Buffer): Promise<number> {
  const dealer = new Dealer({ linger: 0, sendHighWaterMark: 1000, sendTimeout: 100, maxMessageSize: 1024 });
  dealer.connect(endpoint);
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 100);
  const until = Date.now() + seconds * 1000;
  try {
    for (let i = 0; Date.now() < until; i++) {
      try {
        await dealer.send(frame(i));
      } catch {
        // the leader dropped the connection (an over-cap frame) or is pushing back: go on
      }
    }
  } finally {
    clearInterval(sampler);
    dealer.close();
  }
  return Math.max(peak, rssMiB(pid));
}

function dropped(metrics: string, reason: string): number {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith('switchboard_frames_dropped_total{') && l.includes(`reason="${reason}"`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

test('garbage floods and max-size valid frames: leader memory stays bounded and pings are answered', async (t) => {
  const dir = tempDir();
  const leader = await startLeaderProcess(dir.path);
  t.after(async () => {
    await leader.child.stop();
    dir.remove();
  });
  const ping = pinger(leader.control);
  t.after(() => ping.close());
  await new Promise((r) => setTimeout(r, 500));
  const baseline = rssMiB(leader.child.pid);

  // 1. Garbage: random bytes from 1 KiB to 1 MiB, and well-formed maps of no known type.
  const garbage: Buffer[] = Array.from({ length: 32 }, (_, i) => randomBytes(1024 << (i % 11)));
  garbage.push(pack({ type: 'nothing', blob: 'x'.repeat(200_000) }), pack([1, 2, 3]));
  const garbagePeak = await flood(leader.control, leader.child.pid, SECONDS, (i) => garbage[i % garbage.length]);
  const garbageSlowest = ping.slowest;
  ping.reset();

  // 2. The largest valid messages: hellos listing MAX_TASKS_PER_WORKER tasks, full reports of MAX_OBSERVATIONS_PER_REPORT.
  const observation = (i: number): Observation => ({ id: `provider-${i}`, alive: true, cause: 'beat', at: Date.now() });
  const hello = pack({
    type: 'worker.hello',
    workerId: 'w-hostile',
    observations: Array.from({ length: MAX_TASKS_PER_WORKER }, (_, i) => observation(i)),
  });
  const report = pack({
    type: 'presence',
    workerId: 'w-hostile',
    full: true,
    observations: Array.from({ length: MAX_OBSERVATIONS_PER_REPORT }, (_, i) => observation(i)),
  });
  const validPeak = await flood(leader.control, leader.child.pid, SECONDS, (i) => (i % 10 === 0 ? hello : report));
  const validSlowest = ping.slowest;

  // 3. Over the caps: a million observations (40 MB, past the socket's bound) and an oversized write request.
  const huge = pack({
    type: 'presence',
    workerId: 'w-hostile',
    full: true,
    observations: Array.from({ length: 1_000_000 }, (_, i) => observation(i)),
  });
  const bigPut = pack({
    type: 'put',
    reqId: 1,
    input: { service: 's', host: 'h', port: 1, protocol: 'http' },
    pad: 'x'.repeat(MiB),
  });
  await flood(leader.control, leader.child.pid, 1, (i) => (i % 2 === 0 ? huge : bigPut));

  assert.ok(leader.child.alive(), `the leader died: ${leader.child.stderrTail()}`);
  const metrics = await ping.metrics();
  const after = rssMiB(leader.child.pid);
  t.diagnostic(
    `leader RSS ${baseline.toFixed(0)} MiB at start; peak ${garbagePeak.toFixed(0)} MiB during ${SECONDS} s of garbage ` +
      `(slowest ping ${garbageSlowest} ms), ${validPeak.toFixed(0)} MiB during ${SECONDS} s of max-size valid frames ` +
      `(slowest ping ${validSlowest} ms), ${after.toFixed(0)} MiB at the end; ` +
      `dropped: malformed ${dropped(metrics, 'malformed')}, invalid ${dropped(metrics, 'invalid')}, oversized ${dropped(metrics, 'oversized')}`,
  );
  assert.ok(garbagePeak - baseline < 400, `garbage grew the leader by ${(garbagePeak - baseline).toFixed(0)} MiB`);
  assert.ok(validPeak - baseline < 600, `valid frames grew the leader by ${(validPeak - baseline).toFixed(0)} MiB`);
  assert.ok(garbageSlowest < 2000, `a ping waited ${garbageSlowest} ms during the garbage flood`);
  assert.ok(validSlowest < 2000, `a ping waited ${validSlowest} ms during the max-size frames`);
  assert.ok(dropped(metrics, 'malformed') > 0, 'garbage is counted');
  assert.ok(dropped(metrics, 'oversized') > 0, 'an oversized request is counted');
  assert.ok(ping.answered > 0);
});

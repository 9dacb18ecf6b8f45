/**
 * ZeroMQ fuzzing (issue 12): random and mutated frames on every socket that takes input from outside — the
 * leader's control ROUTER (msgpack `ToLeader` messages) and a gateway's feed snapshot ROUTER (`["snapshot",
 * service]`). Mutations start from valid messages drawn from the very TypeBox schemas the decoders check.
 * Invariants, per case: the socket still answers (a ping, a snapshot request) right after; a frame that is not a
 * valid message is counted in `switchboard_frames_dropped_total` and changes nothing (the leader's revision); and
 * after the run the heap is within a stated bound of before.
 *
 * FUZZ_RUNS scales the cases (1000 = the CI size); FUZZ_SEED/FUZZ_PATH replay a failure (see arbitraries.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Dealer } from 'zeromq';
import { pack, toLeader, ToLeader, unpack, type Metrics } from '../../src/bridge/index.ts';
import { startCluster, type Cluster } from '../../harness/cluster.ts';
import { waitFor } from '../../harness/wait.ts';
import { fuzzParameters, fuzzRuns, heapMiB, hostileValue, mutated, valid } from './arbitraries.ts';

/** Cases per run at FUZZ_RUNS=1000 (the CI size). */
const LEADER_CASES = 500;
const SNAPSHOT_CASES = 400;
/** An answer to a ping or snapshot request must come within this (the leader shares the test's event loop). */
const ANSWER_MS = 2000;
/** Frames stay under the leader socket's cap (12 MiB): a bigger one costs the sender its connection in libzmq. */
const MAX_FRAME = 4 * 1024 * 1024;

/** Messages that may change the registry when valid; every other valid message is a read. */
// `batch` carries writes (put, delete, ttl, maintenance) of a gateway's turn; its answer is a `batch.reply`.
const WRITES = new Set(['put', 'delete', 'ttl', 'maintenance', 'batch', 'guard.release', 'worker.hello', 'presence']);

/** `switchboard_frames_dropped_total` of one socket, every reason summed (read from the registry: no rendering). */
async function dropped(metrics: Metrics, socket: string): Promise<number> {
  const metric = metrics.registry.getSingleMetric('switchboard_frames_dropped_total');
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => v.labels.socket === socket).reduce((n, v) => n + v.value, 0);
}

/** msgpack values JSON has not: binary, dates, NaN, big integers, maps with non-string keys, undefined. */
const msgpackOnly: fc.Arbitrary<unknown> = fc.constantFrom(
  Buffer.from([1, 2, 3]),
  new Date(0),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2n ** 64n - 1n,
  -(2n ** 63n),
  undefined,
  new Map<unknown, unknown>([
    [1, 'a'],
    [null, 'b'],
  ]),
  new Set([1, 2]),
);

interface FrameCase {
  frames: Buffer[];
  how: string;
}

function clip(frames: Buffer[]): string {
  return frames.map((f) => `${f.length}B:${f.subarray(0, 80).toString('hex')}`).join(' | ');
}

function asCase(frames: Buffer[], how: string): FrameCase {
  const c = { frames, how };
  return Object.assign(c, { [fc.toStringMethod]: () => `${how}: ${clip(frames)}` });
}

/** Frames for the leader's ROUTER, as a DEALER sends them (the ROUTER adds the routing frame). */
function leaderFrames(): fc.Arbitrary<FrameCase> {
  // TypeBox schemas are JSON Schema: the same generator as the REST fuzzer's.
  const seed = valid(ToLeader);
  const packed = (how: string) => (v: unknown) => {
    try {
      return asCase([pack(v)], how);
    } catch {
      return asCase([Buffer.from(String(v))], `${how} (unpackable)`);
    }
  };
  return fc.oneof(
    { weight: 3, arbitrary: seed.map(packed('valid')) },
    { weight: 6, arbitrary: mutated(seed).map((m) => packed(m.mutation)(m.value)) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(seed, fc.constantFrom('type', 'reqId', 'workerId', 'input', 'observations', 'id'), msgpackOnly)
        .map(([v, key, odd]) => packed(`msgpack-only ${key}`)({ ...(v as object), [key]: odd })),
    },
    {
      weight: 1,
      // Huge arrays: past the schema's maxItems, or just many items in a field that takes few.
      arbitrary: fc
        .tuple(seed, fc.constantFrom(10_001, 50_001, 200_000), fc.constantFrom('observations', 'ids', 'tasks', 'x'))
        .map(([v, n, key]) => packed(`huge ${key}`)({ ...(v as object), [key]: new Array<number>(n).fill(7) })),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(seed, fc.nat(), fc.uint8Array({ maxLength: 16 })).map(([v, cut, tail]) => {
        const bytes = pack(v);
        return cut % 2 === 0
          ? asCase([bytes.subarray(0, cut % bytes.length)], 'truncated')
          : asCase([Buffer.concat([bytes, tail])], 'trailing bytes');
      }),
    },
    {
      weight: 2,
      arbitrary: fc
        .oneof(
          fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
          fc.constantFrom(0, 1, 1024, 300_000).map((n) => randomBytesOf(n)),
          fc.constantFrom(
            Buffer.from([0xc1]),
            Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]),
            Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]),
            Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff]),
            Buffer.from([0xc7, 0xff, 0x01]),
            Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]),
          ),
        )
        .map((b) => asCase([b], 'bytes')),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          seed,
          fc.array(
            fc.oneof(
              hostileValue.map((v) => safePack(v)),
              fc.constant(Buffer.alloc(0)),
            ),
            { maxLength: 3 },
          ),
        )
        .map(([v, extra]) => asCase([pack(v), ...extra], 'extra frames')),
    },
    { weight: 1, arbitrary: fc.constant(asCase([Buffer.alloc(0)], 'empty frame')) },
  );
}

/** Random bytes from a fixed pool (crypto per case would be the bulk of a run); sliced so a seed replays. */
const RANDOM = randomBytes(300_000);
function randomBytesOf(n: number): Buffer {
  return RANDOM.subarray(0, n);
}

function safePack(v: unknown): Buffer {
  try {
    return pack(v);
  } catch {
    return Buffer.from('x');
  }
}

/** A DEALER with one receive loop: replies go to a list the test waits on. */
function client(endpoint: string) {
  const dealer = new Dealer({ linger: 0, maxMessageSize: 64 * 1024 * 1024, sendTimeout: ANSWER_MS });
  dealer.connect(endpoint);
  const replies: Buffer[][] = [];
  const loop = (async () => {
    try {
      for await (const frames of dealer) replies.push(frames);
    } catch {
      // closed
    }
  })();
  return {
    dealer,
    replies,
    async close() {
      dealer.close();
      await loop;
    },
  };
}

/** Moves the reqIds of the replies received so far into `answered`. */
function drain(c: ReturnType<typeof client>, answered: Set<number>): void {
  while (c.replies.length > 0) {
    const reply = unpack(c.replies.shift()![0]) as { reqId?: unknown };
    if (typeof reply.reqId === 'number') answered.add(reply.reqId);
  }
}

/** Sends a ping on `c` and waits for its pong; every reply's reqId lands in `answered`. */
async function pingThrough(c: ReturnType<typeof client>, reqId: number, answered: Set<number>): Promise<void> {
  await c.dealer.send(pack({ type: 'ping', reqId }));
  await waitFor(() => (drain(c, answered), answered.has(reqId)), {
    what: `pong ${reqId}`,
    timeoutMs: ANSWER_MS,
    intervalMs: 1,
  });
}

test('fuzz: the leader ROUTER — answers after every frame, drops and counts what is not a message, no state change', async (t) => {
  const c: Cluster = await startCluster({ workers: 0 });
  t.after(() => c.close());
  // A provider, so that valid-looking hostile messages have something to aim at.
  const put = await c.gateway.app.inject({
    method: 'PUT',
    url: '/v1/providers/p1',
    payload: { service: 'billing', host: '10.0.0.1', port: 80, protocol: 'http' },
  });
  assert.equal(put.statusCode, 201);
  const fuzz = client(c.leader.control);
  t.after(() => fuzz.close());
  const arb = leaderFrames();
  fc.sample(arb, { seed: 1, numRuns: 1 });
  let reqId = 1_000_000;
  const answered = new Set<number>();
  const counts = { valid: 0, dropped: 0, writes: 0 };
  const heapBefore = heapMiB();
  const started = Date.now();
  await fc.assert(
    fc.asyncProperty(arb, async (one) => {
      if (one.frames.some((f) => f.length > MAX_FRAME)) return;
      const message = one.frames.length === 1 ? decodeOrUndefined(one.frames[0]) : undefined;
      const isValid = message !== undefined && toLeader.Check(message);
      const type = isValid ? (message as { type: string }).type : undefined;
      const revBefore = c.leader.status().rev;
      const droppedBefore = await dropped(c.leader.metrics, 'leader-router');
      // A reqId answered before (fuzzed ones repeat) must not count as this message's answer.
      // Worker messages carry no reqId in their schema (an extra one is ignored) and get no answer by it.
      const own =
        // A batch is answered per inner request (batch.reply), never under a reqId of its own.
        type !== undefined && !type.startsWith('worker.') && type !== 'presence' && type !== 'batch'
          ? (message as { reqId: number }).reqId
          : undefined;
      if (own !== undefined) answered.delete(own);
      await fuzz.dealer.send(one.frames);
      await pingThrough(fuzz, ++reqId, answered);
      if (!isValid) {
        counts.dropped++;
        assert.ok(
          (await dropped(c.leader.metrics, 'leader-router')) > droppedBefore,
          `not counted as dropped: ${one.how}: ${clip(one.frames)}`,
        );
      } else counts.valid++;
      if (type !== undefined && WRITES.has(type)) {
        counts.writes++;
        // Let what it started settle before the next case measures: a request's answer comes once it is durable;
        // a worker's message has none, so the revision must hold across a ping.
        if (own !== undefined)
          await waitFor(() => (drain(fuzz, answered), answered.has(own)), {
            what: `the answer to ${type} ${clip(one.frames)}`,
            timeoutMs: ANSWER_MS,
            intervalMs: 1,
          });
        else
          await waitFor(
            async () => {
              const rev = c.leader.status().rev;
              await pingThrough(fuzz, ++reqId, answered);
              return c.leader.status().rev === rev;
            },
            { what: 'revision steady', intervalMs: 1 },
          );
      } else {
        const events = c.leader.history(revBefore) ?? [];
        assert.equal(
          c.leader.status().rev,
          revBefore,
          `the revision moved: ${one.how} (${type}): ${clip(one.frames)}; events ${JSON.stringify(events).slice(0, 1500)}`,
        );
      }
    }),
    fuzzParameters(LEADER_CASES),
  );
  const heapAfter = heapMiB();
  t.diagnostic(
    `${fuzzRuns(LEADER_CASES)} cases in ${Date.now() - started} ms: ${counts.valid} valid (${counts.writes} writes), ` +
      `${counts.dropped} dropped; heap ${heapBefore.toFixed(1)} → ${heapAfter.toFixed(1)} MiB; rev ${c.leader.status().rev}`,
  );
  assert.ok(counts.valid > 0 && counts.dropped > 0, 'both valid and invalid messages were tried');
  assert.ok(heapAfter - heapBefore < 64, `heap grew by ${(heapAfter - heapBefore).toFixed(1)} MiB`);
  // The gateway, whose own link to the leader shared the ROUTER with the fuzzer, is still in sync.
  await waitFor(async () => (await c.gateway.app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200, {
    what: 'gateway ready',
  });
});

function decodeOrUndefined(frame: Buffer): unknown {
  try {
    return unpack(frame);
  } catch {
    return undefined;
  }
}

/** Frames for the snapshot ROUTER: `["snapshot", service]`, REQ's empty delimiter first, or anything else. */
function snapshotFrames(): fc.Arbitrary<FrameCase> {
  const service = fc.oneof(
    fc.constantFrom('', 'billing', 'auth', 'a'.repeat(63)),
    fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,62}$/),
  );
  const str = (s: string) => Buffer.from(s);
  const frame = fc.oneof(
    fc.constantFrom('snapshot', 'SNAPSHOT', 'snapshot\u0000', '', 'a'.repeat(1000)).map(str),
    fc.string({ unit: 'binary', maxLength: 80 }).map(str),
    fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)),
    hostileValue.map(safePack),
  );
  // Under the socket's maxMessageSize (4096): a bigger message costs the sender its connection inside libzmq,
  // and a request sent while it reconnects is lost (clients retry on their receive timeout).
  const small = (c: FrameCase) => c.frames.reduce((n, f) => n + f.length, 0) <= 4096;
  return fc
    .oneof(
      { weight: 3, arbitrary: service.map((s) => asCase([str('snapshot'), str(s)], 'valid')) },
      { weight: 1, arbitrary: service.map((s) => asCase([Buffer.alloc(0), str('snapshot'), str(s)], 'valid (REQ)')) },
      { weight: 4, arbitrary: fc.array(frame, { minLength: 1, maxLength: 4 }).map((f) => asCase(f, 'random')) },
      { weight: 2, arbitrary: fc.tuple(frame).map(([f]) => asCase([str('snapshot'), f], 'bad service')) },
    )
    .filter(small);
}

test('fuzz: the gateway snapshot ROUTER — valid requests answered, anything else dropped and counted', async (t) => {
  const c: Cluster = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const endpoint = c.gateway.feed.snapshot;
  assert.ok(endpoint, 'the feed snapshot endpoint is on');
  const fuzz = client(endpoint);
  t.after(() => fuzz.close());
  const counts = { answered: 0, dropped: 0 };
  const valid = (frames: Buffer[]) => {
    const rest = frames.length === 3 && frames[0].length === 0 ? frames.slice(1) : frames;
    return (
      rest.length === 2 &&
      rest[0].toString() === 'snapshot' &&
      /^(?:|[a-z0-9][a-z0-9._-]{0,62})$/.test(rest[1].toString())
    );
  };
  const ask = async () => {
    await fuzz.dealer.send(['snapshot', '']);
    await waitFor(() => fuzz.replies.length > 0, { what: 'a snapshot', timeoutMs: ANSWER_MS, intervalMs: 1 });
    const frames = fuzz.replies.shift()!;
    return unpack(frames[frames.length - 1]) as { rev: number; providers: unknown[] };
  };
  const revBefore = (await ask()).rev;
  const heapBefore = heapMiB();
  const started = Date.now();
  await fc.assert(
    fc.asyncProperty(snapshotFrames(), async (one) => {
      const before = await dropped(c.gateway.metrics, 'gateway-feed-snapshot');
      await fuzz.dealer.send(one.frames);
      if (valid(one.frames)) {
        await waitFor(() => fuzz.replies.length > 0, {
          what: `an answer to ${one.how}`,
          timeoutMs: ANSWER_MS,
          intervalMs: 1,
        });
        const frames = fuzz.replies.shift()!;
        const body = unpack(frames[frames.length - 1]) as { epoch: string; rev: number; providers: unknown[] };
        assert.ok(typeof body.epoch === 'string' && Array.isArray(body.providers), `${one.how}: not a snapshot`);
        counts.answered++;
      } else {
        // The endpoint answers in order: once the next good request is answered, the bad one was handled.
        const snap = await ask();
        assert.equal(fuzz.replies.length, 0, `${one.how} was answered: ${clip(one.frames)}`);
        assert.equal(snap.rev, revBefore);
        const after = await dropped(c.gateway.metrics, 'gateway-feed-snapshot');
        assert.ok(after > before, `not counted as dropped: ${one.how}: ${clip(one.frames)}`);
        counts.dropped++;
      }
    }),
    fuzzParameters(SNAPSHOT_CASES),
  );
  const heapAfter = heapMiB();
  t.diagnostic(
    `${fuzzRuns(SNAPSHOT_CASES)} cases in ${Date.now() - started} ms: ${counts.answered} answered, ${counts.dropped} dropped; ` +
      `heap ${heapBefore.toFixed(1)} → ${heapAfter.toFixed(1)} MiB`,
  );
  assert.ok(counts.answered > 0 && counts.dropped > 0);
  assert.ok(heapAfter - heapBefore < 64, `heap grew by ${(heapAfter - heapBefore).toFixed(1)} MiB`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Publisher } from 'zeromq';
import { createLogger, HEARTBEAT_TOPIC, Metrics } from '../../src/bridge/index.ts';
import { HeartbeatSockets } from '../../src/worker/heartbeat-sockets.ts';

/** Resolves with the first value `next` yields that passes `accept`, or rejects after `ms`. */
function next<T>(
  subscribe: (push: (value: T) => void) => void,
  accept: (value: T) => boolean,
  ms: number,
  what: string,
) {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    subscribe((value) => {
      if (!accept(value)) return;
      clearTimeout(timer);
      resolve(value);
    });
  });
}

function rig(endpointsPerSocket = 2) {
  const beats: Array<(id: string) => void> = [];
  const seen: string[] = [];
  const drops: Array<(endpoint: string) => void> = [];
  const metrics = new Metrics();
  /** Provider id → its registered endpoint, as the runner knows it. */
  const registered = new Map<string, string>();
  const sockets = new HeartbeatSockets({
    endpointsPerSocket,
    zmtpHeartbeatIntervalMs: 100,
    zmtpHeartbeatTimeoutMs: 300,
    log: createLogger({ level: 'silent' }),
    metrics,
    endpointOf: (id) => registered.get(id),
    onBeat: (id) => {
      seen.push(id);
      beats.forEach((f) => f(id));
    },
    onDisconnect: (endpoint) => drops.forEach((f) => f(endpoint)),
  });
  return {
    sockets,
    metrics,
    seen,
    /** Registers `ids` at `endpoint` (and returns it). */
    at: (endpoint: string, ...ids: string[]) => {
      for (const id of ids) registered.set(id, endpoint);
      return endpoint;
    },
    beat: (id: string, ms = 5000) =>
      next<string>(
        (f) => beats.push(f),
        (v) => v === id,
        ms,
        `a beat of ${id}`,
      ),
    dropped: (endpoint: string, ms = 5000) =>
      next<string>(
        (f) => drops.push(f),
        (v) => v === endpoint,
        ms,
        `disconnect of ${endpoint}`,
      ),
  };
}

/** A provider's PUB beating for `ids` every 20 ms, as HeartbeatPublisher does. */
async function provider(ids: string[], extra?: Array<[string, string]>) {
  const pub = new Publisher({ linger: 0 });
  await pub.bind('tcp://127.0.0.1:*');
  const timer = setInterval(() => {
    void (async () => {
      try {
        for (const id of ids) await pub.send([HEARTBEAT_TOPIC, id]);
        for (const frames of extra ?? []) await pub.send(frames);
      } catch {
        // closed while sending
      }
    })();
  }, 20);
  return {
    endpoint: pub.lastEndpoint!,
    close() {
      clearInterval(timer);
      pub.close();
    },
  };
}

test('beats of every id on a connected endpoint arrive; a closed provider is a disconnect of its endpoint', async (t) => {
  const { sockets, metrics, beat, dropped, at } = rig();
  t.after(() => sockets.close());
  const p = await provider(['a', 'b']);
  t.after(() => p.close());
  const beats = Promise.all([beat('a'), beat('b')]);
  sockets.connect(at(p.endpoint, 'a', 'b'));
  sockets.connect(p.endpoint); // connected already: nothing more
  assert.equal(sockets.size, 1);
  assert.equal(sockets.has(p.endpoint), true);
  await beats;
  assert.match(await metrics.render(), /switchboard_heartbeats_received_total [1-9]/);
  assert.match(await metrics.render(), /switchboard_heartbeat_endpoints 1/);
  const drop = dropped(p.endpoint);
  p.close();
  assert.equal(await drop, p.endpoint);
});

test('frames that are not heartbeats are dropped and counted, never reported as beats', async (t) => {
  const { sockets, metrics, beat, seen, at } = rig();
  t.after(() => sockets.close());
  // `heartbeat-not` matches the SUB's prefix subscription, so it reaches the pool, which must refuse it.
  const p = await provider(['ok'], [[`${HEARTBEAT_TOPIC}-not`, 'x']]);
  t.after(() => p.close());
  sockets.connect(at(p.endpoint, 'ok', 'x'));
  await beat('ok');
  const droppedAsNotHeartbeat = async (): Promise<boolean> =>
    (await metrics.render())
      .split('\n')
      .some(
        (line) =>
          line.startsWith('switchboard_frames_dropped_total{') &&
          line.includes('socket="worker-heartbeat-sub"') &&
          line.includes('reason="not-a-heartbeat"') &&
          Number(line.split(' ').at(-1)) >= 1,
      );
  await next<boolean>(
    (f) => {
      const poll = setInterval(() => void droppedAsNotHeartbeat().then(f), 20);
      t.after(() => clearInterval(poll));
    },
    (counted) => counted,
    5000,
    'a counted drop',
  );
  assert.ok(!seen.includes('x'), 'a refused frame is never a beat');
});

test('more endpoints than one socket holds: each still beats; disconnecting one stops only its beats', async (t) => {
  const { sockets, beat, dropped, at } = rig(1);
  t.after(() => sockets.close());
  const providers = await Promise.all([provider(['p1']), provider(['p2']), provider(['p3'])]);
  t.after(() => providers.forEach((p) => p.close()));
  const beats = Promise.all(['p1', 'p2', 'p3'].map((id) => beat(id)));
  providers.forEach((p, i) => sockets.connect(at(p.endpoint, `p${i + 1}`)));
  assert.equal(sockets.size, 3);
  await beats;
  sockets.disconnect(providers[0].endpoint);
  sockets.disconnect(providers[0].endpoint); // idempotent
  assert.equal(sockets.size, 2);
  assert.equal(sockets.has(providers[0].endpoint), false);
  // Closing a provider we no longer follow says nothing; one we follow still reports.
  const drop = dropped(providers[1].endpoint);
  providers[0].close();
  providers[1].close();
  assert.equal(await drop, providers[1].endpoint);
});

test("a beat counts only on the socket of its provider's registered endpoint", async (t) => {
  const { sockets, metrics, beat, seen, at } = rig(1);
  t.after(() => sockets.close());
  const a = await provider(['a', 'b']); // A also publishes B's id
  const b = await provider(['b']);
  t.after(() => a.close());
  sockets.connect(at(a.endpoint, 'a'));
  sockets.connect(at(b.endpoint, 'b'));
  await Promise.all([beat('a'), beat('b')]);
  const rejected = async (reason: string): Promise<number> =>
    Number(
      /(\d+)$/.exec(
        (await metrics.render())
          .split('\n')
          .find((l) => l.startsWith(`switchboard_heartbeats_rejected_total{reason="${reason}"}`)) ?? '0',
      )?.[1] ?? 0,
    );
  // A's copies of B's beats arrive on A's socket: refused, while B's own count.
  await next<number>(
    (f) => {
      const poll = setInterval(() => void rejected('wrong-socket').then(f), 20);
      t.after(() => clearInterval(poll));
    },
    (n) => n >= 1,
    5000,
    'a refused beat of b on a',
  );
  assert.ok(seen.includes('b'), "B's own beats count");
});

test('an endpoint libzmq refuses throws and is not kept; close is idempotent', async () => {
  const { sockets } = rig();
  assert.throws(() => sockets.connect('not-an-endpoint'));
  assert.equal(sockets.size, 0);
  assert.equal(sockets.has('not-an-endpoint'), false);
  await sockets.close();
  await sockets.close();
  sockets.connect('tcp://127.0.0.1:1'); // after close: ignored, no new socket
  assert.equal(sockets.size, 0);
});

/**
 * Switchboard's side of the benchmark: each figure measured against the CLI's own processes (leader, workers,
 * gateways, providers: `node dist/src/cli/main.js …`, see bench/lib/switchboard.ts). The clients that time
 * things run in the benchmark's process, or in helper processes where one process cannot hold the load
 * (10,000 WebSocket subscribers, 10,000 heartbeating providers). Every loop is bounded in count and in time.
 *
 * Run them all, etcd beside, with `npm run bench` (bench/run.ts).
 */
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { recorder, type LatencySummary } from './lib/hdr.ts';
import { cpuSeconds, rssMiB, spawnCli, spawnScript, UsageSampler, type Proc, type UsageSummary } from './lib/procs.ts';
import {
  call,
  EventWaiter,
  get,
  plainProvider,
  register,
  registerMany,
  sleep,
  startHeartbeatProcess,
  until,
  watchSse,
  watchWs,
  watchZmq,
  withTimeout,
  type Cluster,
  type FeedEvent,
} from './lib/switchboard.ts';

type OnProgress = (text: string) => void;

const HB_SIM = fileURLToPath(new URL('./lib/hb-sim.ts', import.meta.url));
const WS_FANOUT_CLIENT = fileURLToPath(new URL('./lib/ws-fanout-client.ts', import.meta.url));

const isUp = (id: string) => (ev: FeedEvent) => ev.provider.id === id && ev.provider.state === 'up';
const isDown = (id: string) => (ev: FeedEvent) =>
  ev.provider.id === id && (ev.change === 'down' || ev.provider.state === 'down');

// ---------------------------------------------------------------------------------------------------------
// crash and freeze detection

export interface DetectionResult {
  latency: LatencySummary;
  trials: number;
  failures: number;
  errors: string[];
}

/**
 * A provider process (`switchboard heartbeat`, beating every 250 ms) registered with the default zmq check
 * (interval 1000 ms, 3 misses) is SIGKILLed (`crash`) or SIGSTOPped (`freeze`); timed until a WebSocket
 * subscriber on the gateway receives its `down`. Trials run one at a time, each with a new provider process,
 * killed at a random point of its beat period. `service` keeps trials apart from other load on the cluster.
 */
export async function measureDetection(
  cluster: Cluster,
  kind: 'crash' | 'freeze',
  opts: { trials: number; service?: string; onProgress?: OnProgress },
): Promise<DetectionResult> {
  const service = opts.service ?? kind;
  const waiter = new EventWaiter();
  const ws = await watchWs(cluster.url, [service], waiter.onEvent);
  const rec = recorder();
  const errors: string[] = [];
  try {
    for (let i = 0; i < opts.trials; i++) {
      const id = `${service}-${process.pid}-${i}`;
      let provider: Proc | undefined;
      try {
        const hb = await startHeartbeatProcess(`provider ${id}`, [id]);
        provider = hb.proc;
        const up = waiter.expect(isUp(id));
        await register(cluster.url, id, {
          service,
          host: '127.0.0.1',
          port: 20_000 + i,
          protocol: 'rpc-server',
          check: { type: 'zmq', endpoint: hb.endpoint },
        });
        await withTimeout(up, 15_000, `${id} up`);
        await sleep(100 + Math.random() * 250);
        const down = waiter.expect(isDown(id));
        const t0 = performance.now();
        hb.proc.signal(kind === 'crash' ? 'SIGKILL' : 'SIGSTOP');
        rec.record((await withTimeout(down, 15_000, `${id} down`)) - t0);
      } catch (err) {
        errors.push((err as Error).message);
        waiter.clear();
      } finally {
        provider?.signal('SIGKILL');
        await call('DELETE', `${cluster.url}/v1/providers/${id}`).catch(() => undefined);
      }
      opts.onProgress?.(`${i + 1}/${opts.trials}`);
    }
  } finally {
    await ws.close();
  }
  return { latency: rec.summary(), trials: opts.trials, failures: errors.length, errors };
}

// ---------------------------------------------------------------------------------------------------------
// propagation

export type Transport = 'ws' | 'sse' | 'zmq';
export interface PropagationResult {
  latency: Record<Transport, LatencySummary>;
  /** Time from sending the registration to its durable acknowledgement. */
  ack: LatencySummary;
  /**
   * Where the WebSocket time goes, split at the event's `at` (the leader's clock when it staged the change, ms
   * resolution, same machine): PUT sent → staged (client → gateway → leader), and staged → received (group commit
   * and fsync, leader PUB → gateway replica → subscriber write).
   */
  split: { toLeader: LatencySummary; fromLeader: LatencySummary };
  events: number;
  failures: number;
  firstError?: string;
}

/**
 * One registration at a time (PUT, no check) → the time its event arrives on a WebSocket, an SSE stream and a
 * ZeroMQ SUB of the native feed, all three subscribed to the service, in this process (one clock). The first
 * `warmup` registrations are not recorded (JIT, and ZeroMQ's slow-joiner window).
 */
export async function measurePropagation(
  cluster: Cluster,
  opts: { events: number; warmup?: number; onProgress?: OnProgress },
): Promise<PropagationResult> {
  const service = `prop-${process.pid}`;
  const transports: Transport[] = ['ws', 'sse', 'zmq'];
  const arrived = new Map<string, Partial<Record<Transport, number>>>();
  const stagedAt = new Map<string, number>();
  const wake = new Map<string, () => void>();
  const mark = (t: Transport) => (ev: FeedEvent, at: number) => {
    const entry = arrived.get(ev.provider.id) ?? {};
    entry[t] ??= at;
    if (t === 'ws' && ev.at !== undefined) stagedAt.set(ev.provider.id, ev.at);
    arrived.set(ev.provider.id, entry);
    if (transports.every((x) => entry[x] !== undefined)) wake.get(ev.provider.id)?.();
  };
  const subs = [
    await watchWs(cluster.url, [service], mark('ws')),
    await watchSse(cluster.url, [service], mark('sse')),
    watchZmq(cluster.feedPub, [service], mark('zmq'), cluster.feedCurve),
  ];
  const recs = { ws: recorder(), sse: recorder(), zmq: recorder() };
  const ack = recorder();
  const toLeader = recorder();
  const fromLeader = recorder();
  const warmup = opts.warmup ?? 20;
  let failures = 0;
  let firstError: string | undefined;
  const deadline = Date.now() + 300_000;
  try {
    // The SUB's subscription must have reached the gateway before anything is timed.
    for (let i = 0; i < 50 && arrived.get(`warm-0`)?.zmq === undefined; i++) {
      await register(cluster.url, 'warm-0', plainProvider(service, 900_000 + i));
      await sleep(20);
    }
    for (let i = 0; i < warmup + opts.events && Date.now() < deadline; i++) {
      const id = `p-${i}`;
      const all = new Promise<void>((r) => wake.set(id, r));
      const t0 = performance.now();
      try {
        await register(cluster.url, id, plainProvider(service, i));
        const acked = performance.now();
        await withTimeout(all, 5_000, `${id} on every transport`);
        if (i >= warmup) {
          ack.record(acked - t0);
          for (const t of transports) recs[t].record(arrived.get(id)![t]! - t0);
          const staged = stagedAt.get(id);
          if (staged !== undefined) {
            // Wall clock on both sides (the leader's `at` is Date.now()); clamped: ms resolution.
            const sentWall = performance.timeOrigin + t0;
            const wsWall = performance.timeOrigin + arrived.get(id)!.ws!;
            toLeader.record(Math.max(0, staged - sentWall));
            fromLeader.record(Math.max(0, wsWall - staged));
          }
        }
      } catch (err) {
        failures++;
        const seen = arrived.get(id) ?? {};
        firstError ??= `${(err as Error).message} (arrived on: ${Object.keys(seen).join(', ') || 'none'})`;
      }
      wake.delete(id);
      arrived.delete(id);
      stagedAt.delete(id);
      if (i >= warmup) opts.onProgress?.(`${i - warmup + 1}/${opts.events}`);
    }
  } finally {
    for (const s of subs) await s.close();
  }
  return {
    latency: { ws: recs.ws.summary(), sse: recs.sse.summary(), zmq: recs.zmq.summary() },
    ack: ack.summary(),
    split: { toLeader: toLeader.summary(), fromLeader: fromLeader.summary() },
    events: recs.ws.summary().count,
    failures,
    firstError,
  };
}

// ---------------------------------------------------------------------------------------------------------
// heartbeat scale

export interface HeartbeatScaleResult {
  providers: number;
  endpoints: number;
  windowSeconds: number;
  /** Time from the first registration until every provider was `up`. */
  allUpMs: number;
  falseDowns: number;
  /**
   * Downs of those providers the leader's mass-down guard held during the window (and times it tripped), from the
   * leader's counters on the gateway's /metrics: a guard that holds downs would otherwise look like "0 false downs".
   * null when the leader's metrics did not answer.
   */
  guard: { held: number; trips: number } | null;
  usage: Record<string, UsageSummary>;
  crash: DetectionResult;
}

/** The leader's mass-down guard counters, as the gateway's /metrics forwards them; null if absent. */
async function guardCounters(url: string): Promise<{ held: number; trips: number } | null> {
  const text = (await get(`${url}/metrics`)).body;
  const value = (name: string): number | null => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  const held = value('switchboard_leader_mass_down_held_total');
  const trips = value('switchboard_leader_mass_down_trips_total');
  return held === null || trips === null ? null : { held, trips };
}

/**
 * `sims` processes each bind `socketsPerSim` PUB sockets beating for `idsPerSocket` providers once a second;
 * every provider is registered with the default zmq check and watched by the cluster's workers. Over a window
 * of `windowSeconds`: CPU and RSS of every role, `down` events of those providers (every one is false: none
 * died), and crash detection of extra providers measured meanwhile.
 */
export async function measureHeartbeatScale(
  cluster: Cluster,
  opts: {
    sims: number;
    socketsPerSim: number;
    idsPerSocket: number;
    windowSeconds: number;
    crashTrials: number;
    onProgress?: OnProgress;
  },
): Promise<HeartbeatScaleResult> {
  const service = 'hb';
  const say = opts.onProgress ?? (() => undefined);
  const sims: Proc[] = [];
  const endpoints: Array<{ endpoint: string; ids: string[] }> = [];
  for (let p = 0; p < opts.sims; p++) {
    const prefix = `hb${p}-`;
    const sim = spawnScript(`hb-sim-${p}`, HB_SIM, [
      prefix,
      String(opts.socketsPerSim),
      String(opts.idsPerSocket),
      '1000',
    ]);
    sims.push(sim);
  }
  for (let p = 0; p < opts.sims; p++) {
    await sims[p].waitForLine(/^READY$/, 60_000);
    const eps = sims[p].lines.filter((l) => l.startsWith('EP ')).map((l) => l.slice(3));
    eps.forEach((endpoint, s) =>
      endpoints.push({ endpoint, ids: Array.from({ length: opts.idsPerSocket }, (_, k) => `hb${p}-${s}-${k}`) }),
    );
  }
  const all = endpoints.flatMap((e) => e.ids.map((id) => ({ id, endpoint: e.endpoint })));
  let downs = 0;
  let windowOpen = false;
  let ups = 0;
  const waiter = new EventWaiter();
  const ws = await watchWs(cluster.url, [service, `${service}crash`], (ev, at) => {
    if (ev.service === service) {
      if (ev.change === 'down' && windowOpen) downs++;
      if (ev.change === 'up') ups++;
    } else waiter.onEvent(ev, at);
  });
  try {
    const t0 = performance.now();
    const reg = await registerMany(cluster.url, all.length, {
      prefix: '',
      id: (i) => all[i].id,
      concurrency: 64,
      body: (i) => ({
        service,
        host: '127.0.0.1',
        port: 30_000 + (i % 30_000),
        protocol: 'rpc-server',
        check: { type: 'zmq', endpoint: all[i].endpoint },
      }),
      onProgress: (d, t) => say(`registering ${d}/${t}`),
    });
    if (reg.failures) throw new Error(`heartbeat scale: ${reg.failures} registrations failed: ${reg.firstError}`);
    await until(
      async () => {
        const body = JSON.parse((await get(`${cluster.url}/v1/services`)).body) as {
          services: Array<{ name: string; up: number }>;
        };
        const up = body.services.find((s) => s.name === service)?.up ?? 0;
        say(`waiting for every provider to be up: ${up}/${all.length}`);
        return up === all.length;
      },
      'every heartbeating provider up',
      180_000,
      500,
    );
    const allUpMs = performance.now() - t0;
    await sleep(3_000); // let the registration burst settle before the window
    const pids: Record<string, number> = { leader: cluster.leader.pid, gateway: cluster.gateway.pid };
    cluster.workers.forEach((w, i) => (pids[`worker ${i + 1}`] = w.pid));
    sims.forEach((s, i) => (pids[`provider sim ${i + 1}`] = s.pid));
    const sampler = new UsageSampler(pids);
    const guardBefore = await guardCounters(cluster.url);
    windowOpen = true;
    const windowStart = performance.now();
    const windowMs = opts.windowSeconds * 1000;
    // Crash detection under load, spread over the first half of the window.
    const crashRec = recorder();
    const errors: string[] = [];
    for (let i = 0; i < opts.crashTrials; i++) {
      const id = `hbcrash-${i}`;
      let provider: Proc | undefined;
      try {
        const hb = await startHeartbeatProcess(`provider ${id}`, [id]);
        provider = hb.proc;
        const up = waiter.expect(isUp(id));
        await register(cluster.url, id, {
          service: `${service}crash`,
          host: '127.0.0.1',
          port: 40_000 + i,
          protocol: 'rpc-server',
          check: { type: 'zmq', endpoint: hb.endpoint },
        });
        await withTimeout(up, 15_000, `${id} up`);
        await sleep(100 + Math.random() * 250);
        const down = waiter.expect(isDown(id));
        const k0 = performance.now();
        hb.proc.signal('SIGKILL');
        crashRec.record((await withTimeout(down, 15_000, `${id} down`)) - k0);
      } catch (err) {
        errors.push((err as Error).message);
        waiter.clear();
      } finally {
        provider?.signal('SIGKILL');
        await call('DELETE', `${cluster.url}/v1/providers/${id}`).catch(() => undefined);
      }
      say(
        `window ${Math.round((performance.now() - windowStart) / 1000)}/${opts.windowSeconds} s, crash trials ${i + 1}/${opts.crashTrials}, false downs ${downs}`,
      );
      const gap = windowMs / 2 / opts.crashTrials - 500;
      if (gap > 0) await sleep(gap);
    }
    while (performance.now() - windowStart < windowMs) {
      await sleep(Math.min(1_000, windowMs - (performance.now() - windowStart)));
      say(
        `window ${Math.round((performance.now() - windowStart) / 1000)}/${opts.windowSeconds} s, false downs ${downs}`,
      );
    }
    windowOpen = false;
    const usage = sampler.stop();
    const guardAfter = await guardCounters(cluster.url);
    return {
      providers: all.length,
      endpoints: endpoints.length,
      windowSeconds: opts.windowSeconds,
      allUpMs,
      falseDowns: downs,
      guard:
        guardBefore && guardAfter
          ? { held: guardAfter.held - guardBefore.held, trips: guardAfter.trips - guardBefore.trips }
          : null,
      usage,
      crash: { latency: crashRec.summary(), trials: opts.crashTrials, failures: errors.length, errors },
    };
  } finally {
    await ws.close();
    for (const s of sims) await s.stop(2_000);
    void ups;
  }
}

// ---------------------------------------------------------------------------------------------------------
// fan-out

export interface FanoutResult {
  subscribers: number;
  failedToOpen: number;
  openError?: string;
  /** Per delivery: event sent (PUT issued) → one subscriber has it, over every subscriber of every event. */
  delivery: LatencySummary;
  /** Per event: sent → the last subscriber has it. */
  toAll: LatencySummary;
  missing: number;
  events: number;
  gatewayRssIdleMiB: number;
  gatewayRssPeakMiB: number;
  gatewayRssBeforeMiB: number;
  /** Gateway CPU (all gateways) over the events, per frame delivered: what one socket write costs here. */
  gatewayCpuUsPerDelivery: number;
  gateways: number;
}

/**
 * `subscribers` WebSocket subscribers of one service on the cluster's gateway, opened from `clients` helper
 * processes (from many 127.0.0.x source addresses, `perAddress` each, under the gateway's per-address cap).
 * Then `events` registrations, one at a time: the time until each subscriber, and the last one, has it.
 * Times are wall-clock (`performance.timeOrigin + now()`), comparable across processes on one machine.
 */
let fanoutRuns = 0;

export async function measureFanout(
  cluster: Cluster,
  opts: {
    subscribers: number;
    clients: number;
    events: number;
    perAddress?: number;
    /** Gateways the client processes spread over (client c uses urls[c % n]); default the cluster's one. */
    gateways?: Array<{ url: string; pid: number }>;
    onProgress?: OnProgress;
  },
): Promise<FanoutResult> {
  const say = opts.onProgress ?? (() => undefined);
  const service = 'fanout';
  const perAddress = opts.perAddress ?? 200;
  const gateways = opts.gateways ?? [{ url: cluster.url, pid: cluster.gateway.pid }];
  const before = rssMiB(cluster.gateway.pid) ?? 0;
  const gatewayCpu = (): number => gateways.reduce((sum, g) => sum + (cpuSeconds(g.pid) ?? 0), 0);
  const clients: Proc[] = [];
  let opened = 0;
  let failed = 0;
  let openError: string | undefined;
  try {
    const share = Math.ceil(opts.subscribers / opts.clients);
    for (let c = 0; c < opts.clients; c++) {
      const count = Math.min(share, opts.subscribers - c * share);
      if (count <= 0) break;
      clients.push(
        spawnScript(`ws-client-${c + 1}`, WS_FANOUT_CLIENT, [
          gateways[c % gateways.length].url,
          service,
          String(count),
          String(c * share),
          String(perAddress),
        ]),
      );
    }
    const sampler = new UsageSampler({ gateway: cluster.gateway.pid }, 500);
    const ticker = setInterval(
      () =>
        say(
          `opening ${opts.subscribers} WebSocket subscribers from ${clients.length} processes (gateway RSS ${Math.round(rssMiB(cluster.gateway.pid) ?? 0)} MiB)`,
        ),
      1_000,
    );
    try {
      for (const c of clients) {
        const m = await c.waitForLine(/^OPEN (\d+) (\d+) ?(.*)$/, 300_000);
        opened += Number(m[1]);
        failed += Number(m[2]);
        if (m[3]) openError ??= m[3];
      }
    } finally {
      clearInterval(ticker);
    }
    await sleep(2_000);
    const idle = rssMiB(cluster.gateway.pid) ?? 0;
    const delivery = recorder();
    const toAll = recorder();
    let missing = 0;
    let cpu = 0;
    for (let k = 0; k < opts.events; k++) {
      // New ids and addresses every run: a re-PUT of the same provider is no event, another id at its address a 409.
      const n = fanoutRuns * 10_000 + k;
      const tag = `fan-${n}`;
      const results = clients.map((c) => c.waitForLine(new RegExp(`^DONE ${tag} (\\d+) (.*)$`), 30_000));
      // Awaited in order below; a failure before then (the clients stopped in `finally`) must not crash the bench.
      for (const r of results) r.catch(() => undefined);
      const cpuBefore = gatewayCpu();
      const t0 = performance.timeOrigin + performance.now();
      await register(cluster.url, tag, plainProvider(service, n));
      let last = 0;
      for (const r of results) {
        const m = await r;
        const times = JSON.parse(m[2]) as Array<number | null>;
        for (const t of times) {
          if (t === null) {
            missing++;
            continue;
          }
          delivery.record(t - t0);
          last = Math.max(last, t - t0);
        }
      }
      cpu += gatewayCpu() - cpuBefore;
      toAll.record(last);
      say(`event ${k + 1}/${opts.events}: all ${opened} had it after ${Math.round(last)} ms`);
      await sleep(500);
    }
    fanoutRuns++;
    const usage = sampler.stop().gateway;
    return {
      subscribers: opened,
      failedToOpen: failed,
      openError,
      delivery: delivery.summary(),
      toAll: toAll.summary(),
      missing,
      events: opts.events,
      gatewayRssBeforeMiB: before,
      gatewayRssIdleMiB: idle,
      gatewayRssPeakMiB: usage.rssPeakMiB,
      gatewayCpuUsPerDelivery: (cpu * 1e6) / Math.max(1, delivery.summary().count),
      gateways: gateways.length,
    };
  } finally {
    for (const c of clients) await c.stop(2_000);
  }
}

// ---------------------------------------------------------------------------------------------------------
// registry size

export interface RegistrySizeResult {
  providers: number;
  services: number;
  registerPerSecond: number;
  leaderRssMiB: number;
  gatewayRssMiB: number;
  /** New gateway process spawned → its /readyz answers 200 (process start, snapshot transfer, replica load). */
  snapshot: LatencySummary;
  newGatewayRssMiB: number;
  /** RSS of a leader started on (a copy of) the store, 2 s after it printed its line: the steady state. */
  leaderRestartedRssMiB: number;
  /** Leader process start → its line printed (store loaded). */
  leaderLoadMs: number;
  failures: number;
}

/** `providers` registered (no checks, `services` services); RSS of leader and gateway; time for a new gateway to be ready. */
export async function measureRegistrySize(
  cluster: Cluster,
  opts: { providers: number; services?: number; gatewayStarts: number; onProgress?: OnProgress },
): Promise<RegistrySizeResult> {
  const say = opts.onProgress ?? (() => undefined);
  const services = opts.services ?? Math.max(1, Math.round(opts.providers / 100));
  const reg = await registerMany(cluster.url, opts.providers, {
    prefix: 'big-',
    concurrency: 64,
    body: (i) => plainProvider(`big-${i % services}`, i),
    onProgress: (d, t) => say(`registering ${d}/${t}`),
  });
  await sleep(3_000);
  const leaderRssMiB = rssMiB(cluster.leader.pid) ?? 0;
  const gatewayRssMiB = rssMiB(cluster.gateway.pid) ?? 0;
  const rec = recorder();
  let newGatewayRssMiB = 0;
  for (let i = 0; i < opts.gatewayStarts; i++) {
    say(`new gateway ${i + 1}/${opts.gatewayStarts}`);
    const t0 = performance.now();
    const g = await cluster.addGateway(`gateway-new-${i + 1}`);
    await until(async () => (await get(`${g.url}/readyz`)).status === 200, 'new gateway ready', 120_000, 5);
    rec.record(performance.now() - t0);
    const body = JSON.parse((await get(`${g.url}/v1/services`)).body) as { services: Array<{ providers: number }> };
    const total = body.services.reduce((a, s) => a + s.providers, 0);
    if (total < reg.completed) throw new Error(`new gateway has ${total} providers, expected ${reg.completed}`);
    newGatewayRssMiB = rssMiB(g.proc.pid) ?? 0;
    await g.proc.stop(3_000);
  }
  // The same registry without the garbage of the registration burst: the leader restarted on its store.
  say('leader restart on the same store');
  await cluster.leader.stop(5_000);
  const restarted = spawnCli('leader-restarted', [
    'leader',
    '--data-dir',
    cluster.dataDir,
    '--bind',
    'tcp://127.0.0.1:*',
  ]);
  const r0 = performance.now();
  await restarted.waitForLine(/^switchboard leader: control=/, 120_000);
  const leaderLoadMs = performance.now() - r0;
  await sleep(2_000);
  const leaderRestartedRssMiB = rssMiB(restarted.pid) ?? 0;
  await restarted.stop(5_000);
  return {
    leaderRestartedRssMiB,
    leaderLoadMs,
    providers: reg.completed,
    services,
    registerPerSecond: (reg.completed / reg.elapsedMs) * 1000,
    leaderRssMiB,
    gatewayRssMiB,
    snapshot: rec.summary(),
    newGatewayRssMiB,
    failures: reg.failures,
  };
}

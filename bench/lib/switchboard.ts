/**
 * Switchboard as the benchmarks run it: leader, workers and gateways as separate CLI processes on 127.0.0.1
 * (ephemeral ports, a temporary data directory), plus lean clients: a keep-alive REST client, a WebSocket
 * watcher, an SSE reader and a ZeroMQ SUB on the native feed, each timing the events it receives.
 */
import { curveClientOptions, type CurveClientKeys } from '../../src/bridge/curve.ts';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Unpackr } from 'msgpackr';
import { WebSocket } from 'ws';
import { Subscriber } from 'zeromq';
import { waitFor } from '../../harness/wait.ts';
import { spawnCli, tempDir, type Proc } from './procs.ts';

import { sleep, withTimeout } from '../../harness/time.ts';

export { sleep, withTimeout };

/** Polls `fn` until it returns something truthy, every `everyMs`, at most `timeoutMs`. */
export function until<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 30_000,
  everyMs = 20,
): Promise<NonNullable<T>> {
  return waitFor(
    async () => {
      const v = await fn();
      return v ? v : undefined;
    },
    { what, timeoutMs, intervalMs: everyMs },
  );
}

// ---------------------------------------------------------------------------------------------------------
// processes

export interface Cluster {
  leader: Proc;
  workers: Proc[];
  gateway: Proc;
  url: string;
  control: string;
  /** Native ZeroMQ feed (PUB) of the gateway. */
  feedPub: string;
  /** CURVE keys a feed subscriber needs (the feed's public key and a listed pair), when the feed is CURVE. */
  feedCurve?: CurveClientKeys;
  dataDir: string;
  /** Another gateway process on the same leader (with extra flags); resolves once it printed its URL. */
  addGateway(name: string, args?: string[]): Promise<{ proc: Proc; url: string }>;
  close(): Promise<void>;
}

/**
 * Leader (own data dir), `workers` workers and one gateway, each its own `node dist/src/cli/main.js` process.
 * Resolves when the gateway's /readyz answers 200.
 */
export async function startCluster(
  opts: {
    workers?: number;
    leaderArgs?: string[];
    workerArgs?: string[];
    gatewayArgs?: string[];
    feedCurve?: CurveClientKeys;
    nodeArgs?: Partial<Record<'leader' | 'worker' | 'gateway', string[]>>;
  } = {},
): Promise<Cluster> {
  const dir = tempDir('switchboard-bench-');
  const started: Proc[] = [];
  try {
    const leader = spawnCli(
      'leader',
      ['leader', '--data-dir', dir.path, '--bind', 'tcp://127.0.0.1:*', ...(opts.leaderArgs ?? [])],
      {},
      opts.nodeArgs?.leader,
    );
    started.push(leader);
    const [, control] = await leader.waitForLine(/^switchboard leader: control=(\S+) events=(\S+)/);
    const workers: Proc[] = [];
    for (let i = 0; i < (opts.workers ?? 1); i++) {
      const w = spawnCli(
        `worker-${i + 1}`,
        ['worker', '--leader', control, ...(opts.workerArgs ?? [])],
        {},
        opts.nodeArgs?.worker,
      );
      started.push(w);
      workers.push(w);
    }
    const gateway = spawnCli(
      'gateway',
      ['gateway', '--leader', control, '--http-port', '0', ...(opts.gatewayArgs ?? [])],
      {},
      opts.nodeArgs?.gateway,
    );
    started.push(gateway);
    for (const w of workers) await w.waitForLine(/^switchboard worker: id=(\S+)/);
    const [, url] = await gateway.waitForLine(/^switchboard gateway: url=(\S+)/);
    const [, feedPub] = await gateway.waitForLine(/^switchboard gateway feed: pub=(\S+)/);
    await until(async () => (await get(`${url}/readyz`)).status === 200, 'gateway ready');
    const extra: Proc[] = [];
    return {
      leader,
      workers,
      gateway,
      url: url,
      control: control,
      feedPub: feedPub,
      ...(opts.feedCurve ? { feedCurve: opts.feedCurve } : {}),
      dataDir: dir.path,
      async addGateway(name, args = []) {
        const proc = spawnCli(name, ['gateway', '--leader', control, '--http-port', '0', ...args]);
        extra.push(proc);
        const [, u] = await proc.waitForLine(/^switchboard gateway: url=(\S+)/);
        return { proc, url: u };
      },
      async close() {
        for (const p of [...extra, gateway, ...workers, leader]) await p.stop(3_000);
        dir.remove();
      },
    };
  } catch (err) {
    for (const p of started) p.signal('SIGKILL');
    dir.remove();
    throw err;
  }
}

/** A provider process: `switchboard heartbeat` beating (every 250 ms) for `ids`; resolves with its endpoint. */
export async function startHeartbeatProcess(name: string, ids: string[]): Promise<{ proc: Proc; endpoint: string }> {
  const proc = spawnCli(name, ['heartbeat', '--bind', 'tcp://127.0.0.1:*', ...ids]);
  const [, endpoint] = await proc.waitForLine(/^switchboard heartbeat: endpoint=(\S+)/);
  return { proc, endpoint: endpoint };
}

// ---------------------------------------------------------------------------------------------------------
// REST

export const agent = new Agent({ keepAlive: true, maxSockets: 256 });

export interface HttpAnswer {
  status: number;
  body: string;
}

/** One HTTP request over the shared keep-alive agent. */
export function call(method: string, url: string, body?: unknown, timeoutMs = 10_000): Promise<HttpAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        timeout: timeoutMs,
        headers:
          payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export const get = (url: string): Promise<HttpAnswer> => call('GET', url);

/** A provider body without a check: `up` at once, needs no worker. */
export function plainProvider(service: string, i: number): Record<string, unknown> {
  return {
    service,
    host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8000 + (i % 1000),
    protocol: 'http',
    tags: ['bench'],
    meta: { zone: 'local', version: '1.0.0' },
  };
}

/** PUT /v1/providers/:id; throws unless 200/201 (the registration is durable then). */
export async function register(url: string, id: string, body: Record<string, unknown>): Promise<void> {
  const res = await call('PUT', `${url}/v1/providers/${encodeURIComponent(id)}`, body);
  if (res.status !== 200 && res.status !== 201)
    throw new Error(`register ${id}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
}

/**
 * `count` registrations at `concurrency`, ids `${prefix}${i}`. Returns the completed count, failures and wall
 * time; `onLatency` gets each registration's latency in ms. Bounded by `timeoutMs`.
 */
export async function registerMany(
  url: string,
  count: number,
  opts: {
    concurrency?: number;
    prefix: string;
    /** The id of registration i (default `${prefix}${i}`). */
    id?: (i: number) => string;
    body: (i: number) => Record<string, unknown>;
    timeoutMs?: number;
    onLatency?: (ms: number) => void;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<{ completed: number; failures: number; elapsedMs: number; firstError?: string }> {
  const concurrency = opts.concurrency ?? 64;
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  let next = 0;
  let completed = 0;
  let failures = 0;
  let firstError: string | undefined;
  const loop = async (): Promise<void> => {
    while (next < count && Date.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      try {
        await register(url, opts.id ? opts.id(i) : `${opts.prefix}${i}`, opts.body(i));
        opts.onLatency?.(performance.now() - t0);
        completed++;
      } catch (err) {
        failures++;
        firstError ??= (err as Error).message;
      }
      if ((completed + failures) % 200 === 0) opts.onProgress?.(completed + failures, count);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { completed, failures, elapsedMs: performance.now() - t0, firstError };
}

// ---------------------------------------------------------------------------------------------------------
// subscribers: each calls `onEvent(event, receivedAt)` with `performance.now()` taken on arrival

export interface FeedEvent {
  rev: number;
  change: string;
  service: string;
  provider: { id: string; state?: string };
  /** The leader's clock (epoch ms) when it staged the change. */
  at?: number;
}
export type EventFn = (ev: FeedEvent, at: number) => void;

export interface Subscription {
  close(): Promise<void>;
}

/** WebSocket `/v1/watch?service=…`; resolves after the snapshot arrived. */
export async function watchWs(url: string, services: string[], onEvent: EventFn): Promise<Subscription> {
  const q = services.map((s) => `service=${encodeURIComponent(s)}`).join('&');
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/watch${q ? `?${q}` : ''}`);
  let snapshot!: () => void;
  const gotSnapshot = new Promise<void>((r) => (snapshot = r));
  ws.on('message', (data) => {
    const at = performance.now();
    const m = JSON.parse((data as Buffer).toString()) as FeedEvent & { type: string };
    if (m.type === 'event') onEvent(m, at);
    else if (m.type === 'snapshot') snapshot();
  });
  ws.on('error', () => undefined);
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_q, res) => reject(new Error(`WebSocket refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    }),
    10_000,
    'WebSocket open',
  );
  await withTimeout(gotSnapshot, 10_000, 'WebSocket snapshot');
  return {
    async close() {
      ws.terminate();
      await withTimeout(closed, 2_000, 'WebSocket close').catch(() => undefined);
    },
  };
}

/** SSE `/v1/events?service=…`, parsed by hand over a raw HTTP response; resolves after `hello`. */
export async function watchSse(url: string, services: string[], onEvent: EventFn): Promise<Subscription> {
  const q = services.map((s) => `service=${encodeURIComponent(s)}`).join('&');
  let hello!: () => void;
  const gotHello = new Promise<void>((r) => (hello = r));
  const req = request(`${url}/v1/events${q ? `?${q}` : ''}`, {
    agent: false,
    headers: { accept: 'text/event-stream' },
  });
  req.on('error', () => undefined);
  req.on('response', (res) => {
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (chunk: string) => {
      const at = performance.now();
      buf += chunk;
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = '';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (event === 'hello') hello();
        else if (data && event !== 'snapshot' && event !== 'overflow' && event !== 'shutdown')
          onEvent(JSON.parse(data) as FeedEvent, at);
      }
    });
    res.on('error', () => undefined);
  });
  req.end();
  await withTimeout(gotHello, 10_000, 'SSE hello');
  return {
    async close() {
      req.destroy();
    },
  };
}

/**
 * ZeroMQ SUB on the gateway's native feed, subscribed to `svc/<service>/`. PUB/SUB has a slow-joiner window:
 * the caller confirms delivery (e.g. with a warm-up registration) before timing anything.
 */
export function watchZmq(pub: string, services: string[], onEvent: EventFn, curve?: CurveClientKeys): Subscription {
  const sub = new Subscriber({ linger: 0, maxMessageSize: 1 << 20, ...curveClientOptions(curve) });
  sub.connect(pub);
  for (const s of services) sub.subscribe(`svc/${s}/`);
  const plain = new Unpackr({ useRecords: false, mapsAsObjects: true });
  const loop = (async () => {
    try {
      for await (const [, body] of sub) onEvent(plain.unpack(body) as FeedEvent, performance.now());
    } catch {
      /* closed */
    }
  })();
  return {
    async close() {
      sub.close();
      await loop;
    },
  };
}

/**
 * Turns a stream of events into promises: `expect(match)` resolves with the arrival time of the first later
 * event that matches. One subscriber serves a whole measurement.
 */
export class EventWaiter {
  #waiting: Array<{ match: (ev: FeedEvent) => boolean; resolve: (at: number) => void }> = [];
  readonly onEvent: EventFn = (ev, at) => {
    if (this.#waiting.length === 0) return;
    this.#waiting = this.#waiting.filter((w) => {
      if (!w.match(ev)) return true;
      w.resolve(at);
      return false;
    });
  };
  expect(match: (ev: FeedEvent) => boolean): Promise<number> {
    return new Promise((resolve) => this.#waiting.push({ match, resolve }));
  }
  clear(): void {
    this.#waiting = [];
  }
}

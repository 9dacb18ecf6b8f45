/**
 * REST fuzzing (issue 12): every operation of the gateway's own OpenAPI document (read from the app, so a new route
 * is fuzzed the day it lands) gets random and mutated JSON bodies, query strings and path ids through `inject()`.
 * Invariants, per case: no 5xx (a 503 only while the leader is away, and then only SB_LEADER_UNAVAILABLE or
 * SB_NOT_READY); every 4xx is JSON with a `code` from ERROR_CODES and the matching status; a refused request changes
 * nothing (the leader's revision and provider count); no key reaches Object.prototype. After the run the gateway
 * still answers and its heap is within a stated bound of before.
 *
 * FUZZ_RUNS scales the cases (1000 = the CI size); FUZZ_SEED/FUZZ_PATH replay a failure (see arbitraries.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { ERROR_CODES } from '../../src/bridge/index.ts';
import { startCluster } from '../../harness/cluster.ts';
import { waitFor } from '../../harness/wait.ts';
import { gatewayApp } from '../helpers/gateway-app.ts';
import { providerRecord } from '../helpers/provider-record.ts';
import {
  fuzzParameters,
  fuzzRuns,
  heapMiB,
  hostileString,
  mutated,
  rawJsonText,
  valid,
  type JsonSchema,
} from './arbitraries.ts';

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  schema: JsonSchema;
}
interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  body: JsonSchema | undefined;
}

/** Every operation of the app's OpenAPI document. */
function operations(app: FastifyInstance): Operation[] {
  const doc = app.swagger() as {
    paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content: object } }>>;
  };
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(methods)) {
      const content = op.requestBody?.content as Record<string, { schema: JsonSchema }> | undefined;
      ops.push({
        method: method.toUpperCase(),
        path,
        parameters: op.parameters ?? [],
        body: content?.['application/json']?.schema,
      });
    }
  return ops;
}

/**
 * Percent-encodes the UTF-8 bytes of `s` but its unreserved characters and `keep`. Unlike encodeURIComponent it
 * never throws: a lone surrogate goes as the bytes Buffer writes for it.
 */
function pct(s: string, keep = ''): string {
  let out = '';
  for (const ch of s) {
    if (/^[A-Za-z0-9._~-]$/.test(ch) || keep.includes(ch)) out += ch;
    else for (const b of Buffer.from(ch)) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Path segments that are hostile to routers and stores: separators, encodings, traversal, NUL, length. */
const hostileSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '..%2f..%2f',
    'a/b',
    'a%2Fb',
    '%00',
    'a%00b',
    '%',
    'a%zz',
    '%c0%ae',
    '%ff%fe',
    '~',
    '*',
    ':id',
    '__proto__',
    'constructor',
    'x'.repeat(129),
    'x'.repeat(5000),
    'x'.repeat(70_000),
  ),
  hostileString.map((s) => pct(s.slice(0, 2000))),
  fc.string({ unit: 'binary', maxLength: 20 }).map((s) => pct(s, '/')),
);

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/merge-patch+json',
  '',
];

interface Case {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload: string | undefined;
  what: string;
}

function caseFor(op: Operation, token: string | undefined): fc.Arbitrary<Case> {
  const pathParams = op.parameters.filter((p) => p.in === 'path');
  const queryParams = op.parameters.filter((p) => p.in === 'query');
  const segment = (p: Parameter) =>
    fc.oneof(
      { weight: 2, arbitrary: valid(p.schema).map((v) => pct(String(v))) },
      { weight: 3, arbitrary: hostileSegment },
    );
  const path = fc.tuple(...pathParams.map(segment)).map((values) => {
    let url = op.path;
    pathParams.forEach((p, i) => (url = url.replace(`{${p.name}}`, values[i])));
    return url;
  });
  // Each known query parameter: absent, valid, or hostile; plus unknown keys; or a raw query string.
  const queryValue = (p: Parameter) =>
    fc.option(
      fc.oneof(
        valid(p.schema).map((v) => (Array.isArray(v) ? v.map(String) : String(v))),
        hostileString,
      ),
      {
        nil: undefined,
      },
    );
  const query = fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .tuple(fc.tuple(...queryParams.map(queryValue)), fc.dictionary(hostileString, hostileString, { maxKeys: 2 }))
        .map(([values, extra]) => {
          const q = new URLSearchParams();
          queryParams.forEach((p, i) => {
            const v = values[i];
            if (v === undefined) return;
            for (const one of Array.isArray(v) ? v : [v]) q.append(p.name, one);
          });
          for (const [k, v] of Object.entries(extra)) q.append(k, v);
          // A blocking query must not hold the case for its default 60 s.
          if (q.has('index') || q.has('wait')) q.set('wait', '1ms');
          return q.toString();
        }),
    },
    {
      weight: 1,
      arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((s) => pct(s, '=&').replace(/wait|index/g, 'x')),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'a=1&a=2&a=3',
        '%',
        '%zz=1',
        '=',
        '&&&',
        'tag=a&tag=b&tag[]=c',
        '__proto__[x]=1',
        'constructor[prototype][x]=1',
      ),
    },
  );
  const json = op.body ?? {};
  const body: fc.Arbitrary<{ payload: string | undefined; type: string; how: string }> = fc.oneof(
    {
      weight: op.body ? 3 : 0,
      arbitrary: valid(json).map((v) => ({ payload: JSON.stringify(v), type: 'application/json', how: 'valid' })),
    },
    {
      weight: op.body ? 4 : 1,
      arbitrary: mutated(valid(json)).map((m) => ({
        payload: JSON.stringify(m.value) ?? '',
        type: 'application/json',
        how: m.mutation,
      })),
    },
    {
      weight: 2,
      arbitrary: rawJsonText(valid(json)).map((text) => ({ payload: text, type: 'application/json', how: 'raw' })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(...CONTENT_TYPES),
          fc.oneof(
            hostileString,
            valid(json).map((v) => JSON.stringify(v)),
          ),
        )
        .map(([type, payload]) => ({ payload, type, how: `as ${type || 'no type'}` })),
    },
    { weight: 1, arbitrary: fc.constant({ payload: undefined, type: '', how: 'no body' }) },
  );
  return fc.tuple(path, query, body).map(([url, q, b]) => {
    const headers: Record<string, string> = {};
    if (b.type) headers['content-type'] = b.type;
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const one: Case = {
      method: op.method,
      url: q ? `${url}?${q}` : url,
      headers,
      payload: b.payload,
      what: `${op.method} ${op.path} (${b.how})`,
    };
    // A counterexample is printed with this: long enough to reproduce by hand, short enough to read.
    return Object.assign(one, { [fc.toStringMethod]: () => describe(one) });
  });
}

function clip(text: string | undefined, n = 300): string {
  if (text === undefined) return '(none)';
  return text.length > n ? `${JSON.stringify(text.slice(0, n))}… (${text.length} chars)` : JSON.stringify(text);
}

function describe(c: Case): string {
  return `${c.what}: ${c.method} ${clip(c.url)} headers ${JSON.stringify(c.headers)} body ${clip(c.payload)}`;
}

interface Answer {
  status: number;
  type: string;
  body: string;
}

/**
 * One request through inject(). Streams (SSE) are cut once their headers arrive; anything still unanswered after
 * `timeoutMs` is a hang, reported as status 0.
 */
async function send(app: FastifyInstance, c: Case, timeoutMs = 3000): Promise<Answer> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await app.inject({
      method: c.method as 'GET',
      url: c.url,
      headers: c.headers,
      ...(c.payload !== undefined ? { payload: c.payload } : {}),
      payloadAsStream: true,
      signal: abort.signal,
    });
    const type = String(res.headers['content-type'] ?? '');
    const stream = res.stream();
    if (type.startsWith('text/event-stream')) {
      stream.destroy();
      abort.abort();
      return { status: res.statusCode, type, body: '' };
    }
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return { status: res.statusCode, type, body: Buffer.concat(chunks).toString() };
  } catch (err) {
    if (abort.signal.aborted) return { status: 0, type: '', body: `no answer within ${timeoutMs} ms` };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Cases per run at FUZZ_RUNS=1000 (the CI size): with a live leader, and with none. */
const LIVE_CASES = 600;
const AWAY_CASES = 200;

/** A refused request may take this long at most (a blocking query's wait is capped at 1 ms here). */
const SLOW_CASE_MS = 1000;

const LEADER_AWAY = new Set(['SB_LEADER_UNAVAILABLE', 'SB_NOT_READY']);
/**
 * The live cluster runs no worker (checks of fuzzed providers would only add noise), so a TTL pass for a provider
 * with a ttl check is answered 503 SB_NO_WORKER: the documented answer of a cluster without workers, not a crash.
 */
const NO_WORKER = 'SB_NO_WORKER';

/** Checks one answer against the invariants; returns what went wrong, or undefined. */
function violation(url: string, answer: Answer, leaderAway: boolean): string | undefined {
  if (answer.status === 0) return answer.body;
  // A readiness probe says 503 while the leader is away: that is its answer, a status document, not an error.
  if (leaderAway && answer.status === 503 && url.split('?')[0] === '/readyz') return undefined;
  if (answer.status >= 400) {
    let body: { code?: string; statusCode?: number };
    try {
      body = JSON.parse(answer.body) as typeof body;
    } catch {
      return `a ${answer.status} without a JSON body: ${answer.body.slice(0, 200)}`;
    }
    const spec = body.code !== undefined ? ERROR_CODES[body.code as keyof typeof ERROR_CODES] : undefined;
    if (!spec) return `a ${answer.status} with code ${body.code} (not in ERROR_CODES): ${answer.body.slice(0, 300)}`;
    if (body.statusCode !== answer.status || spec.statusCode !== answer.status)
      return `status ${answer.status}, body.statusCode ${body.statusCode}, ${body.code} is ${spec.statusCode}`;
    const degraded = answer.status === 503 && (leaderAway ? LEADER_AWAY.has(body.code!) : body.code === NO_WORKER);
    if (answer.status >= 500 && !degraded) return `a ${answer.status} ${body.code}: ${answer.body.slice(0, 300)}`;
  }
  return undefined;
}

/** Object.prototype as it was before the run: a pollution shows up as a new key. */
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort().join();
function prototypeIntact(): boolean {
  return Object.getOwnPropertyNames(Object.prototype).sort().join() === PROTO_KEYS && !('polluted' in {});
}

/**
 * Runs `runs` random cases over every operation of `app`. `state()` is the registry's state (revision and provider
 * count); it must not move on a 4xx. `token` goes in `Authorization: Bearer` on every request (for ACLs on).
 */
async function fuzzRoutes(
  app: FastifyInstance,
  /** `runs` is scaled by FUZZ_RUNS. */
  opts: { runs: number; state: () => string; leaderAway: boolean; token?: string; ready?: () => Promise<unknown> },
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const slow = new Map<string, number>();
  let previous = 'none';
  const ops = operations(app);
  assert.ok(ops.length > 20, `the OpenAPI document lists ${ops.length} operations`);
  // The Consul write catch-alls are 36 operations that all answer 405: weighted down so Switchboard's own get the cases.
  const anyCase = fc.oneof(
    ...ops.map((op) => ({ weight: op.path.endsWith('{*}') ? 1 : 8, arbitrary: caseFor(op, opts.token) })),
  );
  // Building the arbitraries draws the pattern pools (a second or two of CPU): let the leader link recover first.
  fc.sample(anyCase, { seed: 1, numRuns: 1 });
  await opts.ready?.();
  await fc.assert(
    fc.asyncProperty(anyCase, async (c) => {
      const before = opts.state();
      const t0 = performance.now();
      const answer = await send(app, c);
      const took = performance.now() - t0;
      const key = c.what.replace(/ \(.*/, '');
      slow.set(key, (slow.get(key) ?? 0) + took);
      // Gateway and leader share this event loop: a refusal that holds it this long starves every other client.
      // (Accepted writes wait for a durable commit, whose time is the disk's, not ours: not bounded here.)
      if (answer.status >= 400 && answer.status < 500)
        assert.ok(took < SLOW_CASE_MS, `${took.toFixed(0)} ms for ${describe(c)}`);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const wrong = violation(c.url, answer, opts.leaderAway);
      // A broken state shows on the next case: name the one before too.
      assert.equal(wrong, undefined, `${describe(c)}\n  (the case before: ${previous})`);
      previous = describe(c);
      if (answer.status >= 400 && answer.status < 500)
        assert.equal(opts.state(), before, `a refused request changed the registry: ${describe(c)}`);
      assert.ok(prototypeIntact(), `Object.prototype polluted by ${describe(c)}`);
    }),
    { ...fuzzParameters(opts.runs) },
  );
  if (process.env.FUZZ_PROFILE)
    console.error(
      [...slow]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([k, ms]) => `${k} ${ms.toFixed(0)}ms`),
    );
  return statuses;
}

/** The sum of a metric's samples in Prometheus text. */
function gaugeTotal(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.split(' ').at(-1));
  return total;
}

function summary(statuses: Map<number, number>): string {
  return [...statuses]
    .sort(([a], [b]) => a - b)
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');
}

test('fuzz: every route with a live leader — no 5xx, coded 4xx, refusals change nothing, memory bounded', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const app = c.gateway.app;
  const state = () => {
    const s = c.leader.status();
    return `${s.rev}/${s.providers}`;
  };
  // In sync and heard from the leader just now (a ready flag alone may be about to lapse after a busy moment).
  const ready = () =>
    waitFor(
      async () => {
        const res = await app.inject({ method: 'GET', url: '/readyz' });
        const body = res.json<{ lastContactMs: number | null }>();
        return res.statusCode === 200 && body.lastContactMs !== null && body.lastContactMs < 300;
      },
      { what: 'gateway in sync with the leader' },
    );
  // Warm-up (route compilation, caches) before the heap baseline.
  await fuzzRoutes(app, { runs: 50, state, leaderAway: false, ready });
  const heapBefore = heapMiB();
  const started = Date.now();
  const statuses = await fuzzRoutes(app, { runs: LIVE_CASES, state, leaderAway: false, ready });
  const heapAfter = heapMiB();
  t.diagnostic(
    `${fuzzRuns(LIVE_CASES)} cases in ${Date.now() - started} ms; statuses ${summary(statuses)}; ` +
      `heap ${heapBefore.toFixed(1)} → ${heapAfter.toFixed(1)} MiB; leader rev ${c.leader.status().rev}, ` +
      `${c.leader.status().providers} providers`,
  );
  // Valid writes are part of the mix, so some growth is the registry itself; 64 MiB is far above it.
  assert.ok(heapAfter - heapBefore < 64, `heap grew by ${(heapAfter - heapBefore).toFixed(1)} MiB`);
  assert.ok(
    [...statuses.keys()].some((s) => s >= 200 && s < 300),
    'some cases were valid',
  );
  // Streams cut by the client and blocking queries past their wait hold nothing afterwards.
  await waitFor(
    async () => {
      const text = await c.gateway.metrics.render();
      return gaugeTotal(text, 'switchboard_watchers') === 0 && gaugeTotal(text, 'switchboard_blocking_queries') === 0;
    },
    { what: 'no watcher or blocking query left', timeoutMs: 5000 },
  );
  const health = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(health.statusCode, 200, 'the gateway still answers and is in sync');
});

test('fuzz: every route with the leader away — a 503 only as SB_LEADER_UNAVAILABLE or SB_NOT_READY', async (t) => {
  const g = await gatewayApp({
    snapshot: { providers: [providerRecord('p1', 'billing', 1), providerRecord('p2', 'auth', 2)] },
  });
  t.after(() => g.close());
  const state = () => `${g.replica.epoch}/${g.replica.rev}/${g.replica.size}`;
  const before = state();
  const statuses = await fuzzRoutes(g.app, { runs: AWAY_CASES, state, leaderAway: true });
  t.diagnostic(`${fuzzRuns(AWAY_CASES)} cases; statuses ${summary(statuses)}`);
  assert.equal(state(), before, 'nothing reaches the replica without a leader');
});

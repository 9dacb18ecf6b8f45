/**
 * What security costs (issue 12), each measured as the same cluster with the feature off and on, in alternating
 * rounds so a change in the machine's load hits both modes alike (medians reported):
 *   - ACLs: lookups of a 100-provider service by `wrk` (its own process) with the bootstrap token on every request,
 *     against the same lookups with ACLs off; and the gateway's CPU per lookup;
 *   - CURVE: propagation p50 / p99 (one registration at a time, PUT sent → its event on a WebSocket and on a ZeroMQ
 *     SUB of the native feed, a CURVE SUB when the feed is CURVE), and durable registrations/s by `wrk`, with
 *     CURVE on every ZeroMQ socket (leader ROUTER and PUB, worker and gateway links, the native feed) or none.
 * Every role is its own `node dist/src/cli/main.js` process on 127.0.0.1.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, writeKeyPair, type CurveKeyPair } from '../src/bridge/curve.ts';
import type { LatencySummary } from './lib/hdr.ts';
import { cpuSeconds, tempDir } from './lib/procs.ts';
import { progress } from './lib/report.ts';
import { startCluster, until } from './lib/switchboard.ts';
import { measurePropagation } from './switchboard-figures.ts';
import { get as getLua, runWrk, SB_REGISTER } from './lib/wrk.ts';

export type Mode = 'off' | 'on';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** off, on, on, off, off, on, …: each mode goes first as often as the other. */
function* alternating(rounds: number): Generator<Mode> {
  for (let r = 0; r < rounds; r++)
    for (const m of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) yield m;
}

// ---------------------------------------------------------------------------------------------------------
// ACLs

export interface AclSample {
  lookupsPerSecond: number;
  p99Ms: number;
  cpuMsPerLookup: number;
  errors: number;
}

const BOOTSTRAP_SECRET = 'bench-acl-secret-0123456789abcdef';

async function measureAclRound(mode: Mode, seconds: number): Promise<AclSample> {
  const dir = tempDir('switchboard-bench-acl-');
  const tokenFile = join(dir.path, 'bootstrap.token');
  writeFileSync(tokenFile, BOOTSTRAP_SECRET, { mode: 0o600 });
  const auth = { authorization: `Bearer ${BOOTSTRAP_SECRET}` };
  const cluster = await startCluster({
    leaderArgs: ['--bootstrap-token-file', tokenFile],
    gatewayArgs: ['--acl', mode, '--write-rate-limit', '0'],
  });
  try {
    // With ACLs on, the gateway learns the bootstrap token from the leader shortly after it is ready.
    if (mode === 'on')
      await until(
        async () => (await fetch(`${cluster.url}/v1/acl/token/self`, { headers: auth })).status === 200,
        'the gateway accepts the bootstrap token',
        10_000,
        50,
      );
    const providers = Array.from({ length: 100 }, (_, i) => ({
      id: `acl-${i}`,
      service: 'acl-bench',
      host: `10.0.${i >> 8}.${(i & 255) + 1}`,
      port: 8000 + i,
      protocol: 'http',
    }));
    const put = await fetch(`${cluster.url}/v1/providers`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(providers),
    });
    if (put.status !== 200) throw new Error(`ACL bench: batch registration answered ${put.status}`);
    const lua = getLua('/v1/services/acl-bench', auth);
    const before = cpuSeconds(cluster.gateway.pid) ?? 0;
    const r = runWrk({ url: `${cluster.url}/`, lua, seconds });
    const cpu = (cpuSeconds(cluster.gateway.pid) ?? before) - before;
    return {
      lookupsPerSecond: r.requestsPerSecond,
      p99Ms: r.p99Ms,
      cpuMsPerLookup: (cpu * 1000) / r.requests,
      errors: r.non2xx + r.socketErrors,
    };
  } finally {
    await cluster.close();
    dir.remove();
  }
}

export async function measureAclCost(opts: { rounds: number; seconds: number }): Promise<Record<Mode, AclSample[]>> {
  const samples: Record<Mode, AclSample[]> = { off: [], on: [] };
  const p = progress('ACL cost (lookups, ACLs off / on)');
  for (const mode of alternating(opts.rounds)) {
    p.update(`ACLs ${mode}, round ${samples[mode].length + 1}/${opts.rounds}`);
    samples[mode].push(await measureAclRound(mode, opts.seconds));
  }
  const m = (mode: Mode): number => median(samples[mode].map((s) => s.lookupsPerSecond));
  p.done(`median ${Math.round(m('off'))} / ${Math.round(m('on'))} lookups/s`);
  return samples;
}

// ---------------------------------------------------------------------------------------------------------
// CURVE

export interface CurveSample {
  ws: LatencySummary;
  zmq: LatencySummary;
  registrationsPerSecond: number;
  errors: number;
}

type KeyName = 'leader' | 'worker' | 'gateway' | 'feed' | 'subscriber';

/** Key files as an operator makes them (`switchboard keygen`'s format), and the leader's allow directory. */
function makeKeys(dir: string): Record<KeyName, CurveKeyPair> & { file: (name: KeyName) => string; allow: string } {
  const file = (name: KeyName): string => join(dir, `${name}.key`);
  const names: KeyName[] = ['leader', 'worker', 'gateway', 'feed', 'subscriber'];
  const pairs = Object.fromEntries(names.map((n) => [n, generateKeyPair()])) as Record<KeyName, CurveKeyPair>;
  const allow = join(dir, 'allow');
  mkdirSync(allow);
  for (const n of names) writeKeyPair(file(n), pairs[n], n);
  for (const n of ['worker', 'gateway'] as const) copyFileSync(`${file(n)}.pub`, join(allow, `${n}.key.pub`));
  return { ...pairs, file, allow };
}

async function measureCurveRound(
  mode: Mode,
  keys: ReturnType<typeof makeKeys>,
  opts: { events: number; seconds: number },
): Promise<CurveSample> {
  const client = (name: KeyName): string[] => [
    '--curve-secret-key',
    keys.file(name),
    '--curve-server-key',
    `${keys.file('leader')}.pub`,
  ];
  const cluster = await startCluster(
    mode === 'on'
      ? {
          leaderArgs: ['--curve-secret-key', keys.file('leader'), '--curve-allow', keys.allow],
          workerArgs: client('worker'),
          gatewayArgs: [
            ...client('gateway'),
            ...['--feed-curve-secret-key', keys.file('feed'), '--feed-curve-allow', `${keys.file('subscriber')}.pub`],
          ],
          feedCurve: { ...keys.subscriber, serverKey: keys.feed.publicKey },
        }
      : {},
  );
  try {
    const prop = await measurePropagation(cluster, { events: opts.events });
    if (prop.failures > 0) throw new Error(`propagation with CURVE ${mode}: ${prop.firstError}`);
    const load = runWrk({ url: `${cluster.url}/`, lua: SB_REGISTER, seconds: opts.seconds });
    return {
      ws: prop.latency.ws,
      zmq: prop.latency.zmq,
      registrationsPerSecond: load.opsPerSecond,
      errors: load.non2xx + load.socketErrors,
    };
  } finally {
    await cluster.close();
  }
}

export async function measureCurveCost(opts: {
  rounds: number;
  events: number;
  seconds: number;
}): Promise<Record<Mode, CurveSample[]>> {
  const dir = tempDir('switchboard-bench-curve-');
  const samples: Record<Mode, CurveSample[]> = { off: [], on: [] };
  const p = progress('CURVE cost (propagation, registrations; CURVE off / on)');
  try {
    const keys = makeKeys(dir.path);
    for (const mode of alternating(opts.rounds)) {
      p.update(`CURVE ${mode}, round ${samples[mode].length + 1}/${opts.rounds}`);
      samples[mode].push(await measureCurveRound(mode, keys, opts));
    }
  } finally {
    dir.remove();
  }
  const m = (mode: Mode): number => median(samples[mode].map((s) => s.ws.p99));
  p.done(`median WebSocket propagation p99 ${m('off').toFixed(2)} / ${m('on').toFixed(2)} ms`);
  return samples;
}

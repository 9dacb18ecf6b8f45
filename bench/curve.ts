/**
 * What CURVE costs (issue 12): the same cluster with plain ZeroMQ and with CURVE everywhere (leader ROUTER and PUB,
 * worker and gateway links, the gateway's native feed), one after the other, in alternating rounds:
 *   - propagation p50 / p99: one registration at a time, PUT sent → its event on a WebSocket and on a ZeroMQ SUB of
 *     the native feed (a CURVE SUB when the feed is CURVE), in this process (one clock);
 *   - durable registrations/s: new providers PUT by `wrk` (its own process) at c=64 for 10 s.
 *
 *   npm run bench:curve -- [--events 500] [--rounds 2] [--no-build]
 *
 * Each role is its own `node dist/src/cli/main.js` process on 127.0.0.1, keys from `switchboard keygen`'s writer.
 * Prints a Markdown table (stdout); progress on stderr.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { generateKeyPair, writeKeyPair, type CurveKeyPair } from '../src/bridge/curve.ts';
import { build, killAll, tempDir } from './lib/procs.ts';
import { formatNumber, machineInfo, progress } from './lib/report.ts';
import { startCluster } from './lib/switchboard.ts';
import { measurePropagation } from './switchboard-figures.ts';
import { runWrk, SB_REGISTER } from './lib/wrk.ts';
import type { LatencySummary } from './lib/hdr.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '2' },
    'no-build': { type: 'boolean', default: false },
  },
});
const EVENTS = Number(values.events);
const ROUNDS = Number(values.rounds);

type Mode = 'off' | 'on';
interface Sample {
  ws: LatencySummary;
  zmq: LatencySummary;
  perSecond: number;
  errors: number;
}

/** Key files as an operator makes them: leader, worker, gateway, feed and a feed subscriber. */
function makeKeys(dir: string): Record<'leader' | 'worker' | 'gateway' | 'feed' | 'subscriber', CurveKeyPair> & {
  file: (name: string) => string;
} {
  const file = (name: string): string => join(dir, `${name}.key`);
  const names = ['leader', 'worker', 'gateway', 'feed', 'subscriber'] as const;
  const pairs = Object.fromEntries(names.map((n) => [n, generateKeyPair()])) as Record<
    (typeof names)[number],
    CurveKeyPair
  >;
  mkdirSync(join(dir, 'allow'));
  for (const n of names) writeKeyPair(file(n), pairs[n], n);
  // The leader's allow list as a directory of .pub files.
  for (const n of ['worker', 'gateway'] as const) copyFileSync(`${file(n)}.pub`, join(dir, 'allow', `${n}.key.pub`));
  return { ...pairs, file };
}

async function measure(mode: Mode, keysDir: string, keys: ReturnType<typeof makeKeys>): Promise<Sample> {
  const on = mode === 'on';
  const client = (name: string): string[] => [
    '--curve-secret-key',
    keys.file(name),
    '--curve-server-key',
    `${keys.file('leader')}.pub`,
  ];
  const cluster = await startCluster({
    ...(on
      ? {
          leaderArgs: ['--curve-secret-key', keys.file('leader'), '--curve-allow', join(keysDir, 'allow')],
          workerArgs: client('worker'),
          gatewayArgs: [
            ...client('gateway'),
            ...['--feed-curve-secret-key', keys.file('feed'), '--feed-curve-allow', `${keys.file('subscriber')}.pub`],
          ],
          feedCurve: { ...keys.subscriber, serverKey: keys.feed.publicKey },
        }
      : {}),
  });
  try {
    const p = progress(`propagation, CURVE ${mode}`);
    const prop = await measurePropagation(cluster, { events: EVENTS, onProgress: (s) => p.update(s) });
    p.done(`${prop.failures} failures`);
    if (prop.failures > 0) throw new Error(`propagation with CURVE ${mode}: ${prop.firstError}`);
    const w = progress(`registrations (wrk), CURVE ${mode}`);
    const load = runWrk({ url: `${cluster.url}/`, lua: SB_REGISTER, seconds: 10 });
    w.done(`${formatNumber(load.opsPerSecond)}/s`);
    return {
      ws: prop.latency.ws,
      zmq: prop.latency.zmq,
      perSecond: load.opsPerSecond,
      errors: load.non2xx + load.socketErrors,
    };
  } finally {
    await cluster.close();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  if (!values['no-build']) build();
  const dir = tempDir('switchboard-bench-curve-');
  const started = Date.now();
  const loadAtStart = loadavg()[0];
  try {
    const keys = makeKeys(dir.path);
    const samples: Record<Mode, Sample[]> = { off: [], on: [] };
    // Alternating rounds, so a change in the machine's load hits both modes alike.
    for (let r = 0; r < ROUNDS; r++)
      for (const mode of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const))
        samples[mode].push(await measure(mode, dir.path, keys));
    const f = (n: number): string => formatNumber(n);
    const row = (mode: Mode): string => {
      const s = samples[mode];
      const m = (pick: (x: Sample) => number): number => median(s.map(pick));
      return `| CURVE ${mode} | ${f(m((x) => x.ws.p50))} / ${f(m((x) => x.ws.p99))} | ${f(m((x) => x.zmq.p50))} / ${f(m((x) => x.zmq.p99))} | ${f(m((x) => x.perSecond))} | ${s.reduce((n, x) => n + x.errors, 0)} |`;
    };
    const diff = (pick: (x: Sample) => number): string =>
      f(median(samples.on.map(pick)) - median(samples.off.map(pick)));
    const info = machineInfo();
    const out = [
      `CURVE on/off, ${new Date().toISOString()}; ${info.cores} cores, load average ${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at the end; ${((Date.now() - started) / 60_000).toFixed(1)} min.`,
      `Median over ${ROUNDS} round(s) per mode of: ${EVENTS} registrations one at a time (PUT sent → event received), and wrk c=64 for 10 s.`,
      '',
      '| mode | propagation WebSocket p50 / p99 (ms) | propagation ZeroMQ feed p50 / p99 (ms) | durable registrations/s (wrk) | non-2xx |',
      '| --- | ---: | ---: | ---: | ---: |',
      row('off'),
      row('on'),
      `| CURVE on − off | ${diff((x) => x.ws.p50)} / ${diff((x) => x.ws.p99)} | ${diff((x) => x.zmq.p50)} / ${diff((x) => x.zmq.p99)} | ${diff((x) => x.perSecond)} | |`,
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await killAll();
    dir.remove();
  }
}

await main();

/**
 * CPU per durable registration, per process (issue 15): wrk (own process, c=64) registers one new provider per
 * `PUT /v1/providers/:id` against `switchboard start` (one process) and against leader, worker and gateway apart,
 * and each process's utime + stime over the window is divided by the registrations acknowledged.
 *
 *   node --import tsx bench/write-cpu.ts [--seconds 8] [--rounds 3] [--shape start,split] [--profile]
 *
 * Runs the built CLI (`npm run build` first); `BENCH_CLI=/path/to/dist/src/cli/main.js` measures another build,
 * so alternating rounds of two builds in the same minute give an A/B on a shared machine. `--profile` runs the
 * servers with `node --cpu-prof` (profiles in bench/profiles/).
 */
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatCpuPerOp } from './lib/cpu-per-op.ts';
import { CLI_DIST, ROOT } from './lib/procs.ts';
import { startCluster } from './lib/switchboard.ts';
import { startOneCommand, timed } from './throughput.ts';
import * as wrk from './lib/wrk.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '1' },
    shape: { type: 'string', default: 'start,split' },
    profile: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const shapes = new Set(values.shape.split(','));
const nodeArgs = ((): string[] => {
  if (!values.profile) return [];
  const dir = join(ROOT, 'bench/profiles');
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
})();

const unavailable = wrk.ensureWrk();
if (unavailable) throw new Error(unavailable);

function line(shape: string, r: ReturnType<typeof timed>): string {
  return `${shape}: ${Math.round(r.opsPerSecond)} registrations/s, p50/p99 ${r.p50Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)} ms, ${formatCpuPerOp(r.cpuUs, 'registration')}, load ${loadavg()[0].toFixed(1)}${r.non2xx ? `, ${r.non2xx} non-2xx` : ''}`;
}

/** Changes per store commit over the process's life (group commit's batch size), from the metrics. */
async function changesPerCommit(url: string): Promise<string> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const per =
    value('switchboard_leader_store_committed_changes_total') / value('switchboard_leader_store_commits_total');
  return `${per.toFixed(1)} changes per commit`;
}

process.stdout.write(`cli ${CLI_DIST}\n`);
for (let round = 1; round <= rounds; round++) {
  if (shapes.has('start')) {
    const sb = await startOneCommand(1, nodeArgs);
    try {
      wrk.runWrk({ url: sb.url, lua: wrk.SB_REGISTER, seconds: 2 }); // warm-up (JIT, SQLite pages)
      const r = timed(sb.url, wrk.SB_REGISTER, seconds, sb.pids);
      process.stdout.write(`round ${round} ${line('start', r)}, ${await changesPerCommit(sb.url)}\n`);
    } finally {
      await sb.close();
    }
  }
  if (shapes.has('split')) {
    const cluster = await startCluster({
      workers: 1,
      gatewayArgs: ['--write-rate-limit', '0'],
      nodeArgs: { leader: nodeArgs, gateway: nodeArgs },
    });
    try {
      const pids = (): Record<string, number[]> => ({
        leader: [cluster.leader.pid],
        gateway: [cluster.gateway.pid],
        worker: cluster.workers.map((w) => w.pid),
      });
      wrk.runWrk({ url: cluster.url, lua: wrk.SB_REGISTER, seconds: 2 });
      process.stdout.write(`round ${round} ${line('split', timed(cluster.url, wrk.SB_REGISTER, seconds, pids))}\n`);
    } finally {
      await cluster.close();
    }
  }
}
process.exit(0);

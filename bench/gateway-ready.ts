/**
 * A new gateway's start at scale, in CPU time (robust on a busy machine) and wall time: a SQLite store of N
 * providers, the CLI's leader on it, then `--rounds` gateways started one after the other, each to /readyz 200.
 * For each: the gateway's CPU seconds at its `url=` line (process start, module load, listen) and at ready, the
 * leader's CPU seconds spent meanwhile (snapshot encode + send), the wall time, and the load average.
 *
 *   node --import tsx bench/gateway-ready.ts --providers 100000 --rounds 3 [--cpu-prof DIR]
 *
 * `--cpu-prof DIR` writes a V8 CPU profile of every gateway (and of the leader) into DIR.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createLogger, type Provider } from '../src/bridge/index.ts';
import { Store } from '../src/leader/store.ts';
import { cpuSeconds, rssMiB, spawnCli, tempDir, type Proc } from './lib/procs.ts';
import { get, sleep, until } from './lib/switchboard.ts';

const BATCH = 10_000;

export interface ReadyRound {
  wallMs: number;
  /** Gateway CPU at its `url=` line (process start, modules, listen). */
  startCpuMs: number;
  /** Gateway CPU at /readyz 200. */
  readyCpuMs: number;
  /** Leader CPU from the gateway's start to its ready. */
  leaderCpuMs: number;
  gatewayRssMiB: number;
  load1: number;
}

/** A provider record as the leader stores it (the scale bench's shape). */
export function scaleRecord(i: number, services: number, now: number): Provider {
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

/** Writes `providers` records to a new SQLite store in `dir` (the leader's own commit, in batches). */
export function seedStore(dir: string, providers: number, say: (text: string) => void = () => undefined): void {
  const services = Math.max(1, Math.round(providers / 100));
  const store = new Store(dir, createLogger({ level: 'silent' }));
  const now = Date.now();
  try {
    for (let first = 0; first < providers; first += BATCH) {
      say(`writing the store ${first}/${providers}`);
      const puts: Provider[] = [];
      const revs = new Map<string, number>();
      for (let i = first; i < Math.min(providers, first + BATCH); i++) {
        const p = scaleRecord(i, services, now);
        puts.push(p);
        revs.set(p.service, p.rev);
      }
      store.commit(puts[puts.length - 1].rev, puts, [], revs);
    }
  } finally {
    store.close();
  }
}

/** Starts a gateway on `control` and times it to /readyz 200, in CPU and wall time; its RSS `settleMs` later. */
export async function gatewayReadyRound(
  name: string,
  control: string,
  leaderPid: number,
  nodeArgs: string[] = [],
  settleMs = 0,
): Promise<ReadyRound> {
  const load1 = loadavg()[0];
  const leaderCpu0 = cpuSeconds(leaderPid) ?? 0;
  const t0 = performance.now();
  const gateway: Proc = spawnCli(name, ['gateway', '--leader', control, '--http-port', '0'], {}, nodeArgs);
  try {
    const [, url] = await gateway.waitForLine(/^switchboard gateway: url=(\S+)/, 600_000);
    const startCpu = cpuSeconds(gateway.pid) ?? 0;
    await until(async () => (await get(`${url}/readyz`)).status === 200, 'gateway ready', 600_000, 5);
    const wallMs = performance.now() - t0;
    const readyCpu = cpuSeconds(gateway.pid) ?? 0;
    const leaderCpuMs = ((cpuSeconds(leaderPid) ?? 0) - leaderCpu0) * 1000;
    // RSS once the start-up garbage is collected.
    if (settleMs > 0) await sleep(settleMs);
    return {
      wallMs,
      startCpuMs: startCpu * 1000,
      readyCpuMs: readyCpu * 1000,
      leaderCpuMs,
      gatewayRssMiB: rssMiB(gateway.pid) ?? 0,
      load1,
    };
  } finally {
    // SIGINT: a profiled process writes its profile on a clean exit.
    await gateway.stop(30_000);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      providers: { type: 'string', default: '100000' },
      rounds: { type: 'string', default: '3' },
      'cpu-prof': { type: 'string' },
    },
  });
  const providers = Number(values.providers.replace(/_/g, ''));
  const rounds = Number(values.rounds);
  const profDir = values['cpu-prof'];
  const nodeArgs = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
  const say = (text: string): void => void process.stderr.write(`${text}\n`);
  const dir = tempDir('switchboard-ready-');
  let leader: Proc | undefined;
  try {
    seedStore(dir.path, providers, () => undefined);
    say(`store of ${providers} providers written`);
    leader = spawnCli('leader', ['leader', '--data-dir', dir.path, '--bind', 'tcp://127.0.0.1:*'], {}, nodeArgs);
    const [, control] = await leader.waitForLine(/^switchboard leader: control=(\S+)/, 600_000);
    say(`leader ready: ${control}`);
    for (let i = 0; i < rounds; i++) {
      const r = await gatewayReadyRound(`gateway-${i}`, control, leader.pid, nodeArgs);
      console.log(
        `round ${i + 1}: ready in ${Math.round(r.wallMs)} ms wall (load ${r.load1.toFixed(1)}); gateway CPU ${Math.round(
          r.startCpuMs,
        )} ms at url=, ${Math.round(r.readyCpuMs)} ms at ready; leader CPU ${Math.round(r.leaderCpuMs)} ms; gateway RSS ${Math.round(
          r.gatewayRssMiB,
        )} MiB`,
      );
    }
  } finally {
    await leader?.stop(30_000);
    dir.remove();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();

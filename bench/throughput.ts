/**
 * Registration and lookup throughput (issue 15), every figure by `wrk` in its own process (bench/lib/wrk.ts), beside
 * etcd with the semantics said for each row:
 * - registrations: Switchboard's durable registration (answered after the SQLite commit) against etcd's lease grant
 *   + put (a registration with liveness, as etcd clients register) and against a plain put (durable, no liveness);
 * - lookups of a 100-provider service against a 100-key prefix range, linearizable (a quorum read, etcd's default)
 *   and serializable (the member's own copy, as Switchboard's gateway answers from its replica).
 * Shapes: `switchboard start` (one process), `start --gateways 2`, and leader, worker and gateway apart.
 * Each row also gives the server's CPU time per operation: on a shared machine that moves less than the rate.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { EtcdClient, prefixRangeEnd } from './lib/etcd-client.ts';
import type { EtcdHandle } from './lib/etcd.ts';
import { cpuPerOp, formatCpuPerOp, type CpuPerOp, type PidsByName } from './lib/cpu-per-op.ts';
import { spawnCli, tempDir, type Proc } from './lib/procs.ts';
import { formatNumber, progress, type Row } from './lib/report.ts';
import { get, plainProvider, registerMany, startCluster, until } from './lib/switchboard.ts';
import * as wrk from './lib/wrk.ts';

export interface ThroughputOptions {
  etcd: EtcdHandle | null;
  seconds: number;
  registration: boolean;
  lookup: boolean;
  command: (figure: 'registration' | 'lookup') => string;
  addRow: (row: Row) => void;
  nodeArgs?: string[];
}

const load = (): string => loadavg()[0].toFixed(1);
const fmt = (n: number): string => formatNumber(n);
const ratioText = (sb: number, etcd: number | undefined): string | undefined => {
  if (!etcd || !(sb > 0)) return undefined;
  const r = sb / etcd;
  return r >= 1 ? `${r >= 10 ? fmt(Math.round(r)) : r.toFixed(1)}x more` : `${(1 / r).toFixed(1)}x fewer`;
};
const met = (ok: boolean, target: string): string => `${target} ${ok ? '✓' : '✗ missed'}`;

/** `switchboard start` as one command runs it (one process; with `gateways` > 1, cluster workers too). */
export async function startOneCommand(
  gateways: number,
  nodeArgs: string[],
): Promise<{ url: string; pids: PidsByName; close: () => Promise<void> }> {
  const dir = tempDir('switchboard-throughput-');
  const proc: Proc = spawnCli(
    `start-${gateways}`,
    [
      'start',
      ...['--data-dir', dir.path, '--bind', 'tcp://127.0.0.1:*', '--publish', 'tcp://127.0.0.1:*'],
      ...['--http-port', '0', '--zmq-pub', 'off', '--zmq-snapshot', 'off', '--gateways', String(gateways)],
      // One loopback client is one rate-limit client: its default 10,000 writes/s would cap the figure itself.
      ...['--write-rate-limit', '0', '--log-level', 'warn'],
    ],
    {},
    nodeArgs,
  );
  // Generous: on a busy shared machine forking gateway workers (each loading Fastify and ZeroMQ) takes a while.
  const [, url] = await proc.waitForLine(/^switchboard gateway: url=(\S+)/, 120_000);
  await until(async () => (await get(`${url}/readyz`)).status === 200, 'start ready');
  return {
    url,
    // The primary (leader, worker and, alone, the gateway) and its gateway workers, read when asked: a restarted
    // worker is counted too.
    pids: (): Record<string, number[]> =>
      gateways === 1 ? { start: [proc.pid] } : { primary: [proc.pid], gateways: childPids(proc.pid) },
    close: async () => {
      await proc.stop(10_000);
      dir.remove();
    },
  };
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * wrk against `url` with the server's CPU per acknowledged operation over the same window: `cpuMsPerOp` for all
 * processes, `cpuUs` per named process (µs).
 */
export function timed(
  url: string,
  lua: string,
  seconds: number,
  pids: PidsByName,
  connections = 64,
): wrk.WrkResult & { cpuMsPerOp: number; cpuUs: CpuPerOp } {
  const { result: r, us } = cpuPerOp(pids, () => wrk.runWrk({ url, lua, seconds, connections }), wrk.acknowledged);
  return { ...r, cpuMsPerOp: us.total / 1000, cpuUs: us };
}

const errorsText = (r: wrk.WrkResult): string =>
  r.non2xx || r.socketErrors ? `; ${fmt(r.non2xx)} non-2xx, ${fmt(r.socketErrors)} socket errors` : '';

export async function measureThroughput(opts: ThroughputOptions): Promise<void> {
  const unavailable = wrk.ensureWrk();
  if (unavailable) {
    opts.addRow({
      figure: 'throughput (wrk)',
      switchboard: 'n/a',
      command: opts.command('registration'),
      note: unavailable,
    });
    return;
  }
  const s = opts.seconds;
  const nodeArgs = opts.nodeArgs ?? [];
  // etcd first (the same machine state for both); its figures go beside each Switchboard row.
  const etcd: Partial<Record<'leasePut' | 'put' | 'linearizable' | 'serializable', wrk.WrkResult & { load: string }>> =
    {};
  if (opts.etcd) {
    const url = opts.etcd.clientUrl;
    const p = progress('etcd (wrk)');
    if (opts.registration) {
      p.update('lease grant + put');
      etcd.leasePut = {
        ...wrk.runWrk({ url, lua: wrk.etcdLeasePut(`/bench/wrk-lease/${process.pid}/`), seconds: s }),
        load: load(),
      };
      p.update('plain put');
      etcd.put = {
        ...wrk.runWrk({ url, lua: wrk.etcdPut(`/bench/wrk-put/${process.pid}/`), seconds: s }),
        load: load(),
      };
    }
    if (opts.lookup) {
      const prefix = `/bench/wrk-range/${process.pid}/`;
      const client = new EtcdClient(url);
      try {
        for (let i = 0; i < 100; i++)
          await client.put(`${prefix}${String(i).padStart(3, '0')}`, JSON.stringify(plainProvider('lookup', i)));
      } finally {
        client.close();
      }
      const end = prefixRangeEnd(prefix);
      p.update('range, linearizable');
      etcd.linearizable = { ...wrk.runWrk({ url, lua: wrk.etcdRange(prefix, end, false), seconds: s }), load: load() };
      p.update('range, serializable');
      etcd.serializable = { ...wrk.runWrk({ url, lua: wrk.etcdRange(prefix, end, true), seconds: s }), load: load() };
    }
    p.done(
      Object.entries(etcd)
        .map(([k, v]) => `${k} ${fmt(v.opsPerSecond)}/s`)
        .join(', '),
    );
  }
  const etcdNote = (k: keyof typeof etcd, what: string): string => {
    const e = etcd[k];
    return e
      ? `etcd ${what}: ${fmt(e.opsPerSecond)}/s, p50/p99 ${fmt(e.p50Ms)} / ${fmt(e.p99Ms)} ms, load ${e.load}${errorsText(e)}`
      : '';
  };

  for (const gateways of [1, 2]) {
    const shape = gateways === 1 ? '`switchboard start` (one process)' : '`switchboard start --gateways 2`';
    const p = progress(`switchboard ${gateways === 1 ? 'start' : 'start --gateways 2'} (wrk)`);
    p.update('starting');
    const sb = await startOneCommand(gateways, nodeArgs);
    try {
      if (opts.lookup) {
        const service = `lookup-${process.pid}`;
        await registerMany(sb.url, 100, {
          prefix: `${service}-`,
          concurrency: 20,
          body: (i) => plainProvider(service, i),
        });
        const path = `/v1/services/${service}`;
        const bytes = Buffer.byteLength((await get(`${sb.url}${path}`)).body);
        p.update('lookup');
        wrk.runWrk({ url: sb.url, lua: wrk.get(path), seconds: 2 }); // warm-up
        const r = timed(sb.url, wrk.get(path), s, sb.pids);
        const l = load();
        const lin = etcd.linearizable?.opsPerSecond;
        const ser = etcd.serializable?.opsPerSecond;
        opts.addRow({
          figure: `lookup, 100 providers, c=64 (req/s), ${shape}`,
          switchboard: Math.round(r.opsPerSecond),
          etcd: ser !== undefined && lin !== undefined ? `${fmt(ser)} ser. / ${fmt(lin)} lin.` : 'n/a',
          ratio:
            ser !== undefined
              ? `${ratioText(r.opsPerSecond, ser)} (ser.), ${ratioText(r.opsPerSecond, lin)} (lin.)`
              : undefined,
          target:
            gateways === 1
              ? met(
                  r.opsPerSecond >= 20_000 && r.p99Ms <= 10 && (ser === undefined || r.opsPerSecond >= 15 * ser),
                  '≥ 20,000, p99 ≤ 10, ≥ 15x etcd',
                )
              : undefined,
          command: opts.command('lookup'),
          note: `wrk (own process) GET ${path} (${fmt(bytes)} B JSON), ${s} s; p50/p99 ${fmt(r.p50Ms)} / ${fmt(r.p99Ms)} ms; server CPU ${fmt(r.cpuMsPerOp)} ms per lookup; load ${l}${errorsText(r)}. ${etcdNote('serializable', 'prefix range of 100 keys, serializable')}; ${etcdNote('linearizable', 'same, linearizable')}`,
        });
      }
      if (opts.registration) {
        p.update('registration');
        wrk.runWrk({ url: sb.url, lua: wrk.SB_REGISTER, seconds: 2 }); // warm-up
        const r = timed(sb.url, wrk.SB_REGISTER, s, sb.pids);
        const l = load();
        const put = etcd.put?.opsPerSecond;
        const lease = etcd.leasePut?.opsPerSecond;
        opts.addRow({
          figure: `durable registrations/s, c=64, ${shape}`,
          switchboard: Math.round(r.opsPerSecond),
          etcd: put !== undefined && lease !== undefined ? `${fmt(put)} put / ${fmt(lease)} lease+put` : 'n/a',
          ratio:
            put !== undefined
              ? `${ratioText(r.opsPerSecond, put)} (put), ${ratioText(r.opsPerSecond, lease)} (lease+put)`
              : undefined,
          target:
            gateways === 1
              ? met(
                  r.opsPerSecond >= 10_000 && (put === undefined || r.opsPerSecond >= 1.5 * put),
                  '≥ 10,000 and ≥ 1.5x etcd put',
                )
              : undefined,
          command: opts.command('registration'),
          note: `wrk (own process): PUT /v1/providers/:id, one new provider per request, answered after the SQLite commit; ${s} s; p50/p99 ${fmt(r.p50Ms)} / ${fmt(r.p99Ms)} ms; server ${formatCpuPerOp(r.cpuUs, 'registration')}; load ${l}${errorsText(r)}. ${etcdNote('put', 'plain put (durable, no liveness)')}; ${etcdNote('leasePut', 'lease grant + put (registration with liveness)')}`,
        });
        if (gateways === 1) {
          p.update('batch registration');
          const b = timed(sb.url, wrk.sbBatchRegister(100), s, sb.pids, 16);
          opts.addRow({
            figure: `durable registrations/s, batches of 100, ${shape}`,
            switchboard: Math.round(b.opsPerSecond),
            etcd: put !== undefined ? fmt(put) : 'n/a',
            ratio: ratioText(b.opsPerSecond, put),
            command: opts.command('registration'),
            note: `wrk, c=16: PUT /v1/providers with 100 new providers per request (${fmt(b.requestsPerSecond)} requests/s, p50/p99 ${fmt(b.p50Ms)} / ${fmt(b.p99Ms)} ms per batch); server ${formatCpuPerOp(b.cpuUs, 'registration')}; load ${load()}${errorsText(b)}; etcd: plain put, one key per request`,
          });
        }
      }
    } finally {
      await sb.close();
    }
    p.done(`${shape} measured`);
  }

  if (opts.registration) {
    const p = progress('switchboard 3 processes (wrk)');
    p.update('starting leader, worker, gateway');
    const cluster = await startCluster({ workers: 1, gatewayArgs: ['--write-rate-limit', '0'] });
    try {
      const pids: PidsByName = () => ({
        leader: [cluster.leader.pid],
        gateway: [cluster.gateway.pid],
        worker: cluster.workers.map((w) => w.pid),
      });
      wrk.runWrk({ url: cluster.url, lua: wrk.SB_REGISTER, seconds: 2 });
      const r = timed(cluster.url, wrk.SB_REGISTER, s, pids);
      const put = etcd.put?.opsPerSecond;
      opts.addRow({
        figure: 'durable registrations/s, c=64, leader, worker and gateway apart',
        switchboard: Math.round(r.opsPerSecond),
        etcd: put !== undefined ? `${fmt(put)} put / ${fmt(etcd.leasePut?.opsPerSecond ?? 0)} lease+put` : 'n/a',
        ratio: put !== undefined ? `${ratioText(r.opsPerSecond, put)} (put)` : undefined,
        target: met(r.opsPerSecond >= 10_000, '≥ 10,000'),
        command: opts.command('registration'),
        note: `three processes (\`switchboard leader|worker|gateway\`); wrk PUT /v1/providers/:id; p50/p99 ${fmt(r.p50Ms)} / ${fmt(r.p99Ms)} ms; ${formatCpuPerOp(r.cpuUs, 'registration')}; load ${load()}${errorsText(r)}`,
      });
      p.done(`${fmt(r.opsPerSecond)}/s`);
    } finally {
      await cluster.close();
    }
  }
}

/**
 * Leader failover time on the etcd store (issue 11): SIGKILL of the active leader (with two standbys) →
 *   (a) the first write acknowledged by the new leader (a writer PUTs through a gateway back to back), and
 *   (b) a provider crash, SIGKILLed at the same moment, published again (its `down` reaches a WebSocket subscriber).
 *
 *   npm run bench:failover -- [--kills 10] [--ttl 2,1]
 *
 * Real processes through the CLI (3 leaders `--store etcd://…`, 2 workers, 1 gateway given the leader list), a
 * private 3-member etcd, heartbeating provider processes; the killed leader is started again as a standby before
 * the next kill. Every acknowledged write is checked against the store at the end of each setting.
 *
 * Then (unless `--no-throughput`) the etcd store beside the SQLite store and beside etcd itself, one after the
 * other: durable writes/s measured by `wrk` (its own process; Debian `wrk`) at c=64 for 10 s (new providers PUT
 * through one gateway; etcd: plain puts through its JSON gateway), and propagation p50 / p99 (one PUT at a time →
 * its WebSocket event; etcd: its watch event).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { SwitchboardClient } from '../src/client/index.ts';
import { startHaCluster, type HaCluster } from '../harness/ha-cluster.ts';
import { startGatewayProcess, startLeaderProcess } from '../harness/process.ts';
import { tempDir } from '../harness/tmp.ts';
import { http } from '../harness/http.ts';
import { waitFor } from '../harness/wait.ts';
import { startEtcdCluster } from '../test/helpers/etcd-cluster.ts';
import { withTimeout } from '../harness/time.ts';
import { measureEtcdPropagation } from './etcd-figures.ts';
import { recorder, type LatencySummary } from './lib/hdr.ts';
import { plainProvider, register, watchWs } from './lib/switchboard.ts';
import * as wrk from './lib/wrk.ts';

interface Round {
  writeMs: number;
  downMs: number;
  acked: string[];
}

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '10' },
    ttl: { type: 'string', default: '2,1' },
    'no-throughput': { type: 'boolean', default: false },
  },
});
const kills = Math.max(1, Number(values.kills));
const ttls = values.ttl.split(',').map(Number);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** A writer that PUTs new providers back to back, and remembers when each request was sent and acknowledged. */
function writer(url: string, prefix: string) {
  const acks: Array<{ id: string; sentAt: number; at: number }> = [];
  let stopped = false;
  let n = 0;
  const loop = (async () => {
    while (!stopped) {
      const id = `${prefix}-${n++}`;
      const sentAt = performance.now();
      const res = await http('PUT', `${url}/v1/providers/${id}`, {
        service: 'bench-writes',
        host: '127.0.0.1',
        port: 1 + (n % 60000),
        protocol: 'http',
      }).catch(() => undefined);
      if (res?.status === 201) acks.push({ id, sentAt, at: performance.now() });
      else await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    acks,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

async function measure(ha: HaCluster, round: number): Promise<Round> {
  const url = ha.gateways[0].url;
  const client = new SwitchboardClient({ gateways: [url], lookupCacheMs: 0 });
  try {
    const id = `victim-${round}`;
    const [victim] = await ha.startProviders('bench-victims', [[id]], {
      gateway: url,
      intervalMs: 300,
      misses: 3,
      basePort: 30000 + round,
    });
    await waitFor(async () => (await http('GET', `${url}/v1/providers/${id}`)).body.state === 'up', {
      timeoutMs: 15_000,
      what: `${id} up`,
    });
    const watch = client.watch({ services: ['bench-victims'] });
    await watch.ready;
    let downAt = NaN;
    // An event, or a snapshot the subscriber was given instead (a resync), that shows the victim down.
    watch.on(() => {
      if (Number.isNaN(downAt) && watch.view.providers.get(id)?.state === 'down') downAt = performance.now();
    });
    const writes = writer(url, `w${round}`);
    await waitFor(() => writes.acks.length >= 20, { what: 'writes flowing' });
    const active = await ha.activeLeader();
    const killedAt = performance.now();
    ha.leaders[active].child?.signal('SIGKILL');
    victim.child.signal('SIGKILL');
    await waitFor(() => writes.acks.some((a) => a.sentAt > killedAt), {
      timeoutMs: 30_000,
      intervalMs: 5,
      what: 'a write acknowledged by the new leader',
    });
    await waitFor(() => !Number.isNaN(downAt), { timeoutMs: 30_000, intervalMs: 5, what: `${id} down published` });
    await writes.stop();
    const firstNew = writes.acks.find((a) => a.sentAt > killedAt)!;
    // The killed leader comes back as a standby, ready for the next round.
    await ha.leaders[active].child?.exited;
    await ha.startLeader(active);
    await ha.gatewaysReady();
    await victim.child.stop(1000);
    return { writeMs: firstNew.at - killedAt, downMs: downAt - killedAt, acked: writes.acks.map((a) => a.id) };
  } finally {
    await client.close();
  }
}

/** Requests/s and non-2xx answers of `wrk` (c=64, 10 s, its own process) running `lua` against `url`. */
function runWrk(url: string, lua: string): { perSecond: number; errors: number } {
  const r = wrk.runWrk({ url, lua, seconds: 10 });
  return { perSecond: r.requestsPerSecond, errors: r.non2xx };
}

/**
 * Propagation through one gateway: one registration at a time (PUT, no check) → its event on a WebSocket watch of
 * that service, in this process (one clock). The first 20 are not recorded.
 */
async function wsPropagation(url: string, events = 300): Promise<LatencySummary> {
  const service = `prop-${process.pid}-${Date.now()}`;
  const waiting = new Map<string, (at: number) => void>();
  const sub = await watchWs(url, [service], (ev, at) => waiting.get(ev.provider.id)?.(at));
  const rec = recorder();
  try {
    for (let i = 0; i < 20 + events; i++) {
      const id = `${service}-${i}`;
      const seen = new Promise<number>((resolve) => waiting.set(id, resolve));
      const t0 = performance.now();
      await register(url, id, plainProvider(service, i));
      const at = await withTimeout(seen, 5000, `${id} on the WebSocket`);
      waiting.delete(id);
      if (i >= 20) rec.record(at - t0);
    }
  } finally {
    await sub.close();
  }
  return rec.summary();
}

const ms = (l: LatencySummary) => `${l.p50.toFixed(1)} / ${l.p99.toFixed(1)}`;

/**
 * Each store beside etcd itself, one after the other on the same machine: durable registrations/s (wrk) and
 * propagation p50 / p99 (a PUT one at a time → its watch event).
 */
async function throughput(etcd: Awaited<ReturnType<typeof startEtcdCluster>>): Promise<string[]> {
  const dir = tempDir('switchboard-bench-failover-');
  const rows: string[] = [];
  try {
    const ha = await startHaCluster({ etcd, gateways: 1, workers: 1 });
    try {
      const url = ha.gateways[0].url;
      const r = runWrk(url, wrk.SB_REGISTER);
      const p = await wsPropagation(url);
      rows.push(
        `| Switchboard, etcd store (3 members), 3 leaders | ${r.perSecond.toFixed(0)} | ${r.errors} | ${ms(p)} |`,
      );
    } finally {
      await ha.close();
    }
    const leader = await startLeaderProcess(dir.path);
    const gateway = await startGatewayProcess(leader.control);
    try {
      const r = runWrk(gateway.url, wrk.SB_REGISTER);
      const p = await wsPropagation(gateway.url);
      rows.push(`| Switchboard, SQLite store (one leader) | ${r.perSecond.toFixed(0)} | ${r.errors} | ${ms(p)} |`);
    } finally {
      await gateway.child.stop();
      await leader.child.stop();
    }
    const member = { clientUrl: etcd.members[0].clientUrl };
    const r = runWrk(member.clientUrl, wrk.etcdPut('/bench/wrk/'));
    const p = await measureEtcdPropagation(member, { events: 300 });
    rows.push(
      `| etcd itself (3 members): plain put, watch event | ${r.perSecond.toFixed(0)} | ${r.errors} | ${ms(p.latency)} |`,
    );
  } finally {
    dir.remove();
  }
  return rows;
}

async function main(): Promise<void> {
  const etcd = await startEtcdCluster();
  const rows: string[] = [];
  let throughputRows: string[] = [];
  try {
    for (const ttl of ttls) {
      const ha = await startHaCluster({
        etcd,
        sessionTtl: ttl,
        gateways: 1,
        gatewayArgs: ['--write-timeout-ms', '1000'],
      });
      const rounds: Round[] = [];
      try {
        for (let k = 0; k < kills; k++) {
          const r = await measure(ha, k);
          rounds.push(r);
          process.stderr.write(
            `ttl ${ttl}s kill ${k + 1}/${kills}: first write ${r.writeMs.toFixed(0)} ms, down ${r.downMs.toFixed(0)} ms\n`,
          );
        }
        // No acknowledged write lost: every bench write acknowledged in any round is in the store.
        const truth = await ha.leaderSnapshot();
        const stored = new Set(truth.providers.map((p) => p.id));
        const acked = rounds.flatMap((r) => r.acked);
        const lost = acked.filter((id) => !stored.has(id));
        process.stderr.write(
          `ttl ${ttl}s: ${acked.length} writes acknowledged, ${lost.length} missing from the store\n`,
        );
        if (lost.length > 0) throw new Error(`acknowledged writes lost: ${lost.slice(0, 10).join(', ')}`);
      } finally {
        await ha.close();
      }
      const w = rounds.map((r) => r.writeMs).sort((a, b) => a - b);
      const d = rounds.map((r) => r.downMs).sort((a, b) => a - b);
      rows.push(
        `| --session-ttl ${ttl} | ${rounds.length} | ${pct(w, 50).toFixed(0)} / ${w[w.length - 1].toFixed(0)} | ` +
          `${pct(d, 50).toFixed(0)} / ${d[d.length - 1].toFixed(0)} |`,
      );
    }
    if (!values['no-throughput']) throughputRows = await throughput(etcd);
  } finally {
    await etcd.close();
  }
  const table = [
    '| setting | kills | SIGKILL → first write acknowledged, p50 / max (ms) | SIGKILL → provider crash published, p50 / max (ms) |',
    '| --- | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
  process.stdout.write(`${table}\n`);
  if (throughputRows.length > 0)
    process.stdout.write(
      [
        '',
        '| what | writes/s (wrk, c=64, 10 s) | non-2xx | propagation PUT → watch event, p50 / p99 (ms) |',
        '| --- | ---: | ---: | ---: |',
        ...throughputRows,
        '',
      ].join('\n'),
    );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`failover bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

/**
 * etcd's side of the benchmark: the same four figures we measure for Switchboard, measured on a private
 * etcd (Debian `etcd-server`, started by bench/lib/etcd.ts on 127.0.0.1).
 *
 *   node --import tsx bench/etcd-figures.ts [--quick] [--markdown]
 *
 * Each measurement is an exported function taking anything with a `clientUrl`, so the main benchmark can run
 * them against the same etcd and put etcd beside Switchboard in one table. Every loop is bounded in count and
 * in time, and every child process is killed, also on errors.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { runLoad, type LoadResult } from './lib/autocannon.ts';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { EtcdClient, prefixRangeBody, type EtcdWatchEvent } from './lib/etcd-client.ts';
import { startEtcd, etcdUnavailableReason } from './lib/etcd.ts';
import { recorder, type LatencySummary } from './lib/hdr.ts';
import { sleep, withTimeout } from '../harness/time.ts';
import { Report, progress, formatNumber, machineInfo } from './lib/report.ts';

/** What the measurements need of an etcd: its client URL (an `EtcdHandle` fits). */
export interface EtcdTarget {
  clientUrl: string;
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const LEASE_HOLDER = fileURLToPath(new URL('./lib/etcd-lease-holder.ts', import.meta.url));

/**
 * Waits for specific watch events: `expect(match)` returns a promise settled by the first later event that
 * matches. One watch serves a whole measurement, so creating a watch is not part of what is timed.
 */
class EventWaiter {
  private waiting: Array<{ match: (ev: EtcdWatchEvent) => boolean; resolve: (at: number) => void }> = [];
  onEvent = (ev: EtcdWatchEvent): void => {
    const at = performance.now();
    this.waiting = this.waiting.filter((w) => {
      if (!w.match(ev)) return true;
      w.resolve(at);
      return false;
    });
  };
  /** Promise of the `performance.now()` at which a matching event arrived. */
  expect(match: (ev: EtcdWatchEvent) => boolean): Promise<number> {
    return new Promise((resolve) => this.waiting.push({ match, resolve }));
  }
  clear(): void {
    this.waiting = [];
  }
}

// ---------------------------------------------------------------------------------------------------------
// (a) crash detection

/** Result of {@link measureEtcdCrashDetection}. */
export interface CrashDetectionResult {
  /** Time from SIGKILL of the lease holder to the DELETE seen on a watch, in ms. */
  latency: LatencySummary;
  requestedTtlSeconds: number;
  /** TTLs etcd actually granted (distinct values). etcd 3.4 raises a 1 s request to 2 s. */
  grantedTtlSeconds: number[];
  trials: number;
  /** Trials that failed (holder did not start, or no DELETE within the bound). */
  failures: number;
  errors: string[];
}

/**
 * Crash detection: a child process holds a key under a lease (TTL `ttlSeconds`, refreshed every ttl/3);
 * we SIGKILL it and time until a watch sees the key deleted, which happens when etcd expires the lease.
 * Before each kill we wait 0.5 s plus a random part of the refresh period, so the kill falls at a random
 * point between two refreshes, as a real crash would.
 */
export async function measureEtcdCrashDetection(
  etcd: EtcdTarget,
  opts: { trials?: number; ttlSeconds?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<CrashDetectionResult> {
  const trials = opts.trials ?? 20;
  const ttl = opts.ttlSeconds ?? 1;
  const prefix = `/bench/crash/${process.pid}-${Date.now()}/`;
  const client = new EtcdClient(etcd.clientUrl);
  const waiter = new EventWaiter();
  const rec = recorder();
  const granted = new Set<number>();
  const errors: string[] = [];
  const children = new Set<ChildProcess>();
  const watch = client.watch(prefix, waiter.onEvent);
  try {
    await watch.ready;
    for (let i = 0; i < trials; i++) {
      const key = `${prefix}${i}`;
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', LEASE_HOLDER, etcd.clientUrl, key, String(ttl), '120'],
        {
          cwd: REPO_ROOT,
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      children.add(child);
      child.once('exit', () => children.delete(child));
      try {
        const { grantedTtl } = await withTimeout(readyLine(child), 20_000, 'lease holder READY');
        granted.add(grantedTtl);
        await sleep(500 + Math.random() * ((ttl * 1000) / 3));
        const deleted = waiter.expect((ev) => ev.type === 'DELETE' && ev.key === key);
        const t0 = performance.now();
        child.kill('SIGKILL');
        const t1 = await withTimeout(deleted, grantedTtl * 1000 + 10_000, 'DELETE event');
        rec.record(t1 - t0);
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
        child.kill('SIGKILL');
        waiter.clear();
      }
      opts.onProgress?.(i + 1, trials);
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    watch.close();
    await client.deletePrefix(prefix).catch(() => 0);
    client.close();
  }
  return {
    latency: rec.summary(),
    requestedTtlSeconds: ttl,
    grantedTtlSeconds: [...granted].sort((a, b) => a - b),
    trials,
    failures: errors.length,
    errors,
  };
}

/** Resolve on the holder's `READY <leaseId> <ttl>` line; reject if it exits first. */
function readyLine(child: ChildProcess): Promise<{ leaseId: string; grantedTtl: number }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (c: string) => (err = (err + c).slice(-2_000)));
    child.stdout?.on('data', (c: string) => {
      out += c;
      const m = /^READY (\S+) (\d+)$/m.exec(out);
      if (m) resolve({ leaseId: m[1], grantedTtl: Number(m[2]) });
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`lease holder exited (${signal ?? code}) before READY: ${err.trim()}`)),
    );
    child.once('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------------------
// (b) propagation

/**
 * Propagation: time from issuing a put to the watch delivering its event, one put at a time (latency, not
 * throughput). The first `warmup` events (default 20) are not recorded.
 */
export async function measureEtcdPropagation(
  etcd: EtcdTarget,
  opts: {
    events?: number;
    warmup?: number;
    timeoutMs?: number;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<{ latency: LatencySummary; events: number; failures: number }> {
  const events = opts.events ?? 1_000;
  const warmup = opts.warmup ?? 20;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  const prefix = `/bench/prop/${process.pid}-${Date.now()}/`;
  const client = new EtcdClient(etcd.clientUrl);
  const waiter = new EventWaiter();
  const rec = recorder();
  let failures = 0;
  const watch = client.watch(prefix, waiter.onEvent);
  try {
    await watch.ready;
    for (let i = 0; i < warmup + events && Date.now() < deadline; i++) {
      const key = `${prefix}svc-${i % 10}`;
      const value = `{"seq":${i},"endpoint":"tcp://127.0.0.1:${20000 + (i % 10)}"}`;
      const seen = waiter.expect((ev) => ev.type === 'PUT' && ev.key === key && ev.value === value);
      const t0 = performance.now();
      try {
        await client.put(key, value);
        const t1 = await withTimeout(seen, 5_000, 'watch event');
        if (i >= warmup) rec.record(t1 - t0);
      } catch {
        failures++;
        waiter.clear();
      }
      if (i >= warmup) opts.onProgress?.(i - warmup + 1, events);
    }
  } finally {
    watch.close();
    await client.deletePrefix(prefix).catch(() => 0);
    client.close();
  }
  return { latency: rec.summary(), events: rec.summary().count, failures };
}

// ---------------------------------------------------------------------------------------------------------
// (c) registration throughput

/** Result of {@link measureEtcdRegistration}. */
export interface RegistrationResult {
  /** Completed registrations per second over the whole run. */
  perSecond: number;
  completed: number;
  failures: number;
  elapsedMs: number;
  /** Latency of one registration (lease grant + put), in ms. */
  latency: LatencySummary;
}

/**
 * Registration throughput: `count` registrations at `concurrency`, each a lease grant followed by a put of
 * the instance record attached to that lease, as a service registering itself would do (no lease sharing).
 *
 * The leases get a long TTL (default 600 s) so none expires while later measurements run on the same etcd:
 * thousands of expiries at once would load etcd (it revokes at most 1,000 leases/s). Close the etcd, or run
 * this last, rather than leaving it running past the TTL.
 */
export async function measureEtcdRegistration(
  etcd: EtcdTarget,
  opts: {
    count?: number;
    concurrency?: number;
    leaseTtlSeconds?: number;
    timeoutMs?: number;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<RegistrationResult> {
  const count = opts.count ?? 10_000;
  const concurrency = opts.concurrency ?? 64;
  const ttl = opts.leaseTtlSeconds ?? 600;
  const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
  const prefix = `/bench/reg/${process.pid}-${Date.now()}/`;
  const client = new EtcdClient(etcd.clientUrl, { maxSockets: concurrency });
  const rec = recorder();
  let next = 0;
  let completed = 0;
  let failures = 0;
  const worker = async (): Promise<void> => {
    while (next < count && Date.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      try {
        const lease = await client.grantLease(ttl);
        const record = JSON.stringify({
          service: 'bench',
          instance: `i-${i}`,
          endpoint: `tcp://127.0.0.1:${10000 + (i % 50000)}`,
          meta: { zone: 'local' },
        });
        await client.put(`${prefix}i-${i}`, record, lease.id);
        rec.record(performance.now() - t0);
        completed++;
      } catch {
        failures++;
      }
      if ((completed + failures) % 100 === 0) opts.onProgress?.(completed + failures, count);
    }
  };
  const start = performance.now();
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    client.close();
  }
  const elapsedMs = performance.now() - start;
  return { perSecond: (completed / elapsedMs) * 1000, completed, failures, elapsedMs, latency: rec.summary() };
}

// ---------------------------------------------------------------------------------------------------------
// (d) lookup

/** Result of {@link measureEtcdLookup}. */
export interface LookupResult extends LoadResult {
  /** Keys returned by one range (checked before the run). */
  keysPerAnswer: number;
}

/**
 * Lookup: `keys` keys under one prefix, read with a prefix range (`POST /v3/kv/range`, JSON body) through
 * etcd's HTTP gateway by autocannon at `concurrency` connections for `durationSeconds`.
 */
export async function measureEtcdLookup(
  etcd: EtcdTarget,
  opts: { keys?: number; concurrency?: number; durationSeconds?: number; onProgress?: (text: string) => void } = {},
): Promise<LookupResult> {
  const keys = opts.keys ?? 100;
  const concurrency = opts.concurrency ?? 64;
  const duration = opts.durationSeconds ?? 10;
  const prefix = `/bench/lookup/${process.pid}-${Date.now()}/`;
  const client = new EtcdClient(etcd.clientUrl);
  try {
    for (let i = 0; i < keys; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, keys - i) }, (_, j) =>
          client.put(
            `${prefix}svc-${String(i + j).padStart(3, '0')}`,
            JSON.stringify({
              service: 'bench',
              instance: `i-${i + j}`,
              endpoint: `tcp://127.0.0.1:${30000 + i + j}`,
              meta: { zone: 'local', version: '1.0.0' },
            }),
          ),
        ),
      );
    }
    const check = await client.range(prefix);
    if (check.count !== keys) throw new Error(`lookup setup: expected ${keys} keys, range returned ${check.count}`);

    const load = await runLoad(
      {
        url: `${etcd.clientUrl}/v3/kv/range`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: prefixRangeBody(prefix),
      },
      {
        connections: concurrency,
        durationSeconds: duration,
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      },
    );
    return { ...load, keysPerAnswer: check.count };
  } finally {
    await client.deletePrefix(prefix).catch(() => 0);
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// stand-alone run

/** Sizes of a run: the full one, or `--quick` for a smoke test. */
export function etcdFigureSizes(quick: boolean) {
  return quick
    ? { crashTrials: 3, propagationEvents: 100, registrations: 1_000, lookupSeconds: 2 }
    : { crashTrials: 20, propagationEvents: 1_000, registrations: 10_000, lookupSeconds: 10 };
}

/**
 * Measure all four figures on a private etcd and add them to `report` (etcd column only; the switchboard
 * column says "—"). Returns null, after printing "etcd not available: <reason>", when etcd cannot be had.
 */
export async function runEtcdFigures(
  report: Report,
  opts: { quick?: boolean } = {},
): Promise<{ version: string } | null> {
  const sizes = etcdFigureSizes(opts.quick ?? false);
  const cmd = `node --import tsx bench/etcd-figures.ts${opts.quick ? ' --quick' : ''}`;
  const p0 = progress('etcd');
  p0.update('starting (installs etcd-server if missing)');
  const etcd = await startEtcd();
  if (!etcd) {
    p0.done('not available');
    console.log(`etcd not available: ${etcdUnavailableReason()}`);
    return null;
  }
  p0.done(`${etcd.version} at ${etcd.clientUrl}`);
  try {
    const pa = progress('crash detection');
    const crash = await measureEtcdCrashDetection(etcd, {
      trials: sizes.crashTrials,
      onProgress: (d, t) => pa.update(`${d}/${t}`),
    });
    pa.done(
      `p50 ${formatNumber(crash.latency.p50)} ms${crash.failures ? `, ${crash.failures} failed: ${crash.errors[0]}` : ''}`,
    );
    const ttlNote = `TTL ${crash.requestedTtlSeconds} s requested, ${crash.grantedTtlSeconds.join('/')} s granted; ${crash.latency.count}/${crash.trials} trials`;
    report.addRow({
      figure: 'crash detection p50 (ms)',
      switchboard: '—',
      etcd: crash.latency.p50,
      command: cmd,
      note: ttlNote,
    });
    report.addRow({
      figure: 'crash detection p99 (ms)',
      switchboard: '—',
      etcd: crash.latency.p99,
      command: cmd,
      note: `max ${formatNumber(crash.latency.max)} ms`,
    });

    const pb = progress('propagation');
    const prop = await measureEtcdPropagation(etcd, {
      events: sizes.propagationEvents,
      onProgress: (d, t) => pb.update(`${d}/${t}`),
    });
    pb.done(`p50 ${formatNumber(prop.latency.p50)} ms`);
    const propNote = `${formatNumber(prop.events)} events, put → watch${prop.failures ? `, ${prop.failures} failed` : ''}`;
    report.addRow({
      figure: 'propagation p50 (ms)',
      switchboard: '—',
      etcd: prop.latency.p50,
      command: cmd,
      note: propNote,
    });
    report.addRow({ figure: 'propagation p99 (ms)', switchboard: '—', etcd: prop.latency.p99, command: cmd });

    const pd = progress('lookup');
    const look = await measureEtcdLookup(etcd, {
      durationSeconds: sizes.lookupSeconds,
      onProgress: (t) => pd.update(t),
    });
    pd.done(`${formatNumber(look.perSecond)} req/s`);
    const lookNote = `${look.keysPerAnswer} keys/answer, c=64, ${look.durationSeconds} s, HTTP gateway${look.errors || look.non2xx ? `, ${look.errors} errors, ${look.non2xx} non-2xx` : ''}`;
    report.addRow({ figure: 'lookup (req/s)', switchboard: '—', etcd: look.perSecond, command: cmd, note: lookNote });
    report.addRow({
      figure: 'lookup p50 / p99 (ms)',
      switchboard: '—',
      etcd: `${formatNumber(look.latency.p50)} / ${formatNumber(look.latency.p99)}`,
      command: cmd,
    });

    // Registration last: it leaves thousands of leases behind (see measureEtcdRegistration).
    const pc = progress('registration');
    const reg = await measureEtcdRegistration(etcd, {
      count: sizes.registrations,
      onProgress: (d, t) => pc.update(`${d}/${t}`),
    });
    pc.done(`${formatNumber(reg.perSecond)}/s`);
    const regNote = `${formatNumber(reg.completed)} × (lease grant + put), c=64, p50 ${formatNumber(reg.latency.p50)} ms${reg.failures ? `, ${reg.failures} failed` : ''}`;
    report.addRow({ figure: 'registrations/s', switchboard: '—', etcd: reg.perSecond, command: cmd, note: regNote });
    return { version: etcd.version };
  } finally {
    await etcd.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const report = new Report();
  // Captured before we add load ourselves; a busy machine (tests, builds) skews every figure.
  const machine = machineInfo();
  if (machine.load1 > 0.5 * machine.cores) {
    console.error(`warning: load average ${machine.load1} on ${machine.cores} cores; figures will be pessimistic`);
  }
  const res = await runEtcdFigures(report, { quick });
  if (!res) return;
  console.log(
    `\netcd ${res.version}${quick ? ' (quick run)' : ''}; ${machine.cores} cores, load average ${machine.load1} at start\n`,
  );
  report.printTable();
  if (args.includes('--markdown'))
    console.log(`\n${report.toMarkdown({ machine, versions: { etcd: res.version }, title: 'etcd figures' })}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0), // autocannon and agents may hold sockets open briefly; the run is over
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

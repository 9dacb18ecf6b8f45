/**
 * What one durable commit of the leader's store costs: `Store.commit` (one SQLite transaction, WAL,
 * synchronous=FULL, so at least one fsync per commit) timed around each call, then `load()` of everything.
 *
 *   node --import tsx bench/store-commit.ts [--small 1000] [--large 50] [--size 2000] [--store <module>]
 *
 * `small`: commits of 1 new provider each (a lone registration); `large`: commits of `size` new providers each (a
 * burst under group commit). `--store` loads another module exporting the same `Store` class (path relative to
 * the working directory), to compare bindings with the same workload. A 4 KiB write + fsync in the same directory
 * is timed first and last, so the figures can be read against the disk as it was during the run.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Store as DefaultStore } from '../src/leader/store.ts';
import { createLogger } from '../src/bridge/index.ts';
import { tempDir } from '../harness/tmp.ts';
import { providerRecord } from '../test/helpers/provider-record.ts';
import { recorder, type LatencySummary } from './lib/hdr.ts';

const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '1000' },
    large: { type: 'string', default: '50' },
    size: { type: 'string', default: '2000' },
    store: { type: 'string' },
  },
});
const Store: typeof DefaultStore = values.store
  ? ((await import(pathToFileURL(resolve(values.store)).href)) as { Store: typeof DefaultStore }).Store
  : DefaultStore;
const label = values.store ?? 'src/leader/store.ts';
const log = createLogger({ name: 'bench-store', level: 'warn' });
const dir = tempDir('switchboard-store-bench-');

function fsyncCost(n = 100): LatencySummary {
  const rec = recorder();
  const fd = openSync(join(dir.path, 'fsync-probe'), 'w');
  const block = Buffer.alloc(4096, 1);
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      writeSync(fd, block, 0, block.length, 0);
      fsyncSync(fd);
      rec.record(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
  }
  return rec.summary();
}

/** CPU time of this process (user + system), in ms: what the binding costs apart from waiting for the disk. */
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;
const fmt = (s: LatencySummary): string =>
  `mean ${s.mean.toFixed(2)} ms, p50 ${s.p50.toFixed(2)}, p99 ${s.p99.toFixed(2)}, max ${s.max.toFixed(2)}`;

const diskBefore = fsyncCost();
const load0 = loadavg()[0];
const store = new Store(dir.path, log);
let rev = store.load().rev;
try {
  const small = recorder();
  const smallStart = performance.now();
  let smallCpuMs = 0;
  for (let i = 0; i < Number(values.small); i++) {
    rev++;
    const service = `svc-${rev % 100}`;
    const puts = [providerRecord(`one-${rev}`, service, rev)];
    const [t0, c0] = [performance.now(), process.cpuUsage()];
    store.commit(rev, puts, [], [[service, rev]]);
    small.record(performance.now() - t0);
    smallCpuMs += cpuMs(process.cpuUsage(c0));
  }
  const smallSecs = (performance.now() - smallStart) / 1000;

  const large = recorder();
  const size = Number(values.size);
  let largeCpuMs = 0;
  for (let i = 0; i < Number(values.large); i++) {
    rev++;
    const puts = Array.from({ length: size }, (_, j) => providerRecord(`burst-${rev}-${j}`, `svc-${j % 100}`, rev));
    const services = Array.from({ length: 100 }, (_, j): [string, number] => [`svc-${j}`, rev]);
    const [t0, c0] = [performance.now(), process.cpuUsage()];
    store.commit(rev, puts, [], services);
    large.record(performance.now() - t0);
    largeCpuMs += cpuMs(process.cpuUsage(c0));
  }
  const l = large.summary();

  const t0 = performance.now();
  const loaded = store.load();
  const loadMs = performance.now() - t0;

  const diskAfter = fsyncCost();
  console.log(`store commit cost: ${label} on Node ${process.version}, load average ${load0.toFixed(1)} at start`);
  console.log(`  disk, 4 KiB write + fsync: before ${fmt(diskBefore)}; after ${fmt(diskAfter)}`);
  const s = small.summary();
  console.log(
    `  ${s.count} commits of 1 provider: ${fmt(s)}; ${Math.round(s.count / smallSecs).toLocaleString('en')} commits/s; ` +
      `CPU ${(smallCpuMs / s.count).toFixed(2)} ms per commit`,
  );
  console.log(
    `  ${l.count} commits of ${size.toLocaleString('en')} providers: ${fmt(l)}; ` +
      `${Math.round((size * 1000) / l.mean).toLocaleString('en')} providers/s; ` +
      `CPU ${(largeCpuMs / l.count).toFixed(1)} ms per commit`,
  );
  console.log(`  load() of ${loaded.providers.length.toLocaleString('en')} providers: ${loadMs.toFixed(0)} ms`);
} finally {
  store.close();
  dir.remove();
}

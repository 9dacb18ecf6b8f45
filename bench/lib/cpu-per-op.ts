/**
 * CPU time per operation, per process: utime + stime from /proc/<pid>/stat before and after a load window,
 * divided by the operations the server acknowledged (2xx answers). On a shared machine the rate moves with the
 * load of others; a process's own CPU per operation moves much less, so it is the figure to compare builds by.
 */
import { cpuSeconds } from './procs.ts';

/** Named processes; a name may stand for several pids (a primary and its cluster workers). */
export type PidsByName = () => Record<string, number[]>;

/** Microseconds of CPU per acknowledged operation, per name, plus `total`. */
export type CpuPerOp = Record<string, number>;

function snapshot(pids: Record<string, number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, list] of Object.entries(pids)) out[name] = list.reduce((a, p) => a + (cpuSeconds(p) ?? 0), 0);
  return out;
}

/** Runs `work` (synchronous, e.g. wrk) and returns its result with CPU µs per acknowledged operation. */
export function cpuPerOp<T>(pids: PidsByName, work: () => T, acked: (r: T) => number): { result: T; us: CpuPerOp } {
  const before = snapshot(pids());
  const result = work();
  const after = snapshot(pids());
  const n = Math.max(1, acked(result));
  const us: CpuPerOp = {};
  let total = 0;
  for (const name of Object.keys(after)) {
    const cpu = after[name] - (before[name] ?? 0);
    total += cpu;
    us[name] = (cpu * 1e6) / n;
  }
  us.total = (total * 1e6) / n;
  return { result, us };
}

/** "leader 210, gateway 380, total 600 µs CPU per registration". */
export function formatCpuPerOp(us: CpuPerOp, what: string): string {
  return `${Object.entries(us)
    .map(([k, v]) => `${k} ${Math.round(v)}`)
    .join(', ')} µs CPU per ${what}`;
}

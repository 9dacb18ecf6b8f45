/** Load generation with autocannon (the package ships no types): one run, 2xx latencies at µs resolution. */
import { createRequire } from 'node:module';
import { recorder, type LatencySummary } from './hdr.ts';
import { formatNumber } from './report.ts';

interface AutocannonResult {
  requests: { average: number; total: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}

interface AutocannonInstance {
  on(event: 'response', fn: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): void;
  on(event: 'tick', fn: (c: { counter: number }) => void): void;
}

type Autocannon = (
  opts: Record<string, unknown>,
  cb: (err: Error | null, res: AutocannonResult) => void,
) => AutocannonInstance;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LoadResult {
  /** Successful (2xx) answers per second over the run. */
  perSecond: number;
  /** Latency of 2xx answers in ms, at µs resolution (autocannon's own histogram rounds to whole ms). */
  latency: LatencySummary;
  requests: number;
  errors: number;
  non2xx: number;
  durationSeconds: number;
}

/** Runs `request` (url, method, headers, body) at `connections` for `durationSeconds`. */
export function runLoad(
  request: { url: string; method?: string; headers?: Record<string, string>; body?: string },
  opts: { connections: number; durationSeconds: number; onProgress?: (text: string) => void },
): Promise<LoadResult> {
  const rec = recorder();
  let ticks = 0;
  return new Promise<LoadResult>((resolve, reject) => {
    const inst = autocannon(
      { ...request, connections: opts.connections, pipelining: 1, duration: opts.durationSeconds, timeout: 10 },
      (err, res) =>
        err
          ? reject(err)
          : resolve({
              perSecond: res['2xx'] / res.duration,
              latency: rec.summary(),
              requests: res.requests.total,
              errors: res.errors + res.timeouts,
              non2xx: res.non2xx,
              durationSeconds: res.duration,
            }),
    );
    inst.on('response', (_c, status, _b, ms) => {
      if (status >= 200 && status < 300) rec.record(ms);
    });
    inst.on('tick', (c) => opts.onProgress?.(`${++ticks}/${opts.durationSeconds} s, ${formatNumber(c.counter)} req/s`));
  });
}

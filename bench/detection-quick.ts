/**
 * How fast each kind of failure is detected, end to end (failure injected → `down` event published by the
 * leader), with default worker and leader settings, against each check's configured interval.
 *
 *   node --import tsx bench/detection-quick.ts [--runs 3]
 *
 * Kinds: crash (SIGKILL of a heartbeating provider process), hang (SIGSTOP of it), HTTP failure (a real server
 * starts answering 500), TTL expiry (the provider stops calling PUT /ttl). Runs are sequential, one provider
 * at a time, so the mass-down guard never trips (its settle delay is part of what is measured).
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import type { LeaderHandle } from '../src/leader/index.ts';
import { startCluster } from '../harness/cluster.ts';
import { http } from '../harness/http.ts';
import { startProviderProcess } from '../harness/process.ts';
import { waitFor } from '../harness/wait.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const RUNS = Number(values.runs);
const INTERVAL_MS = 1000;

// Leader, one worker and a gateway in this process with their default settings (real sockets between them).
const cluster = await startCluster({ workers: 1 });
const { leader, url } = cluster;

/** Time of the leader's event for `id` with `change`, polled from its event history. */
function eventAt(l: LeaderHandle, id: string, change: string, after: number): number | undefined {
  const events = l.history(0) ?? [];
  return events.find((e) => e.provider.id === id && e.change === change && e.at >= after)?.at;
}
async function until(id: string, change: string, after: number, timeoutMs = 15_000): Promise<number> {
  return waitFor(() => eventAt(leader, id, change, after), { timeoutMs, intervalMs: 2, what: `${id} ${change}` });
}
async function put(id: string, body: object): Promise<void> {
  const res = await http('PUT', `${url}/v1/providers/${id}`, body);
  if (res.status >= 300) throw new Error(`register ${id}: ${res.status} ${JSON.stringify(res.body)}`);
}

const results: Record<string, number[]> = { crash: [], hang: [], http: [], ttl: [] };
try {
  for (let run = 0; run < RUNS; run++) {
    // crash and hang: zmq check, 1 s interval, 3 misses; ZMTP heartbeats 300/900 ms on the worker (defaults).
    for (const kind of ['crash', 'hang'] as const) {
      const id = `${kind}-${run}`;
      const p = await startProviderProcess([id], { intervalMs: 250 });
      await put(id, {
        service: kind,
        host: '127.0.0.1',
        port: 20_000 + run,
        protocol: 'rpc-server',
        check: { type: 'zmq', endpoint: p.endpoint, intervalMs: INTERVAL_MS },
      });
      await until(id, 'up', 0);
      const t0 = Date.now();
      p.child.signal(kind === 'crash' ? 'SIGKILL' : 'SIGSTOP');
      results[kind].push((await until(id, 'down', t0)) - t0);
      await p.child.stop(500);
      await http('DELETE', `${url}/v1/providers/${id}`);
    }
    // http: 1 s interval, failuresBeforeDown 2 (default).
    {
      let status = 200;
      const server = createServer((_req, res) => res.writeHead(status).end());
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const id = `http-${run}`;
      await put(id, {
        service: 'web',
        host: '127.0.0.1',
        port: 21_000 + run,
        protocol: 'http',
        check: {
          type: 'http',
          url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
          intervalMs: INTERVAL_MS,
        },
      });
      await until(id, 'up', 0);
      const t0 = Date.now();
      status = 500;
      results.http.push((await until(id, 'down', t0)) - t0);
      server.closeAllConnections();
      server.close();
      await http('DELETE', `${url}/v1/providers/${id}`);
    }
    // ttl: ttlMs 1000; the clock starts at the last pass.
    {
      const id = `ttl-${run}`;
      await put(id, {
        service: 'jobs',
        host: '127.0.0.1',
        port: 22_000 + run,
        protocol: 'http',
        check: { type: 'ttl', ttlMs: INTERVAL_MS },
      });
      await waitFor(async () => (await http('PUT', `${url}/v1/providers/${id}/ttl`)).status === 204, {
        what: 'ttl accepted',
      });
      await until(id, 'up', 0);
      const res = await http('PUT', `${url}/v1/providers/${id}/ttl`);
      const t0 = Date.now();
      if (res.status !== 204) throw new Error(`ttl pass: ${res.status}`);
      results.ttl.push((await until(id, 'down', t0)) - t0);
      await http('DELETE', `${url}/v1/providers/${id}`);
    }
  }
} finally {
  await cluster.close();
}

const config: Record<string, string> = {
  crash: `zmq interval ${INTERVAL_MS} ms × 3 misses; disconnect fast path`,
  hang: `zmq interval ${INTERVAL_MS} ms × 3 misses; ZMTP heartbeat 200 ms / timeout 600 ms`,
  http: `http interval ${INTERVAL_MS} ms, timeout 1000 ms, failuresBeforeDown 2`,
  ttl: `ttl ${INTERVAL_MS} ms, failuresBeforeDown 1`,
};
const fmt = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${s[0]} / median ${s[Math.floor(s.length / 2)]} / max ${s[s.length - 1]} ms`;
};
process.stdout.write(`failure detection, ${RUNS} runs each (failure injected → down event published)\n`);
for (const kind of Object.keys(results))
  process.stdout.write(`${kind.padEnd(6)} ${fmt(results[kind]).padEnd(40)} ${config[kind]}\n`);
process.exit(0);

/**
 * How fast a change reaches subscribers on each transport: a registration is sent, acknowledged (durable), and
 * received by a WebSocket client, an SSE client, a blocking query and a ZeroMQ SUB of the native feed.
 *
 *   node --import tsx bench/propagation-quick.ts [--n 200]
 *
 * Switchboard runs as its own process (`switchboard start`, exactly as users run it); the clients share this one,
 * so their clocks agree. Registrations go one at a time, so nothing is measured queued behind another.
 * `ack→recv` is negative when the subscriber had the change before the writer had its answer (the gateway
 * publishes as soon as its replica applies the change, and answers the write only then).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Subscriber } from 'zeromq';
import { Unpackr } from 'msgpackr';
import { spawnRole } from '../harness/process.ts';
import { tempDir } from '../harness/tmp.ts';
import { waitFor } from '../harness/wait.ts';
import { connectSse, connectWs, register } from '../harness/clients.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '200' } } });
const N = Number(values.n);
const dir = tempDir('switchboard-propagation-');
const sb = spawnRole('start', ['--data-dir', dir.path, '--bind', 'tcp://127.0.0.1:*', '--http-port', '0'], {
  SWITCHBOARD_LOG_LEVEL: 'warn',
});
const url = (await sb.waitForLine(/^switchboard gateway: url=(\S+)/))[1];
const [, pub] = await sb.waitForLine(/^switchboard gateway feed: pub=(\S+) snapshot=(\S+)/);
await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { what: 'ready' });

type Transport = 'ws' | 'sse' | 'zmq' | 'blocking';
const received = new Map<string, Partial<Record<Transport, number>>>();
const mark = (id: string, t: Transport): void => {
  const entry = received.get(id) ?? {};
  entry[t] ??= performance.now();
  received.set(id, entry);
};

const ws = await connectWs(url, '?service=bench');
ws.ws.on('message', (data) => {
  const m = JSON.parse((data as Buffer).toString());
  if (m.type === 'event') mark(m.provider.id, 'ws');
});
const sse = await connectSse(url, '/v1/events?service=bench');
const sseSeen = { n: 0 };
const ssePoll = setInterval(() => {
  for (; sseSeen.n < sse.messages.length; sseSeen.n++) {
    const m = sse.messages[sseSeen.n];
    if (m.data?.provider) mark(m.data.provider.id, 'sse');
  }
}, 0);
const sub = new Subscriber({ linger: 0 });
sub.connect(pub);
sub.subscribe('svc/bench/');
const plain = new Unpackr({ useRecords: false, mapsAsObjects: true });
void (async () => {
  for await (const [, body] of sub) mark((plain.unpack(body) as { provider: { id: string } }).provider.id, 'zmq');
})();
await ws.next((m) => m.type === 'snapshot');
await sse.next((m) => m.event === 'hello');

// Warm up (JIT, connections) and make sure the SUB's subscription has reached the feed.
for (let i = 0; i < 20; i++) await register(url, `warm-${i}`, 'bench', 30_000 + i);
await waitFor(() => received.get('warm-19')?.zmq !== undefined, { what: 'zmq warm-up' });

const ackToRecv: Record<Transport, number[]> = { ws: [], sse: [], zmq: [], blocking: [] };
const sendToRecv: Record<Transport, number[]> = { ws: [], sse: [], zmq: [], blocking: [] };
for (let i = 0; i < N; i++) {
  const id = `p${i}`;
  const index = (await fetch(`${url}/v1/services/bench`)).headers.get('x-switchboard-index');
  // The blocking query is already waiting when the registration is sent.
  const blocking = fetch(`${url}/v1/services/bench?index=${index}&wait=10s`).then(async (r) => {
    await r.arrayBuffer();
    mark(id, 'blocking');
  });
  await waitFor(async () => /^switchboard_blocking_queries 1$/m.test(await (await fetch(`${url}/metrics`)).text()), {
    intervalMs: 1,
    what: 'query waiting',
  });
  const sent = performance.now();
  await register(url, id, 'bench', 10_000 + i);
  const acked = performance.now();
  await blocking;
  await waitFor(() => (['ws', 'sse', 'zmq'] as const).every((t) => received.get(id)?.[t] !== undefined), {
    intervalMs: 1,
    what: `${id} everywhere`,
  });
  for (const t of ['ws', 'sse', 'zmq', 'blocking'] as const) {
    ackToRecv[t].push(received.get(id)![t]! - acked);
    sendToRecv[t].push(received.get(id)![t]! - sent);
  }
}

const pct = (xs: number[], p: number): string => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2);
};
process.stdout.write(
  `propagation over ${N} sequential registrations (ms, loopback, switchboard start in its own process)\n`,
);
process.stdout.write(`transport   ack→recv p50  p99     send→recv p50  p99\n`);
for (const t of ['ws', 'sse', 'zmq', 'blocking'] as const) {
  process.stdout.write(
    `${t.padEnd(10)}  ${pct(ackToRecv[t], 50).padStart(12)}  ${pct(ackToRecv[t], 99).padStart(6)}  ${pct(sendToRecv[t], 50).padStart(13)}  ${pct(sendToRecv[t], 99).padStart(6)}\n`,
  );
}

clearInterval(ssePoll);
sse.close();
await ws.close();
sub.close();
await sb.stop();
dir.remove();

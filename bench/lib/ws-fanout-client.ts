/**
 * Many WebSocket subscribers in one process, for the fan-out benchmark.
 *
 *   node --import tsx bench/lib/ws-fanout-client.ts <gatewayUrl> <service> <count> <firstIndex> <perAddress>
 *
 * Opens `count` connections to `/v1/watch?service=<service>`, connection i (global index firstIndex + i) from
 * source address 127.0.x.y chosen so that at most `perAddress` come from one address (the gateway caps
 * subscriptions per client address). Prints `OPEN <n> <failed> [first error]` once every connection has its
 * snapshot (or failed). For each event whose provider id is `fan-<n>`, records when every connection received it
 * (wall clock, `performance.timeOrigin + performance.now()`, comparable across processes) and prints
 * `DONE fan-<n> <received> <json array of times>` when all have it, or after 15 s with what arrived.
 * Exits when stdin closes or on SIGTERM.
 */
import { WebSocket } from 'ws';

const [url, service, countArg, firstArg, perAddressArg] = process.argv.slice(2);
const count = Number(countArg);
const first = Number(firstArg);
const perAddress = Number(perAddressArg);
if (!url || !service || !(count > 0) || !(first >= 0) || !(perAddress > 0)) {
  process.stderr.write('usage: ws-fanout-client.ts <gatewayUrl> <service> <count> <firstIndex> <perAddress>\n');
  process.exit(2);
}
const sockets: WebSocket[] = [];
const quit = (): void => {
  for (const ws of sockets) ws.terminate();
  process.exit(0);
};
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();
process.on('SIGTERM', quit);

const now = (): number => performance.timeOrigin + performance.now();
const ID = /"id":"(fan-\d+)"/;
const events = new Map<string, { times: Float64Array; got: number; timer: NodeJS.Timeout }>();
function report(tag: string): void {
  const e = events.get(tag);
  if (!e) return;
  clearTimeout(e.timer);
  const list = Array.from(e.times, (t) => (Number.isNaN(t) ? null : Math.round(t * 100) / 100));
  process.stdout.write(`DONE ${tag} ${e.got} ${JSON.stringify(list)}\n`);
}
function onMessage(i: number, data: Buffer): void {
  const at = now();
  const text = data.toString();
  if (!text.startsWith('{"type":"event"')) return;
  const m = ID.exec(text);
  if (!m) return;
  const tag = m[1];
  let e = events.get(tag);
  if (!e) {
    e = { times: new Float64Array(count).fill(NaN), got: 0, timer: setTimeout(() => report(tag), 15_000) };
    events.set(tag, e);
  }
  if (!Number.isNaN(e.times[i])) return;
  e.times[i] = at;
  if (++e.got === count) report(tag);
}

function sourceAddress(global: number): string {
  const a = Math.floor(global / perAddress);
  return `127.0.${Math.floor(a / 250)}.${(a % 250) + 2}`;
}

let failed = 0;
let firstError = '';
function open(i: number): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/watch?service=${encodeURIComponent(service)}`, {
      localAddress: sourceAddress(first + i),
      perMessageDeflate: false,
    });
    sockets[i] = ws;
    let settled = false;
    const settle = (err?: string): void => {
      if (settled) return;
      settled = true;
      if (err) {
        failed++;
        firstError ||= err;
      }
      resolve();
    };
    ws.on('message', (data: Buffer) => {
      if (!settled) settle();
      else onMessage(i, data);
    });
    ws.on('unexpected-response', (_q, res) => settle(`HTTP ${res.statusCode}`));
    ws.on('error', (err) => settle(err.message));
    ws.on('close', (code) => settle(`closed ${code}`));
    setTimeout(() => settle('no snapshot within 60 s'), 60_000).unref();
  });
}

const CONCURRENCY = 64;
let next = 0;
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) await open(next++);
  }),
);
process.stdout.write(`OPEN ${count - failed} ${failed}${firstError ? ` ${firstError}` : ''}\n`);

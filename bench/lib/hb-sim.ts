/**
 * Many heartbeating providers in one process, for the heartbeat-scale benchmark: binds `sockets` PUB sockets
 * on 127.0.0.1 (free ports), each publishing `["heartbeat", id]` for `idsPerSocket` provider ids every
 * `intervalMs`, as `switchboard heartbeat` / HeartbeatPublisher do. Socket beats are spread over the interval,
 * as independent providers would be.
 *
 *   node --import tsx bench/lib/hb-sim.ts <idPrefix> <sockets> <idsPerSocket> <intervalMs>
 *
 * Prints `EP <endpoint>` per socket (ids of socket s are `<idPrefix><s>-<k>`), then `READY`. Exits when stdin
 * closes (the benchmark died) or on SIGTERM.
 */
import { Publisher } from 'zeromq';

const [prefix, socketsArg, idsArg, intervalArg] = process.argv.slice(2);
const sockets = Number(socketsArg);
const idsPerSocket = Number(idsArg);
const intervalMs = Number(intervalArg);
if (!prefix || !(sockets > 0) || !(idsPerSocket > 0) || !(intervalMs > 0)) {
  process.stderr.write('usage: hb-sim.ts <idPrefix> <sockets> <idsPerSocket> <intervalMs>\n');
  process.exit(2);
}

const pubs: Publisher[] = [];
const timers: NodeJS.Timeout[] = [];
let closing = false;
const quit = (): void => {
  if (closing) return;
  closing = true;
  for (const t of timers) clearInterval(t);
  for (const p of pubs) p.close();
  process.exit(0);
};
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();
process.on('SIGTERM', quit);

for (let s = 0; s < sockets; s++) {
  const pub = new Publisher({ linger: 0, sendHighWaterMark: 1000, heartbeatInterval: 1000, heartbeatTimeout: 3000 });
  await pub.bind('tcp://127.0.0.1:*');
  pubs.push(pub);
  const ids = Array.from({ length: idsPerSocket }, (_, k) => `${prefix}${s}-${k}`);
  let busy = false;
  const beat = async (): Promise<void> => {
    if (busy || closing) return;
    busy = true;
    try {
      for (const id of ids) await pub.send(['heartbeat', id]);
    } catch {
      /* closing */
    } finally {
      busy = false;
    }
  };
  timers.push(
    setTimeout(
      () => {
        void beat();
        timers.push(setInterval(() => void beat(), intervalMs));
      },
      Math.floor((s / sockets) * intervalMs),
    ),
  );
  process.stdout.write(`EP ${pub.lastEndpoint}\n`);
}
process.stdout.write('READY\n');

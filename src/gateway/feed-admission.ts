/**
 * Who may connect to the native ZeroMQ feed (the PUB and the snapshot ROUTER): with `--feed-curve-secret-key` only
 * the keys of `--feed-curve-allow` (CURVE), and in any case at most `--max-feed-connections-per-client` connections
 * per client and socket, a client being what `clientKey()` says (every loopback address is one client, an IPv6
 * client its /64), so picking 127.0.0.2, 127.0.0.3, … does not get around the cap.
 *
 * libzmq asks the ZAP handler (bridge/zap.ts) at each new connection, with the peer's address (not its port); it
 * says nothing when a connection closes. So at each request the kernel's own table of this network namespace's TCP
 * connections (`/proc/self/net/tcp`, `tcp6`) says which connections to this socket's port are still established:
 * the connections admitted earlier that are gone are forgotten, and the client is refused when it holds `max`
 * admitted ones still alive. Connections still waiting for their own decision are not counted, so a burst of
 * simultaneous connects admits exactly `max`. An admitted request is matched to the oldest (lowest inode)
 * not-yet-admitted established connection of that client. Linux only, like the rest of Switchboard; elsewhere
 * (or for ipc://) the cap is not applied. Under a burst of simultaneous connects from one client the matching is
 * a guess and the kernel table may be read while it changes, so the cap can be off by one or two for that burst.
 */
import { readFile } from 'node:fs/promises';
import {
  readAllowList,
  readKeyPair,
  startZapGuard,
  type Logger,
  type Metrics,
  type PublicKeyEntry,
  type ZapGuard,
  type ZapRequest,
  type ZapVerdict,
} from '../bridge/index.ts';
import { clientKey } from './clients.ts';

const ESTABLISHED = '01';

export interface FeedAdmissionOptions {
  /** Key pair file and allow list: CURVE on the feed. */
  curve?: { secretKeyFile: string; allowFile: string };
  /** 0: no cap. */
  maxPerClient: number;
  metrics: Metrics;
  log: Logger;
}

/** Reads the feed's keys once (a wrong file is one line naming it) and makes one guard per feed socket. */
export class FeedAdmission {
  readonly #opts: FeedAdmissionOptions;
  readonly #curve: { secretKey: string; allowed: readonly PublicKeyEntry[] } | undefined;

  constructor(opts: FeedAdmissionOptions) {
    this.#opts = opts;
    this.#curve = opts.curve && {
      secretKey: readKeyPair('--feed-curve-secret-key', opts.curve.secretKeyFile).secretKey,
      allowed: readAllowList('--feed-curve-allow', opts.curve.allowFile),
    };
    opts.metrics.counter(
      'switchboard_feed_refused_total',
      'ZeroMQ feed connections refused because the client holds --max-feed-connections-per-client already',
      { socket: 'feed-pub', reason: 'per-client-cap' },
    );
  }

  /** True when the feed needs a ZAP guard at all (CURVE, or a cap). */
  get active(): boolean {
    return this.#curve !== undefined || this.#opts.maxPerClient > 0;
  }

  /** A guard for one socket; `port()` is its bound TCP port (undefined before the bind or for ipc://). */
  async guard(socket: string, port: () => number | undefined): Promise<ZapGuard> {
    const { maxPerClient, metrics, log } = this.#opts;
    /** Admitted connections (remote address:port as the kernel lists it), forgotten once no longer established. */
    const admitted = new Set<string>();
    const admit =
      maxPerClient > 0
        ? async (request: ZapRequest): Promise<ZapVerdict> => {
            const bound = port();
            if (bound === undefined || request.address === '') return { ok: true };
            const client = clientKey(request.address);
            const connections = await establishedConnections(bound);
            const live = new Set(connections.map((c) => c.remote));
            for (const remote of admitted) if (!live.has(remote)) admitted.delete(remote);
            const mine = connections.filter((c) => c.client === client);
            const held = mine.filter((c) => admitted.has(c.remote)).length;
            if (held >= maxPerClient) {
              metrics.inc('switchboard_feed_refused_total', { socket, reason: 'per-client-cap' });
              log.debug({ socket, client, held, max: maxPerClient }, 'feed connection refused: per-client cap');
              return { ok: false, reason: 'too many connections from this client' };
            }
            const next = mine.filter((c) => !admitted.has(c.remote)).sort((a, b) => a.inode - b.inode)[0];
            if (next) admitted.add(next.remote);
            return { ok: true };
          }
        : undefined;
    return startZapGuard({
      name: socket,
      ...(this.#curve ? { curve: this.#curve } : {}),
      ...(admit ? { admit } : {}),
      metrics,
      log,
    });
  }
}

export interface TcpConnection {
  /** Remote address and port as the kernel lists them (hex): unique among this port's connections. */
  remote: string;
  /** `clientKey()` of the remote address. */
  client: string;
  /** The socket's inode: grows with each accepted connection, so it orders them by age. */
  inode: number;
}

/** Established TCP connections to local `port` (this network namespace, IPv4 and IPv6). */
export async function establishedConnections(port: number): Promise<TcpConnection[]> {
  const found: TcpConnection[] = [];
  for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== ESTABLISHED) continue;
      if (parseInt(fields[1].split(':')[1], 16) !== port) continue;
      const remote = fields[2];
      found.push({ remote, client: clientKey(procAddress(remote.split(':')[0])), inode: Number(fields[9]) });
    }
  }
  return found;
}

/** A /proc/net/tcp address: 32-bit words in host (little-endian) byte order, 1 word for IPv4, 4 for IPv6. */
export function procAddress(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8)
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(hex.slice(w + b, w + b + 2), 16));
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // IPv4-mapped (::ffff:a.b.c.d): clientKey() reads the dotted form.
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return `::ffff:${bytes.slice(12).join('.')}`;
  return groups.join(':');
}

/**
 * Who may connect to the native ZeroMQ feed (the PUB and the snapshot ROUTER): with `--feed-curve-secret-key` only
 * the keys of `--feed-curve-allow` (CURVE), and in any case at most `--max-feed-connections-per-client` connections
 * per client and socket, a client being what `clientKey()` says (every loopback address is one client, an IPv6
 * client its /64), so picking 127.0.0.2, 127.0.0.3, … does not get around the cap.
 *
 * libzmq asks the ZAP handler (bridge/zap.ts) at each new connection, with the peer's address; it says nothing when
 * a connection closes. So the count is taken at that moment from the kernel's own table of this network
 * namespace's TCP connections (`/proc/self/net/tcp`, `tcp6`): the established connections to this socket's port,
 * grouped by client. Linux only, like the rest of Switchboard; elsewhere (or for ipc://) the cap is not applied.
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
    const admit =
      maxPerClient > 0
        ? async (request: ZapRequest): Promise<ZapVerdict> => {
            const bound = port();
            if (bound === undefined || request.address === '') return { ok: true };
            const client = clientKey(request.address);
            const held = (await establishedByClient(bound)).get(client) ?? 0;
            // The connection being decided is established already, so it is among those counted.
            if (held <= maxPerClient) return { ok: true };
            metrics.inc('switchboard_feed_refused_total', { socket, reason: 'per-client-cap' });
            log.debug({ socket, client, held, max: maxPerClient }, 'feed connection refused: per-client cap');
            return { ok: false, reason: 'too many connections from this client' };
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

/** Established TCP connections to local `port`, counted by `clientKey()` of the remote address. */
export async function establishedByClient(port: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== ESTABLISHED) continue;
      const [, localPort] = fields[1].split(':');
      if (parseInt(localPort, 16) !== port) continue;
      const [remoteHex] = fields[2].split(':');
      const client = clientKey(procAddress(remoteHex));
      counts.set(client, (counts.get(client) ?? 0) + 1);
    }
  }
  return counts;
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

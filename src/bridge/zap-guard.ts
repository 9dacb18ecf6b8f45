/**
 * Admission for a server socket, decided by the process's ZAP handler (zap.ts) under a domain of its own: with
 * CURVE, only clients whose public key is on the allow list complete a handshake; then an optional further rule
 * (the feed's per-client connection cap). Refusals are counted (`switchboard_curve_refused_total` for keys, the
 * rule's own counter otherwise) and logged at warn once per peer and minute, so a refused peer that keeps
 * reconnecting does not flood the log.
 */
import type { Socket } from 'zeromq';
import { curveServerOptions, type PublicKeyEntry, type ServerSecurity } from './curve.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { registerZapDomain, uniqueZapDomain, type ZapRegistration, type ZapRequest, type ZapVerdict } from './zap.ts';

const LOG_EVERY_MS = 60_000;
/** `key-not-allowed`: a CURVE key not on the list; `no-curve`: plain ZeroMQ; `handshake-failed`: undecryptable. */
const REFUSAL_REASONS = ['key-not-allowed', 'no-curve', 'handshake-failed'] as const;
type RefusalReason = (typeof REFUSAL_REASONS)[number];
/** Peers remembered for log rate limiting; forgotten all at once past this. */
const MAX_REMEMBERED = 1000;

export interface ZapGuardOptions {
  /** Names the socket(s) in metrics and logs (`leader`, `feed-pub`, …). */
  name: string;
  /** CURVE server: its secret key and the clients it admits. Absent: no encryption, only `admit`. */
  curve?: { secretKey: string; allowed: readonly PublicKeyEntry[] };
  /** A further rule, asked once the key is admitted. */
  admit?: (request: ZapRequest) => ZapVerdict | Promise<ZapVerdict>;
  metrics: Metrics;
  log: Logger;
}

export interface ZapGuard extends ServerSecurity {
  readonly domain: string;
  /** Replaces the allow list (connections already admitted stay: CURVE authenticates at the handshake). */
  setAllowed(allowed: readonly PublicKeyEntry[]): void;
  /** Close the sockets first: after this their new connections are refused. Idempotent. */
  close(): Promise<void>;
}

export async function startZapGuard(opts: ZapGuardOptions): Promise<ZapGuard> {
  const { name, metrics } = opts;
  const log = opts.log.child({ component: 'zap', socket: name });
  const domain = uniqueZapDomain(`switchboard-${name}`);
  let allowed = new Map((opts.curve?.allowed ?? []).map((e) => [e.key, e]));
  const lastLogged = new Map<string, number>();
  if (opts.curve)
    for (const reason of REFUSAL_REASONS)
      metrics.counter(
        'switchboard_curve_refused_total',
        'Connections refused by a CURVE server: key not on the allow list, no CURVE, or a failed handshake',
        { socket: name, reason },
      );

  const refused = (reason: RefusalReason, peer: string, fields: Record<string, unknown>): void => {
    metrics.inc('switchboard_curve_refused_total', { socket: name, reason });
    const now = Date.now();
    if (now - (lastLogged.get(peer) ?? 0) < LOG_EVERY_MS) return;
    if (lastLogged.size >= MAX_REMEMBERED) lastLogged.clear();
    lastLogged.set(peer, now);
    log.warn({ ...fields, reason }, 'connection refused');
  };
  const refuse = (request: ZapRequest, reason: RefusalReason): ZapVerdict => {
    const { address, mechanism, clientKey } = request;
    refused(reason, `${address} ${clientKey ?? mechanism}`, { address, mechanism, clientKey });
    return { ok: false, reason };
  };
  const watches = new Set<Promise<void>>();

  const policy = (request: ZapRequest): ZapVerdict | Promise<ZapVerdict> => {
    if (opts.curve) {
      if (request.mechanism !== 'CURVE' || !request.clientKey) return refuse(request, 'no-curve');
      if (!allowed.has(request.clientKey)) return refuse(request, 'key-not-allowed');
    }
    return opts.admit ? opts.admit(request) : { ok: true };
  };

  const registration: ZapRegistration = await registerZapDomain(domain, policy, log);
  if (opts.curve) log.info({ domain, allowed: allowed.size }, 'CURVE on: admitting listed keys only');
  return {
    socketOptions: opts.curve
      ? curveServerOptions(opts.curve.secretKey, domain)
      : { zapDomain: domain, zapEnforceDomain: true },
    domain,
    watch(socket: Socket) {
      if (!opts.curve) return;
      const watching = watchHandshakes(socket, (reason) => refused(reason, `${name} ${reason}`, {}), log);
      watches.add(watching);
      void watching.finally(() => watches.delete(watching));
    },
    setAllowed(entries) {
      allowed = new Map(entries.map((e) => [e.key, e]));
      log.info({ allowed: allowed.size }, 'CURVE allow list replaced');
    },
    close: async () => {
      await registration.close();
      await Promise.all(watches);
    },
  };
}

/**
 * Refusals libzmq decides before asking ZAP: a client without CURVE (mechanism mismatch) or whose handshake does
 * not decrypt (it expects another server key, or sends garbage). The server socket's events say so, without the
 * peer's address.
 */
async function watchHandshakes(socket: Socket, onRefused: (reason: RefusalReason) => void, log: Logger): Promise<void> {
  try {
    for await (const event of socket.events) {
      if (event.type === 'end') break;
      if (event.type !== 'handshake:error:protocol') continue;
      onRefused(event.error.code === 'ERR_ZMTP_MECHANISM_MISMATCH' ? 'no-curve' : 'handshake-failed');
    }
  } catch (err) {
    if (!socket.closed) log.error({ err }, 'socket event loop ended');
  }
}

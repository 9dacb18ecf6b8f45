/**
 * The ZAP handler (ZeroMQ RFC 27): libzmq asks it, over `inproc://zeromq.zap.01` in the socket's context, whether
 * to admit each new connection of a CURVE server socket (and of any socket with a ZAP domain). There is one such
 * endpoint per context, and every role of a process shares zeromq.js's default context, so one handler serves the
 * process and each socket's ZAP domain picks its policy: the leader's allow list, the feed's allow list and
 * per-client cap, each registered here under its own domain.
 *
 * Bounded: one request is decided at a time (a REP socket), at most `ZAP_QUEUE_LIMIT` wait in libzmq, and a policy
 * that does not answer within `ZAP_DECISION_TIMEOUT_MS` is a refusal. A domain nobody registered is refused. The
 * socket is bound while at least one domain is registered; the server sockets set `zapEnforceDomain`, so a
 * connection that arrives when no handler is bound is refused, not admitted.
 */
import { Reply } from 'zeromq';
import { StartupError } from './errors.ts';
import type { Logger } from './log.ts';
import { z85Encode } from './curve.ts';
import { baseSocketOptions, receiveLoop } from './zmq.ts';

export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
export const ZAP_DECISION_TIMEOUT_MS = 1000;
export const ZAP_QUEUE_LIMIT = 1000;

export interface ZapRequest {
  domain: string;
  /** The peer's IP address as libzmq reports it (no port). */
  address: string;
  /** `NULL`, `PLAIN` or `CURVE`. */
  mechanism: string;
  /** The client's long-term public key (z85), for CURVE. */
  clientKey?: string;
}

export type ZapVerdict = { ok: true; userId?: string } | { ok: false; reason: string };
export type ZapPolicy = (request: ZapRequest) => ZapVerdict | Promise<ZapVerdict>;

export interface ZapRegistration {
  readonly domain: string;
  /** Stops answering for this domain (its connections are refused from now on). Idempotent. */
  close(): Promise<void>;
}

let sequence = 0;

/** A ZAP domain no other socket of this process uses (`prefix-N`). */
export function uniqueZapDomain(prefix: string): string {
  return `${prefix}-${++sequence}`;
}

class ZapHandler {
  readonly #policies = new Map<string, ZapPolicy>();
  #socket: Reply | null = null;
  #loop: Promise<void> = Promise.resolve();
  /** Binding and closing, one at a time. */
  #transition: Promise<void> = Promise.resolve();
  #log: Logger | null = null;

  async register(domain: string, policy: ZapPolicy, log: Logger): Promise<ZapRegistration> {
    if (this.#policies.has(domain)) throw new Error(`ZAP domain ${domain} is registered already`);
    this.#policies.set(domain, policy);
    this.#log ??= log;
    try {
      await this.#serial(() => this.#bind());
    } catch (err) {
      this.#policies.delete(domain);
      throw err;
    }
    let closing: Promise<void> | null = null;
    return {
      domain,
      close: () =>
        (closing ??= (async () => {
          this.#policies.delete(domain);
          await this.#serial(() => this.#closeIfUnused());
        })()),
    };
  }

  #serial(step: () => Promise<void>): Promise<void> {
    const next = this.#transition.then(step);
    this.#transition = next.catch(() => {});
    return next;
  }

  async #bind(): Promise<void> {
    if (this.#socket) return;
    const socket = new Reply(
      baseSocketOptions<Reply>({ receiveHighWaterMark: ZAP_QUEUE_LIMIT, sendHighWaterMark: ZAP_QUEUE_LIMIT }),
    );
    try {
      await socket.bind(ZAP_ENDPOINT);
    } catch (err) {
      socket.close();
      throw new StartupError(`cannot bind the ZAP handler ${ZAP_ENDPOINT}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.#socket = socket;
    this.#loop = receiveLoop(socket, (frames) => this.#answer(socket, frames), this.#log!);
  }

  async #closeIfUnused(): Promise<void> {
    if (this.#policies.size > 0 || !this.#socket) return;
    const socket = this.#socket;
    this.#socket = null;
    socket.close();
    await this.#loop;
  }

  async #answer(socket: Reply, frames: Buffer[]): Promise<void> {
    // version, request id, domain, address, identity, mechanism, credentials...
    const [version, requestId, domain, address, , mechanism, credentials] = frames;
    const request: ZapRequest = {
      domain: domain?.toString() ?? '',
      address: address?.toString() ?? '',
      mechanism: mechanism?.toString() ?? '',
      ...(mechanism?.toString() === 'CURVE' && credentials?.length === 32 ? { clientKey: z85Encode(credentials) } : {}),
    };
    const verdict: ZapVerdict =
      version?.toString() === '1.0' ? await this.#decide(request) : { ok: false, reason: 'version' };
    const reply = verdict.ok
      ? ['1.0', requestId ?? '', '200', 'OK', verdict.userId ?? '', '']
      : ['1.0', requestId ?? '', '400', verdict.reason, '', ''];
    if (!socket.closed) await socket.send(reply);
  }

  async #decide(request: ZapRequest): Promise<ZapVerdict> {
    const policy = this.#policies.get(request.domain);
    if (!policy) return { ok: false, reason: 'unknown ZAP domain' };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ZapVerdict>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, reason: 'decision timed out' }), ZAP_DECISION_TIMEOUT_MS);
    });
    try {
      return await Promise.race([Promise.resolve().then(() => policy(request)), timeout]);
    } catch (err) {
      this.#log?.error({ err, domain: request.domain }, 'ZAP policy failed; connection refused');
      return { ok: false, reason: 'policy failed' };
    } finally {
      clearTimeout(timer);
    }
  }
}

const handler = new ZapHandler();

/**
 * Answers ZAP requests for `domain` with `policy` until the registration is closed. Register before binding the
 * sockets that use the domain, and close them before closing the registration.
 */
export function registerZapDomain(domain: string, policy: ZapPolicy, log: Logger): Promise<ZapRegistration> {
  return handler.register(domain, policy, log);
}

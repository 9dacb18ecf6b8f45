/**
 * Where a health check may point. Checks make the worker send traffic on a registrant's behalf, which is an SSRF
 * tool unless some targets are off limits: link-local and cloud metadata addresses, unspecified addresses, local
 * Unix sockets (`ipc://`), the gateway's own ports, and loopback unless this deployment is itself loopback-only.
 * The gateway refuses such registrations with a 400 naming the field; the worker applies the same rule again to
 * the addresses it resolves just before it sends (defence in depth: a name may point at 169.254.169.254).
 */
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { normalizeHost } from './host.ts';

/** Always refused unless `--check-allow-cidr` covers them: link-local, cloud metadata, unspecified, multicast. */
const DENIED: Array<[string, number, 'ipv4' | 'ipv6', string]> = [
  ['169.254.0.0', 16, 'ipv4', 'a link-local address (cloud metadata lives at 169.254.169.254)'],
  ['fe80::', 10, 'ipv6', 'a link-local address'],
  ['fd00:ec2::254', 128, 'ipv6', 'a cloud metadata address'],
  ['100.100.100.200', 32, 'ipv4', 'a cloud metadata address'],
  ['0.0.0.0', 8, 'ipv4', 'an unspecified address'],
  ['::', 128, 'ipv6', 'an unspecified address'],
  ['224.0.0.0', 4, 'ipv4', 'a multicast address'],
  ['255.255.255.255', 32, 'ipv4', 'the broadcast address'],
  ['ff00::', 8, 'ipv6', 'a multicast address'],
];
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
/** Names that mean a metadata service whatever they resolve to. */
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata']);
const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback']);

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = normalizeHost(host) ?? host;
  if (LOOPBACK_NAMES.has(h.toLowerCase()) || h.toLowerCase().endsWith('.localhost')) return true;
  const family = isIP(h);
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

/** This machine's interface addresses (a gateway on 0.0.0.0 listens on each). */
function localAddresses(): Set<string> {
  const set = new Set<string>();
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) set.add(normalizeHost(a.address) ?? a.address);
  return set;
}

/** True for 0.0.0.0 and :: (listen on every interface). */
export function isUnspecifiedHost(host: string): boolean {
  const h = normalizeHost(host) ?? host;
  return h === '0.0.0.0' || h === '::';
}

/** Parses `10.0.0.0/8`, `fd00::/8` or a bare address; throws a one-line error naming the value. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [raw, bits, extra] = text.trim().split('/');
  const address = raw?.replace(/^\[|\]$/g, '') ?? '';
  const family = isIP(address);
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max)
    throw new Error(`'${text}' is not a CIDR range (e.g. 10.0.0.0/8, fd00::/8, 192.0.2.7)`);
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

export interface CheckPolicyOptions {
  /** Ranges a check may target even when a rule below refuses them (`--check-allow-cidr`). */
  allowCidrs?: readonly string[];
  /** Loopback targets (127.0.0.0/8, ::1, localhost): allowed when the deployment itself is loopback-only. */
  allowLoopback: boolean;
}

/** One refused target: what it is and why, for a 400 or a check's output. */
export interface Refusal {
  target: string;
  reason: string;
}

/** A target a check would send to. `port` absent: any port of that host. */
export interface CheckTarget {
  /** JSON pointer of the body field the target came from (`/check/url`), for the 400. */
  field: string;
  host: string;
  port?: number;
  /** `ipc://` and `inproc://` endpoints are never network targets. */
  scheme?: string;
}

export class CheckPolicy {
  readonly allowLoopback: boolean;
  readonly #allow = new BlockList();
  readonly #deny: Array<{ list: BlockList; reason: string }> = [];
  readonly #own: Array<{ host: string; port: number }> = [];
  readonly #hasAllow: boolean;
  /** `ipc` in the allow list lets zmq checks use ipc:// endpoints (local Unix sockets). */
  readonly #allowIpc: boolean;

  constructor(opts: CheckPolicyOptions) {
    this.allowLoopback = opts.allowLoopback;
    this.#allowIpc = (opts.allowCidrs ?? []).includes('ipc');
    for (const cidr of opts.allowCidrs ?? []) {
      if (cidr === 'ipc') continue;
      const { address, prefix, family } = parseCidr(cidr);
      this.#allow.addSubnet(address, prefix, family);
    }
    this.#hasAllow = (opts.allowCidrs ?? []).some((c) => c !== 'ipc');
    for (const [address, prefix, family, reason] of DENIED) {
      const list = new BlockList();
      list.addSubnet(address, prefix, family);
      this.#deny.push({ list, reason });
    }
  }

  /** A listener of this process (the gateway's HTTP port, its feed): checks may not aim at it. */
  addOwnEndpoint(host: string, port: number): void {
    this.#own.push({ host: normalizeHost(host) ?? host, port });
  }

  /** Why a check may not target this host (a name or an address) and port, or null. Names are not resolved. */
  refusal(host: string, port?: number): string | null {
    const h = (normalizeHost(host) ?? host).toLowerCase();
    const family = isIP(h);
    if (family === 0) {
      if (METADATA_NAMES.has(h)) return 'a cloud metadata service name';
      if (!isLoopbackHost(h)) return null;
      if (this.#hasAllow && this.#allow.check('127.0.0.1', 'ipv4')) return null;
      return this.#loopback(h, port);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.#hasAllow && this.#allow.check(h, type)) return null;
    for (const d of this.#deny) if (d.list.check(h, type)) return d.reason;
    if (LOOPBACK.check(h, type)) return this.#loopback(h, port);
    if (
      port !== undefined &&
      this.#own.some((o) => o.port === port && (o.host === h || (isUnspecifiedHost(o.host) && localAddresses().has(h))))
    )
      return "one of the gateway's own listening ports";
    return null;
  }

  /** The first refused target of a list, naming its field. */
  refuseTargets(targets: readonly CheckTarget[]): (Refusal & { field: string }) | null {
    for (const t of targets) {
      if (t.scheme === 'inproc' || (t.scheme === 'ipc' && !this.#allowIpc))
        return {
          field: t.field,
          target: `${t.scheme}://`,
          reason: "a local socket endpoint (allow ipc:// with '--check-allow-cidr ipc')",
        };
      if (t.scheme === 'ipc') continue;
      const reason = this.refusal(t.host, t.port);
      if (reason) return { field: t.field, target: t.port === undefined ? t.host : `${t.host}:${t.port}`, reason };
    }
    return null;
  }

  #loopback(host: string, port: number | undefined): string | null {
    if (
      port !== undefined &&
      this.#own.some((o) => o.port === port && (isLoopbackHost(o.host) || isUnspecifiedHost(o.host)))
    )
      return "one of the gateway's own listening ports";
    return this.allowLoopback ? null : 'a loopback address (allowed only when the gateway itself listens on loopback)';
  }
}

/** The network targets a provider's check would reach, each with the body field it came from. */
export function checkTargets(provider: {
  host: string;
  port: number;
  check?: { type: string; url?: string; endpoint?: string };
}): CheckTarget[] {
  const check = provider.check;
  if (!check) return [];
  switch (check.type) {
    case 'tcp':
      return [{ field: '/host', host: provider.host, port: provider.port }];
    case 'http': {
      let url: URL;
      try {
        url = new URL(check.url ?? '');
      } catch {
        return [];
      }
      const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
      return [{ field: '/check/url', host: url.hostname, port }];
    }
    case 'zmq': {
      const endpoint = check.endpoint ?? '';
      const scheme = /^([a-z]+):\/\//.exec(endpoint)?.[1] ?? '';
      if (scheme !== 'tcp') return [{ field: '/check/endpoint', host: '', scheme }];
      const m = /^tcp:\/\/(.+):([0-9]+)$/.exec(endpoint);
      if (!m) return [];
      return [{ field: '/check/endpoint', host: m[1], port: Number(m[2]) }];
    }
    default:
      return [];
  }
}

/** A one-line explanation for a 400 or a check output. */
export function describeRefusal(r: Refusal & { field?: string }, flag = '--check-allow-cidr'): string {
  const where = r.field ? `body${r.field} targets ` : 'target ';
  return `${where}${r.target}, ${r.reason}; checks may not reach it (an operator can allow a range with ${flag})`;
}

/**
 * A small authoritative DNS server for the `switchboard.` zone, on UDP and TCP (RFC 1035 framing), answered from
 * the gateway's replica: `<service>.service.switchboard.` A/AAAA and SRV (up providers only), and
 * `<tag>.<service>.service.switchboard.` for one tag. SRV targets of IP providers are `<hex ip>.addr.switchboard.`
 * (Consul's form) with the address in the additional section. TTLs are short: providers come and go in
 * milliseconds. Names outside the zone are refused (this is not a recursive resolver).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIP, createServer, type Server, type Socket } from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type Question } from 'dns-packet';
import type { Logger, Metrics, Provider, Replica } from '../bridge/index.ts';
import { bareHost } from './integrations.ts';

export const DNS_ZONE = 'switchboard';
/** Plain DNS over UDP without EDNS: answers above this are truncated (TC) and the resolver retries over TCP. */
export const UDP_MAX_PLAIN = 512;
export const UDP_MAX_EDNS = 4096;
export const DEFAULT_DNS_MAX_TCP_CONNECTIONS = 256;
export const DEFAULT_DNS_TCP_IDLE_MS = 10_000;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type Rcode = keyof typeof RCODE;

export interface DnsOptions {
  /** `host:port` or `[v6]:port`; port 0 picks one free on both UDP and TCP. */
  address: string;
  ttlS: number;
  replica: Replica;
  log: Logger;
  metrics: Metrics;
  maxTcpConnections?: number;
  tcpIdleMs?: number;
}

export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  if (!m) throw new Error(`invalid DNS address '${address}' (want host:port or [v6]:port)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid DNS port in '${address}'`);
  return { host: m[1] ?? m[2], port };
}

/** `10.0.0.7` → `0a000007`, as Consul names SRV targets that are bare addresses. */
function addrLabel(ip: string): string {
  if (isIP(ip) === 4)
    return ip
      .split('.')
      .map((o) => Number(o).toString(16).padStart(2, '0'))
      .join('');
  // IPv6: the 32 hex digits of the expanded address.
  const [head, tail = ''] = ip.includes('::') ? ip.split('::') : [ip, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

function ipFromAddrLabel(label: string): string | null {
  if (/^[0-9a-f]{8}$/.test(label)) return (label.match(/../g) ?? []).map((x) => parseInt(x, 16)).join('.');
  if (/^[0-9a-f]{32}$/.test(label)) return (label.match(/.{4}/g) ?? []).join(':');
  return null;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

interface Resolution {
  rcode: Rcode;
  answers: Answer[];
  additionals: Answer[];
  authoritative: boolean;
}

export class DnsServer {
  readonly #opts: DnsOptions & { maxTcpConnections: number; tcpIdleMs: number };
  readonly #udp: UdpSocket;
  readonly #tcp: Server;
  readonly #conns = new Set<Socket>();
  #host = '';
  #port = 0;
  #closing: Promise<void> | null = null;

  private constructor(opts: DnsOptions) {
    this.#opts = {
      maxTcpConnections: DEFAULT_DNS_MAX_TCP_CONNECTIONS,
      tcpIdleMs: DEFAULT_DNS_TCP_IDLE_MS,
      ...opts,
    };
    const { host } = parseHostPort(opts.address);
    this.#udp = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4' });
    this.#udp.on('message', (msg, rinfo) => this.#onUdp(msg, rinfo.address, rinfo.port));
    // A bad datagram or an unreachable client must never take the gateway down.
    this.#udp.on('error', (err) => this.#opts.log.warn({ err }, 'DNS UDP socket error'));
    this.#tcp = createServer((socket) => this.#onTcp(socket));
    this.#tcp.maxConnections = this.#opts.maxTcpConnections;
    this.#tcp.on('error', (err) => this.#opts.log.warn({ err }, 'DNS TCP server error'));
    for (const transport of ['udp', 'tcp'])
      for (const rcode of Object.keys(RCODE))
        opts.metrics.counter('switchboard_dns_queries_total', 'DNS queries answered, by transport and rcode', {
          transport,
          rcode,
        });
  }

  /** Binds UDP and TCP on the same port (with port 0, a port free on both). */
  static async start(opts: DnsOptions): Promise<DnsServer> {
    const { host, port } = parseHostPort(opts.address);
    for (let attempt = 0; ; attempt++) {
      const server = new DnsServer(opts);
      try {
        await server.#bind(host, port);
        return server;
      } catch (err) {
        await server.close();
        // With an ephemeral port the TCP side may find the UDP port taken: pick another pair.
        if (port !== 0 || attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
  }

  get address(): string {
    return isIP(this.#host) === 6 ? `[${this.#host}]:${this.#port}` : `${this.#host}:${this.#port}`;
  }
  get port(): number {
    return this.#port;
  }

  async #bind(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#udp.once('error', reject);
      this.#udp.bind(port, host, () => {
        this.#udp.off('error', reject);
        resolve();
      });
    });
    const bound = this.#udp.address().port;
    await new Promise<void>((resolve, reject) => {
      this.#tcp.once('error', reject);
      this.#tcp.listen(bound, host, () => {
        this.#tcp.off('error', reject);
        resolve();
      });
    });
    this.#host = host;
    this.#port = bound;
  }

  /** Idempotent: stops both listeners and drops open TCP connections. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const c of this.#conns) c.destroy();
      await new Promise<void>((resolve) => {
        try {
          this.#udp.close(() => resolve());
        } catch {
          resolve(); // never bound
        }
      });
      await new Promise<void>((resolve) => (this.#tcp.listening ? this.#tcp.close(() => resolve()) : resolve()));
    })();
    return this.#closing;
  }

  #onUdp(msg: Buffer, address: string, port: number): void {
    const reply = this.answer(msg, 'udp');
    if (reply) this.#udp.send(reply, port, address);
  }

  #onTcp(socket: Socket): void {
    this.#conns.add(socket);
    socket.setTimeout(this.#opts.tcpIdleMs, () => socket.destroy());
    socket.on('close', () => this.#conns.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      // Each message is a 2-byte length and the message (RFC 1035 4.2.2); a length is at most 65535, so the
      // buffer never holds more than one message plus a partial one.
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        const reply = this.answer(buffered.subarray(2, 2 + length), 'tcp');
        buffered = buffered.subarray(2 + length);
        if (!reply) return socket.destroy();
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
      }
    });
  }

  /** The encoded answer to one query message, or null when it cannot even be parsed into a reply. */
  answer(message: Buffer, transport: 'udp' | 'tcp'): Buffer | null {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      if (message.length < 12) return null;
      // Echo the id with FORMERR so the client stops waiting.
      return this.#encode({ id: message.readUInt16BE(0), rcode: 'FORMERR', questions: [] }, transport, 0);
    }
    const question = query.questions?.[0];
    const recursion = (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
    if (query.type !== 'query' || !question || (query.questions?.length ?? 0) !== 1)
      return this.#encode({ id: query.id ?? 0, rcode: 'FORMERR', questions: query.questions ?? [] }, transport, 0);
    const resolution = this.resolve(question);
    const opt = query.additionals?.find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
    const maxUdp = opt ? Math.min(Math.max(opt.udpPayloadSize ?? UDP_MAX_PLAIN, UDP_MAX_PLAIN), UDP_MAX_EDNS) : 0;
    return this.#encode({ id: query.id ?? 0, questions: [question], ...resolution }, transport, recursion, maxUdp);
  }

  /** What the zone says about one question. */
  resolve(question: Question): Resolution {
    const none = (rcode: Rcode, authoritative = true): Resolution => ({
      rcode,
      answers: [],
      additionals: rcode === 'NXDOMAIN' || (rcode === 'NOERROR' && authoritative) ? [this.#soa()] : [],
      authoritative,
    });
    if (question.class !== 'IN' && question.class !== undefined) return none('REFUSED', false);
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const labels = name.split('.');
    if (labels[labels.length - 1] !== DNS_ZONE) return none('REFUSED', false);
    const ttl = this.#opts.ttlS;
    // dns-packet's types omit ANY (255), which it decodes as 'ANY'.
    const qtype: string = question.type;

    if (labels.length === 3 && labels[1] === 'addr') {
      const ip = ipFromAddrLabel(labels[0]);
      if (!ip) return none('NXDOMAIN');
      const type = isIP(ip) === 6 ? 'AAAA' : 'A';
      if (qtype !== type && qtype !== 'ANY') return none('NOERROR');
      return {
        rcode: 'NOERROR',
        answers: [{ name: question.name, type, ttl, data: ip }],
        additionals: [],
        authoritative: true,
      };
    }
    if (labels.length === 1) {
      if (qtype === 'SOA') return { rcode: 'NOERROR', answers: [this.#soa()], additionals: [], authoritative: true };
      return none('NOERROR');
    }
    if (labels.length < 3 || labels[labels.length - 2] !== 'service') return none('NXDOMAIN');

    const inner = labels.slice(0, -2).join('.');
    const found = this.#lookup(inner);
    if (!found) return none('NXDOMAIN');
    const providers = shuffle(
      found.providers.filter((p) => p.state === 'up' && (found.tag === null || p.tags.includes(found.tag))),
    );

    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    const seen = new Set<string>();
    if (qtype === 'SRV') {
      for (const p of providers) {
        const host = bareHost(p.host);
        const family = isIP(host);
        const target = family ? `${addrLabel(host)}.addr.${DNS_ZONE}` : host.replace(/\.$/, '');
        answers.push({ name: question.name, type: 'SRV', ttl, data: { priority: 1, weight: 1, port: p.port, target } });
        if (family && !seen.has(target)) {
          seen.add(target);
          additionals.push({ name: target, type: family === 6 ? 'AAAA' : 'A', ttl, data: host });
        }
      }
    } else if (qtype === 'A' || qtype === 'AAAA' || qtype === 'ANY') {
      for (const p of providers) {
        const host = bareHost(p.host);
        const family = isIP(host);
        const type = family === 4 ? 'A' : family === 6 ? 'AAAA' : null;
        if (!type || seen.has(host) || (qtype !== 'ANY' && qtype !== type)) continue;
        seen.add(host);
        answers.push({ name: question.name, type, ttl, data: host });
      }
    }
    if (answers.length === 0) return none('NOERROR');
    return { rcode: 'NOERROR', answers, additionals, authoritative: true };
  }

  /** `billing` → the service; `blue.billing` → tag `blue` of `billing` (a dotted service name wins if it exists). */
  #lookup(inner: string): { providers: Provider[]; tag: string | null } | null {
    const replica = this.#opts.replica;
    const whole = replica.service(inner);
    if (whole.length > 0) return { providers: whole, tag: null };
    const dot = inner.indexOf('.');
    if (dot > 0) {
      const providers = replica.service(inner.slice(dot + 1));
      if (providers.length > 0) return { providers, tag: inner.slice(0, dot) };
    }
    return null;
  }

  #soa(): Answer {
    return {
      name: DNS_ZONE,
      type: 'SOA',
      ttl: this.#opts.ttlS,
      data: {
        mname: `ns.${DNS_ZONE}`,
        rname: `hostmaster.${DNS_ZONE}`,
        serial: this.#opts.replica.rev % 2 ** 32,
        refresh: 3600,
        retry: 600,
        expire: 86_400,
        minimum: this.#opts.ttlS,
      },
    };
  }

  #encode(
    r: {
      id: number;
      rcode: Rcode;
      questions: Question[];
      answers?: Answer[];
      additionals?: Answer[];
      authoritative?: boolean;
    },
    transport: 'udp' | 'tcp',
    recursion: number,
    maxUdp = 0,
  ): Buffer {
    this.#opts.metrics.inc('switchboard_dns_queries_total', { transport, rcode: r.rcode });
    // An SOA in a negative answer belongs to the authority section (RFC 2308), addresses to the additional one.
    const soaOnly = r.answers?.length === 0 && r.additionals?.length === 1 && r.additionals[0].type === 'SOA';
    const packet = {
      type: 'response' as const,
      id: r.id,
      flags: (r.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | recursion | RCODE[r.rcode],
      questions: r.questions,
      answers: r.answers ?? [],
      authorities: soaOnly ? (r.additionals ?? []) : [],
      additionals: soaOnly ? [] : (r.additionals ?? []),
    };
    let out = dnsPacket.encode(packet);
    const limit = transport === 'udp' ? maxUdp || UDP_MAX_PLAIN : 65_535;
    if (out.length <= limit) return out;
    // Too big for the datagram: keep what fits and set TC, so the resolver asks again over TCP.
    packet.additionals = [];
    packet.flags |= dnsPacket.TRUNCATED_RESPONSE;
    while (packet.answers.length > 0 && dnsPacket.encodingLength(packet) > limit) packet.answers.pop();
    out = dnsPacket.encode(packet);
    return out;
  }
}

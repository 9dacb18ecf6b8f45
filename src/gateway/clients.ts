/**
 * Who a client is for limits (connection caps, write rate limits) and the audit log. A raw source address is the
 * wrong key: any local process can pick 127.0.0.2, 127.0.0.3, … and an IPv6 host usually holds a whole /64. So
 * every loopback address counts as one client (`loopback`), an IPv6 client is its /64, an IPv4 client its
 * address (IPv4-mapped IPv6 counts as the IPv4 address).
 */
import { isIPv4, isIPv6 } from 'node:net';

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = MAPPED_V4.exec(address);
  const ip = mapped ? mapped[1] : address;
  if (isIPv4(ip)) return ip.startsWith('127.') ? 'loopback' : ip;
  if (!isIPv6(ip)) return ip;
  const groups = expandV6(ip);
  if (groups.every((g, i) => (i < 7 ? g === 0 : g === 1))) return 'loopback';
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** Eight 16-bit groups of an IPv6 address (zone id dropped). */
function expandV6(address: string): number[] {
  const bare = address.split('%')[0];
  const [head, tail] = bare.includes('::') ? bare.split('::') : [bare, undefined];
  const parse = (part: string | undefined): number[] =>
    part ? part.split(':').flatMap((g) => (g.includes('.') ? v4Groups(g) : [parseInt(g, 16)])) : [];
  const left = parse(head);
  const right = parse(tail);
  const fill = tail === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...fill, ...right];
}

function v4Groups(v4: string): number[] {
  const b = v4.split('.').map(Number);
  return [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
}

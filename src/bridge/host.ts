/**
 * One spelling per address. `127.0.0.1`, `127.1`, `0x7f.0.0.1`, `2130706433`, `::ffff:127.0.0.1` and
 * `LOCALHOST.` name the same endpoints as `127.0.0.1` / `localhost`; stored as typed they would register the
 * same provider several times. The WHATWG URL host parser (what browsers and Node's fetch use) gives the
 * canonical form; an IPv4-mapped IPv6 address becomes its IPv4 address.
 */
import { isIPv4, isIPv6 } from 'node:net';

const MAPPED_V4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/** The canonical form of `host`, or null when it is not a hostname or an IP address (e.g. it carries a port). */
export function normalizeHost(host: string): string | null {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare.includes(':')) {
    if (!isIPv6(bare)) return null;
    let canonical: string;
    try {
      canonical = new URL(`http://[${bare}]`).hostname.slice(1, -1);
    } catch {
      return null; // a zone id (fe80::1%eth0) means nothing to another machine
    }
    const mapped = MAPPED_V4.exec(canonical);
    if (!mapped) return canonical;
    const hi = parseInt(mapped[1], 16);
    const lo = parseInt(mapped[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  let parsed: string;
  try {
    parsed = new URL(`http://${bare}`).hostname;
  } catch {
    return null;
  }
  if (parsed === '' || parsed.includes(':')) return null;
  const name = parsed.endsWith('.') ? parsed.slice(0, -1) : parsed;
  // Anything all-numeric the URL parser did not turn into an IPv4 address is not an address.
  if (/^[0-9.]+$/.test(name) && !isIPv4(name)) return null;
  return name;
}

/**
 * How our providers look in other tools' vocabularies (Prometheus labels, Consul health, DNS names). Pure
 * functions over `Provider`, shared by the Prometheus, Consul and DNS front doors so they agree with each other.
 */
import { isIP } from 'node:net';
import type { Provider, ProviderState } from '../bridge/index.ts';

/** `host:port`, with IPv6 literals bracketed, as Prometheus targets and URLs want them. */
export function hostPort(p: Pick<Provider, 'host' | 'port'>): string {
  const host = p.host.replace(/^\[|\]$/g, '');
  return `${isIP(host) === 6 ? `[${host}]` : host}:${p.port}`;
}

/** The host without IPv6 brackets. */
export function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, '');
}

/** A Prometheus label name made from free text: anything outside `[a-zA-Z0-9_]` becomes `_` (as consul_sd does). */
export function labelName(text: string): string {
  return text.replace(/[^a-zA-Z0-9_]/g, '_');
}

export type ConsulStatus = 'passing' | 'warning' | 'critical';

/** Our states in Consul's health words: up passes, pending is not yet proven (warning), down and maintenance fail. */
export function consulStatus(state: ProviderState): ConsulStatus {
  switch (state) {
    case 'up':
      return 'passing';
    case 'pending':
      return 'warning';
    case 'down':
    case 'maintenance':
      return 'critical';
  }
}

/** A stable RFC 4122-shaped id (Consul node ids are UUIDs) derived from a name, so every read gives the same one. */
export function uuidFrom(name: string): string {
  // FNV-1a, four rounds with different seeds: enough spread for an identifier, no crypto needed.
  const words: string[] = [];
  for (let seed = 0; seed < 4; seed++) {
    let h = 0x811c9dc5 ^ seed;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
    words.push((h >>> 0).toString(16).padStart(8, '0'));
  }
  const hex = words.join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function byId(a: Provider, b: Provider): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

import { createHash } from 'node:crypto';

/**
 * The id the server chooses for `POST /v1/providers`: a pure function of service, host, port and protocol, so a
 * provider that registers again after a restart gets the same id and no duplicate.
 */
export function providerIdFor(service: string, host: string, port: number, protocol: string): string {
  const digest = createHash('sha256').update(`${service}\0${host.toLowerCase()}\0${port}\0${protocol}`).digest('hex');
  return `${service}-${digest.slice(0, 12)}`;
}

/** The key two registrations share when they describe the same endpoint. */
export function addressKey(p: { service: string; host: string; port: number; protocol: string }): string {
  // join, not a template: one flat string instead of a tree of seven pieces (~190 bytes) kept as a map key.
  return [p.service, p.host.toLowerCase(), p.port, p.protocol].join('\0');
}

/** Registry records as the leader would store and publish them, for tests that fill a replica by hand. */
import type { Change, Provider, RegistryEvent } from '../../src/bridge/index.ts';

export function providerRecord(id: string, rev: number, over: Partial<Provider> = {}): Provider {
  return {
    id,
    service: 'billing',
    host: '127.0.0.1',
    port: 80,
    protocol: 'http',
    tags: [],
    meta: {},
    state: 'up',
    stateSince: 0,
    registeredAt: 0,
    updatedAt: 0,
    rev,
    ...over,
  };
}

export function eventOf(rev: number, change: Change, provider: Provider, epoch = 'E1'): RegistryEvent {
  return { epoch, rev, change, service: provider.service, provider, at: rev };
}

import type { Provider } from '../../src/bridge/index.ts';

/** A stored provider record as the leader writes it, for tests and benchmarks that feed the store directly. */
export function providerRecord(id: string, service: string, rev: number): Provider {
  const now = Date.now();
  return {
    id,
    service,
    host: '127.0.0.1',
    port: 9000 + (rev % 1000),
    protocol: 'rpc-server',
    tags: ['fixture'],
    meta: { rev: String(rev) },
    check: { type: 'zmq', endpoint: 'tcp://127.0.0.1:6001', intervalMs: 1000, misses: 3 },
    state: 'pending',
    stateSince: now,
    registeredAt: now,
    updatedAt: now,
    rev,
  };
}

/** In-process leaders on a real etcd cluster for the etcd store tests: an election, a store fenced by it. */
import type { Etcd3 } from 'etcd3';
import { createLogger, type Provider } from '../../src/bridge/index.ts';
import { Election, type Fence, type Term } from '../../src/leader/election.ts';
import { connectEtcd, EtcdStore, type EtcdStoreOptions } from '../../src/leader/etcd-store.ts';
import { waitFor } from '../helpers/wait.ts';

export const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'error' });

export interface TestLeader {
  client: Etcd3;
  election: Election;
  store: EtcdStore;
  /** Resolves with the term once this candidate is elected. */
  elected(timeoutMs?: number): Promise<Term>;
  close(): Promise<void>;
}

/**
 * A candidate with its own etcd client. `fence` defaults to the election's current term; a test passes its own
 * to play a process that still believes in an old term.
 */
export async function candidate(
  url: string,
  prefix: string,
  name: string,
  opts: { fence?: () => Fence | undefined; store?: Partial<EtcdStoreOptions>; ttlSeconds?: number } = {},
): Promise<TestLeader> {
  const client = connectEtcd(url);
  const election = new Election({ client, prefix, value: name, log, ttlSeconds: opts.ttlSeconds });
  const store = new EtcdStore({
    client,
    log,
    prefix,
    url,
    fence: opts.fence ?? (() => election.term),
    leaderValue: name,
    ...opts.store,
  });
  await election.start();
  return {
    client,
    election,
    store,
    elected: (timeoutMs = 15_000) => waitFor(() => election.term, { timeoutMs, what: `${name} elected` }),
    async close() {
      await election.close();
      await store.close();
      client.close();
    },
  };
}

/** A provider record as the registry would store it. */
export function provider(id: string, rev: number, service = 'svc', extra: Partial<Provider> = {}): Provider {
  const now = Date.now();
  return {
    id,
    service,
    host: '127.0.0.1',
    port: 1000 + (hash(id) % 60000),
    protocol: 'http',
    tags: [],
    meta: {},
    state: 'up',
    stateSince: now,
    registeredAt: now,
    updatedAt: now,
    rev,
    ...extra,
  };
}

function hash(s: string): number {
  let h = 0;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h;
}

/** A plain reader of the store (no election): what an operator or a new leader would find. */
export async function readStore(url: string, prefix: string): ReturnType<EtcdStore['read']> {
  const client = connectEtcd(url);
  try {
    return await new EtcdStore({ client, log, prefix, fence: () => undefined }).read();
  } finally {
    client.close();
  }
}

let n = 0;
/** A fresh key prefix per test, so tests sharing one cluster never see each other. */
export function freshPrefix(): string {
  return `/switchboard-test-${process.pid}-${++n}/`;
}

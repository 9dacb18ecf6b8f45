/**
 * What the registry needs from a durable store, whichever backend keeps it: the embedded SQLite file
 * (`./store.ts`, the default) or etcd (`./etcd-store.ts`, for several leaders in turn).
 *
 * Every method is async because etcd answers over the network. SQLite fits by wrapping its synchronous calls
 * ({@link sqliteStore}): the work still happens inside the call, the promise only reports it. The registry that
 * drives a store must therefore (a) keep one commit in flight at a time and stage what arrives meanwhile into
 * the next batch, and (b) acknowledge nothing before the commit's promise resolves.
 */
import type { AclPolicy, AclState, AclToken, Provider } from '../bridge/index.ts';
import type { Loaded, Store } from './store.ts';

export type { Loaded };

/**
 * One ACL write as the store keeps it: the records it puts and removes, and the version it makes (the stored
 * version + 1; a store refuses it with STORE_CONFLICT when its version is not `version - 1`).
 */
export interface AclChange {
  version: number;
  putPolicies: AclPolicy[];
  deletePolicies: string[];
  putTokens: AclToken[];
  deleteTokens: string[];
}

/** Which backend keeps the registry. */
export type StoreKind = 'sqlite' | 'etcd';

export interface RegistryStore {
  readonly kind: StoreKind;
  /** Where the data lives, for logs and `/v1/admin/cluster`: a file path, or `etcd://hosts` + prefix. */
  readonly path: string;
  /**
   * The state to start writing from, as the one writer: epoch, the last committed revision, every provider and
   * the last revision of each service. For etcd this also takes the writer role over (see `EtcdStore.load`), so
   * it needs the leadership first.
   */
  load(): Promise<Loaded>;
  /**
   * Writes one batch atomically as far as readers of the store can tell, ending at revision `rev`.
   *
   * Implementations read the iterables before their first `await` (the registry reuses its collections as soon
   * as the call returns). Resolves once the batch is durable; only then may the leader acknowledge it.
   *
   * Rejects with a {@link StoreError}. When it rejects with `STORE_UNAVAILABLE` the outcome is unknown (the
   * batch may have landed): the caller keeps those changes and includes them in its next commit (a superset,
   * later values win, a higher `rev`), and the store accepts that next commit whether or not the first landed.
   * `STORE_FENCED` means this process is no longer the writer: it must stop writing and reload as a standby.
   */
  commit(
    rev: number,
    puts: Iterable<Provider>,
    deletes: Iterable<string>,
    services?: Iterable<[string, number]>,
  ): Promise<void>;
  /**
   * Writes one ACL change in one transaction (fenced on etcd like `commit`). ACL writes touch no provider key and
   * not the registry's revision, and each backend runs its operations one at a time (SQLite inside the call, etcd
   * in its own queue), so an ACL commit cannot interleave with a provider commit. Rejects like `commit`.
   */
  commitAcl(change: AclChange): Promise<void>;
  /** The ACL state as stored now (read back after an ACL commit whose outcome was unknown). */
  readAcl(): Promise<AclState>;
  /** Releases the store; idempotent. */
  close(): Promise<void>;
}

/** Why a store refused or failed a commit. */
export type StoreErrorCode =
  /** The writer lost its leadership (its election key is gone or is someone else's): nothing was written. */
  | 'STORE_FENCED'
  /** No leadership was taken over yet (`load()` first): nothing was written. */
  | 'STORE_NOT_LEADER'
  /** The store could not be reached or has no quorum within the commit timeout; the outcome is unknown. */
  | 'STORE_UNAVAILABLE'
  /** The store changed under the writer (a restore, or a writer that ignored fencing): nothing was written. */
  | 'STORE_CONFLICT'
  /** The store refused the batch and wrote none of it (e.g. SQLite could not commit: disk full, I/O error). */
  | 'STORE_FAILED'
  /** The store was closed. */
  | 'STORE_CLOSED';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

export const DEFAULT_STORE_PREFIX = '/switchboard/';

/** Where the leader keeps the registry, from `--store` (absent: the SQLite file in `--data-dir`) and `--store-prefix`. */
export type StoreSpec = { kind: 'sqlite' } | { kind: 'etcd'; url: string; endpoints: string[]; prefix: string };

/** Parses `--store` / `--store-prefix`; throws an Error naming what is wrong. */
export function parseStoreSpec(store: string | undefined, prefix: string = DEFAULT_STORE_PREFIX): StoreSpec {
  if (store === undefined || store === '' || store === 'sqlite') return { kind: 'sqlite' };
  if (!prefix.startsWith('/') || !prefix.endsWith('/'))
    throw new Error(`--store-prefix must start and end with '/', got '${prefix}'`);
  return { kind: 'etcd', url: store, endpoints: parseEtcdUrl(store), prefix };
}

/** `etcd://127.0.0.1:2379,127.0.0.1:22379` → `['127.0.0.1:2379', '127.0.0.1:22379']`. */
export function parseEtcdUrl(url: string): string[] {
  const m = /^etcd:\/\/([^/?#]+)\/?$/.exec(url);
  if (!m) throw new Error(`--store must be etcd://host:port[,host:port...] (or absent for SQLite), got '${url}'`);
  const hosts = m[1].split(',').filter(Boolean);
  for (const h of hosts) {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(h) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(h))
      throw new Error(`bad etcd endpoint '${h}' in ${url} (want host:port)`);
    const port = Number(h.slice(h.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535) throw new Error(`bad port in etcd endpoint '${h}'`);
  }
  if (hosts.length === 0) throw new Error(`no etcd endpoint in ${url}`);
  return hosts;
}

/** The SQLite store behind the async interface. Its commits are synchronous, so they never overlap. */
export function sqliteStore(store: Store): RegistryStore {
  let closed = false;
  return {
    kind: 'sqlite',
    path: store.path,
    load: async () => store.load(),
    commit: async (rev, puts, deletes, services = []) => {
      if (closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
      try {
        store.commit(rev, puts, deletes, services);
      } catch (err) {
        // SQLite rolled the transaction back: nothing of the batch is on disk.
        throw new StoreError('STORE_FAILED', `SQLite could not commit revision ${rev}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
    commitAcl: async (change) => {
      if (closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
      try {
        store.commitAcl(change);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw new StoreError(
          'STORE_FAILED',
          `SQLite could not commit ACL version ${change.version}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    },
    readAcl: async () => store.readAcl(),
    close: async () => {
      closed = true;
      store.close();
    },
  };
}

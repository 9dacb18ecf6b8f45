/**
 * What the registry needs from a durable store, whichever backend keeps it: the embedded SQLite file
 * (`./store.ts`, the default) or etcd (`./etcd-store.ts`, for several leaders in turn).
 *
 * Every method is async because etcd answers over the network. SQLite fits by wrapping its synchronous calls
 * ({@link sqliteStore}): the work still happens inside the call, the promise only reports it. The registry that
 * drives a store must therefore (a) keep one commit in flight at a time and stage what arrives meanwhile into
 * the next batch, and (b) acknowledge nothing before the commit's promise resolves.
 */
import type { Provider } from '../bridge/index.ts';
import type { Loaded, Store } from './store.ts';

export type { Loaded };

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

/** The SQLite store behind the async interface. Its commits are synchronous, so they never overlap. */
export function sqliteStore(store: Store): RegistryStore {
  let closed = false;
  return {
    kind: 'sqlite',
    path: store.path,
    load: async () => store.load(),
    commit: async (rev, puts, deletes, services = []) => {
      if (closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
      store.commit(rev, puts, deletes, services);
    },
    close: async () => {
      closed = true;
      store.close();
    },
  };
}

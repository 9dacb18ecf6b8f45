/**
 * The registry in etcd (`--store etcd://host:port,host:port`, keys under a prefix, `/switchboard/` by default), so
 * several leader processes can take turns writing it: one at a time, elected through `./election.ts`.
 *
 * Keys, relative to the prefix:
 *   meta/epoch            the store's epoch (made once, by whoever reads the store first)
 *   meta/rev              the last committed Switchboard revision; written last by every batch (the commit mark)
 *   meta/pending          present only while a batch too big for one etcd transaction is being written
 *   meta/leader           the active leader's term, written when it takes over
 *   providers/<id>        the provider record (JSON)
 *   services/<name>       the last revision that changed the service
 *   acl/version           the ACL version (absent: never bootstrapped); written by every ACL change
 *   acl/policies/<name>   an ACL policy (JSON)
 *   acl/tokens/<accessor> an ACL token (JSON; the secret only as its SHA-256)
 *   election/<lease>      the candidates (see election.ts)
 *
 * Fencing: every write is an etcd transaction whose compare includes "the leader's election key still exists
 * with the create revision of its term", and "meta/rev is as this writer last left it". A leader that froze past
 * its lease and woke up finds its key gone (or re-created with another revision): the transaction does nothing.
 *
 * A batch larger than etcd's per-transaction op limit (`--max-txn-ops`, default 128) or request size is split
 * into several transactions. The first one also writes `meta/pending = rev`, the last one writes `meta/rev = rev`
 * and deletes `meta/pending`; the ones between compare `meta/pending == rev`. Nothing is acknowledged before the
 * last one, so a writer that dies in between has acknowledged none of it. The next leader finds `meta/pending`
 * and starts after it: the revisions of the half-written batch are never handed out again (no repeat), and the
 * events that were never published show as a gap, which every follower already answers with a snapshot.
 *
 * An ACL change (`commitAcl`) is one fenced transaction that also compares `acl/version` with the version it
 * follows. It touches neither provider keys nor meta/rev, and it runs in the same one-at-a-time queue as the
 * provider commits, so the two never interleave.
 */
import { Etcd3, Range, type IKeyValue, type ITxnResponse, type Namespace, type Watcher } from 'etcd3';
import {
  aclPolicyProblem,
  aclTokenProblem,
  EMPTY_ACL_STATE,
  newEpoch,
  type AclPolicy,
  type AclState,
  type AclToken,
  type Logger,
  type Provider,
} from '../bridge/index.ts';
import { withTimeout, type Fence } from './election.ts';
import {
  DEFAULT_STORE_PREFIX,
  parseEtcdUrl,
  StoreError,
  type AclChange,
  type Loaded,
  type RegistryStore,
} from './store-api.ts';

/** etcd's default `--max-txn-ops`. */
export const DEFAULT_MAX_TXN_OPS = 128;
/** Below etcd's default `--max-request-bytes` (1.5 MiB), leaving room for the compares and framing. */
export const DEFAULT_MAX_TXN_BYTES = 1024 * 1024;
/** A commit that etcd has not answered by then fails with STORE_UNAVAILABLE (outcome unknown). */
export const DEFAULT_COMMIT_TIMEOUT_MS = 3000;
/** Bound on any single etcd call (unary gRPC deadline). */
export const DEFAULT_ETCD_CALL_TIMEOUT_MS = 3000;
/** Keys per range request while loading. */
export const LOAD_PAGE_SIZE = 1000;

const META_EPOCH = 'meta/epoch';
const META_REV = 'meta/rev';
const META_PENDING = 'meta/pending';
const META_LEADER = 'meta/leader';
const PROVIDERS = 'providers/';
const SERVICES = 'services/';
export const ACL_DIR = 'acl/';
const ACL_VERSION = 'acl/version';
const ACL_POLICIES = 'acl/policies/';
const ACL_TOKENS = 'acl/tokens/';
/** Ops each split transaction keeps free for meta keys. */
const META_OPS = 2;

/** The keys (relative to the prefix) and values of a whole ACL state, as a restore writes them. */
export function aclKeys(acl: AclState | undefined): Array<{ key: string; value: string }> {
  if (!acl || acl.version === 0) return [];
  return [
    ...acl.policies.map((p) => ({ key: ACL_POLICIES + p.name, value: JSON.stringify(p) })),
    ...acl.tokens.map((t) => ({ key: ACL_TOKENS + t.accessor, value: JSON.stringify(t) })),
    { key: ACL_VERSION, value: String(acl.version) },
  ];
}

/** An etcd client for every member of `url`, with a deadline on every unary call (streams have none). */
export function connectEtcd(url: string, opts: { callTimeoutMs?: number } = {}): Etcd3 {
  const timeoutMs = opts.callTimeoutMs ?? DEFAULT_ETCD_CALL_TIMEOUT_MS;
  return new Etcd3({
    hosts: parseEtcdUrl(url),
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
    // A large registry loads in pages, but a page of big records must still fit (gRPC's default is 4 MiB).
    grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
  });
}

/** The store as read at one etcd revision. */
export interface EtcdSnapshot extends Loaded {
  /** The etcd revision the snapshot reflects. */
  storeRevision: number;
  /** Mod revision of meta/rev (what the next fenced write compares). */
  metaRevMod: string;
  /** meta/pending: a split batch was being written up to this revision. */
  pending: number | undefined;
}

export interface EtcdStoreOptions {
  client: Etcd3;
  log: Logger;
  /** Key prefix (default `/switchboard/`); the election must use the same one. */
  prefix?: string;
  /** For logs and the admin view, e.g. the `--store` URL. */
  url?: string;
  /** The current leadership term, or undefined when this process is not the leader (e.g. `() => election.term`). */
  fence: () => Fence | undefined;
  /** Written to meta/leader on take-over, for operators (e.g. the leader's control endpoint). */
  leaderValue?: string;
  maxTxnOps?: number;
  maxTxnBytes?: number;
  commitTimeoutMs?: number;
}

type Op = { key: string; value: string } | { key: string; value: undefined };

export class EtcdStore implements RegistryStore {
  readonly kind = 'etcd';
  readonly path: string;
  readonly prefix: string;
  readonly #ns: Namespace;
  readonly #log: Logger;
  readonly #fence: () => Fence | undefined;
  readonly #leaderValue: string;
  readonly #maxOps: number;
  readonly #maxBytes: number;
  /** Set by load() (the take-over): the fence this writer writes under and the meta/rev it last left. */
  #writer: { fence: Fence; metaRevMod: string } | undefined;
  /** Revisions of commits that failed with an unknown outcome: finding one of them in meta/rev is our own doing. */
  readonly #inDoubt = new Set<number>();
  #queue: Promise<unknown> = Promise.resolve();
  #follower: StoreFollower | undefined;
  #closed = false;
  /** Bound on each store operation, ms; may be changed at run time. */
  commitTimeoutMs: number;
  /** Transactions sent by commits (a split batch counts each). */
  transactions = 0;
  /** Whole-store reads (a take-over from a hot copy needs none). */
  fullReads = 0;

  constructor(opts: EtcdStoreOptions) {
    this.prefix = opts.prefix ?? DEFAULT_STORE_PREFIX;
    if (!this.prefix.endsWith('/')) throw new Error(`store prefix must end with '/': ${this.prefix}`);
    this.path = `${opts.url ?? 'etcd://'}${this.prefix}`;
    this.#ns = opts.client.namespace(this.prefix);
    this.#log = opts.log;
    this.#fence = opts.fence;
    this.#leaderValue = opts.leaderValue ?? '';
    this.#maxOps = opts.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
    this.#maxBytes = opts.maxTxnBytes ?? DEFAULT_MAX_TXN_BYTES;
    this.commitTimeoutMs = opts.commitTimeoutMs ?? DEFAULT_COMMIT_TIMEOUT_MS;
    if (this.#maxOps <= META_OPS) throw new Error(`maxTxnOps must be > ${META_OPS}`);
  }

  /** True once load() has taken the writer role over and until fencing or closing ends it. */
  get isWriter(): boolean {
    return this.#writer !== undefined;
  }

  /** Reads the whole store at one etcd revision, without writing (besides making the epoch of a new store). */
  async read(): Promise<EtcdSnapshot> {
    this.#assertOpen();
    this.fullReads++;
    await this.#ensureEpoch();
    const meta = await this.#ns.getAll().prefix('meta/').exec();
    const at = meta.header.revision;
    const byKey = new Map(meta.kvs.map((kv) => [kv.key.toString(), kv]));
    const revKv = byKey.get(META_REV);
    const providers: Provider[] = [];
    for (const kv of await this.#rangeAll(PROVIDERS, at)) providers.push(JSON.parse(kv.value.toString()) as Provider);
    const serviceRevs = new Map<string, number>();
    for (const kv of await this.#rangeAll(SERVICES, at))
      serviceRevs.set(kv.key.toString().slice(SERVICES.length), Number(kv.value.toString()));
    const acl = new AclRecords();
    for (const kv of await this.#rangeAll(ACL_DIR, at)) acl.apply(false, kv.key.toString(), kv.value.toString(), true);
    const pendingKv = byKey.get(META_PENDING);
    return {
      acl: acl.state(),
      epoch: byKey.get(META_EPOCH)!.value.toString(),
      rev: Number(revKv?.value.toString() ?? '0'),
      providers,
      serviceRevs,
      storeRevision: Number(at),
      metaRevMod: revKv?.mod_revision ?? '0',
      pending: pendingKv ? Number(pendingKv.value.toString()) : undefined,
    };
  }

  /**
   * A hot copy for a standby: read once, then kept current by a watch of the prefix from that revision.
   * The next load() (the take-over) uses it instead of reading everything again.
   */
  async follow(): Promise<StoreFollower> {
    this.#assertOpen();
    this.#follower ??= new StoreFollower(this, this.#ns, this.#log);
    await this.#follower.start();
    return this.#follower;
  }

  /**
   * Takes the writer role over for the current term and answers the state to continue from.
   *
   * One fenced transaction marks the take-over (meta/leader) and reads meta/rev and meta/pending; after it the
   * previous leader cannot write any more (its key is gone, or it is us). A half-written split batch of the
   * previous leader is closed by moving meta/rev past it. The providers come from the hot copy once it has seen
   * the take-over mark (everything before it), else from a full read.
   */
  async load(): Promise<Loaded> {
    return this.#serial(async () => {
      this.#assertOpen();
      this.#writer = undefined;
      const fence = this.#fence();
      if (!fence) throw new StoreError('STORE_NOT_LEADER', 'this process is not the leader: it cannot take the store');
      await this.#ensureEpoch();
      const marked = await this.#call(
        this.#fenced(fence)
          .then(
            this.#ns.put(META_LEADER).value(JSON.stringify({ term: fence.createRevision, value: this.#leaderValue })),
            this.#ns.get(META_REV),
            this.#ns.get(META_PENDING),
          )
          .else(this.#ns.get(fence.key))
          .commit(),
        'take-over',
      );
      if (!marked.succeeded) throw this.#fencedError();
      const revKv = marked.responses[1].response_range.kvs[0];
      const pendingKv = marked.responses[2].response_range.kvs[0];
      let rev = Number(revKv?.value.toString() ?? '0');
      let metaRevMod = revKv?.mod_revision ?? '0';
      if (pendingKv) {
        const pending = Number(pendingKv.value.toString());
        this.#log.warn(
          { rev, pending },
          'the previous leader stopped in the middle of a split batch: continuing after its revisions',
        );
        rev = Math.max(rev, pending);
        const closed = await this.#call(
          this.#fenced(fence)
            .and(META_REV, 'Mod', '==', metaRevMod)
            .then(this.#ns.put(META_REV).value(String(rev)), this.#ns.delete().key(META_PENDING))
            .commit(),
          'take-over',
        );
        if (!closed.succeeded) throw this.#fencedError();
        metaRevMod = closed.header.revision;
      }
      const markedAt = Number(marked.header.revision);
      let snapshot: EtcdSnapshot | undefined;
      let hot = false;
      if (this.#follower?.running) {
        try {
          await this.#follower.waitFor(markedAt, this.commitTimeoutMs);
          snapshot = this.#follower.snapshot();
          hot = true;
        } catch (err) {
          this.#log.warn({ err: (err as Error).message }, 'the hot copy is behind: reading the whole store');
        }
      }
      snapshot ??= await this.read();
      this.#writer = { fence, metaRevMod };
      this.#inDoubt.clear();
      this.#log.info(
        { term: fence.createRevision, rev, providers: snapshot.providers.length, hot },
        'took the store over',
      );
      return {
        epoch: snapshot.epoch,
        rev,
        providers: snapshot.providers,
        serviceRevs: snapshot.serviceRevs,
        acl: snapshot.acl,
      };
    });
  }

  commitAcl(change: AclChange): Promise<void> {
    const ops: Op[] = [
      ...change.deletePolicies.map((name) => ({ key: ACL_POLICIES + name, value: undefined })),
      ...change.putPolicies.map((p) => ({ key: ACL_POLICIES + p.name, value: JSON.stringify(p) })),
      ...change.deleteTokens.map((a) => ({ key: ACL_TOKENS + a, value: undefined })),
      ...change.putTokens.map((t) => ({ key: ACL_TOKENS + t.accessor, value: JSON.stringify(t) })),
      { key: ACL_VERSION, value: String(change.version) },
    ];
    return this.#serial(() => this.#commitAcl(change.version, ops));
  }

  /** The ACL state as stored now, after every store operation queued before this call. */
  readAcl(): Promise<AclState> {
    return this.#serial(async () => {
      this.#assertOpen();
      const acl = new AclRecords();
      const res = await this.#call(this.#ns.getAll().prefix(ACL_DIR).exec(), 'ACL read');
      for (const kv of res.kvs) acl.apply(false, kv.key.toString(), kv.value.toString(), true);
      return acl.state();
    });
  }

  commit(
    rev: number,
    puts: Iterable<Provider>,
    deletes: Iterable<string>,
    services: Iterable<[string, number]> = [],
  ): Promise<void> {
    // Read the caller's collections now: it reuses them as soon as this returns. One op per key, last one wins
    // (etcd refuses a transaction that names a key twice).
    const ops = new Map<string, Op>();
    for (const id of deletes) ops.set(PROVIDERS + id, { key: PROVIDERS + id, value: undefined });
    for (const p of puts) ops.set(PROVIDERS + p.id, { key: PROVIDERS + p.id, value: JSON.stringify(p) });
    for (const [name, r] of services) ops.set(SERVICES + name, { key: SERVICES + name, value: String(r) });
    return this.#serial(() => this.#commit(rev, [...ops.values()]));
  }

  /** Stops the hot copy; the etcd client belongs to the caller. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#writer = undefined;
    await this.#follower?.close();
  }

  async #commit(rev: number, ops: Op[]): Promise<void> {
    this.#assertOpen();
    const writer = this.#writer;
    if (!writer) throw new StoreError('STORE_NOT_LEADER', 'the store was not taken over (load() first)');
    const current = this.#fence();
    if (current?.createRevision !== writer.fence.createRevision) {
      this.#writer = undefined;
      throw new StoreError('STORE_FENCED', 'this process lost the leadership: it may not write');
    }
    const { fence } = writer;
    this.#inDoubt.add(rev);
    const chunks = this.#split(ops);
    const split = chunks.length > 1;
    const deadline = Date.now() + this.commitTimeoutMs;
    let restarts = 0;
    for (let i = 0; i < chunks.length;) {
      const first = i === 0;
      const last = i === chunks.length - 1;
      let txn = this.#fenced(fence).and(META_REV, 'Mod', '==', writer.metaRevMod);
      if (split && !first) txn = txn.and(META_PENDING, 'Value', '==', String(rev));
      const then = chunks[i].map((op) =>
        op.value === undefined ? this.#ns.delete().key(op.key) : this.#ns.put(op.key).value(op.value),
      );
      if (split && first) then.push(this.#ns.put(META_PENDING).value(String(rev)));
      if (last) then.push(this.#ns.put(META_REV).value(String(rev)));
      if (split && last) then.push(this.#ns.delete().key(META_PENDING));
      this.transactions++;
      const res: ITxnResponse = await this.#call(
        txn
          .then(...then)
          .else(this.#ns.get(fence.key), this.#ns.get(META_REV), this.#ns.get(META_PENDING))
          .commit(),
        `commit of revision ${rev}`,
        deadline,
      );
      if (res.succeeded) {
        if (last) writer.metaRevMod = res.header.revision;
        i++;
        continue;
      }
      // Why did the compare fail?
      const [fenceKv] = res.responses[0].response_range.kvs;
      const [revKv] = res.responses[1].response_range.kvs;
      if (fenceKv?.create_revision !== fence.createRevision) {
        this.#writer = undefined;
        throw this.#fencedError();
      }
      const stored = Number(revKv?.value.toString());
      if (revKv && revKv.mod_revision !== writer.metaRevMod) {
        writer.metaRevMod = revKv.mod_revision;
        // Our own last transaction landed on a try whose answer was lost: done.
        if (stored === rev) break;
        // An earlier commit that failed with an unknown outcome did land; this batch is a superset: write it whole.
        if (this.#inDoubt.has(stored) && restarts++ < 3) {
          i = 0;
          continue;
        }
        this.#writer = undefined;
        throw new StoreError(
          'STORE_CONFLICT',
          `the store changed under the leader (meta/rev is ${stored}, this leader wrote up to ${rev}): reload`,
        );
      }
      // meta/rev is as we left it but meta/pending is not ours: start the batch again from its first part.
      if (restarts++ < 3) {
        i = 0;
        continue;
      }
      this.#writer = undefined;
      throw new StoreError('STORE_CONFLICT', `meta/pending changed under the leader while writing revision ${rev}`);
    }
    this.#inDoubt.clear();
  }

  /** One fenced transaction, in order after the version it follows (an ACL change is a few keys). */
  async #commitAcl(version: number, ops: Op[]): Promise<void> {
    this.#assertOpen();
    const writer = this.#writer;
    if (!writer) throw new StoreError('STORE_NOT_LEADER', 'the store was not taken over (load() first)');
    if (this.#fence()?.createRevision !== writer.fence.createRevision) {
      this.#writer = undefined;
      throw new StoreError('STORE_FENCED', 'this process lost the leadership: it may not write');
    }
    const { fence } = writer;
    const follows =
      version === 1
        ? this.#fenced(fence).and(ACL_VERSION, 'Version', '==', 0)
        : this.#fenced(fence).and(ACL_VERSION, 'Value', '==', String(version - 1));
    const res = await this.#call(
      follows
        .then(
          ...ops.map((op) =>
            op.value === undefined ? this.#ns.delete().key(op.key) : this.#ns.put(op.key).value(op.value),
          ),
        )
        .else(this.#ns.get(fence.key), this.#ns.get(ACL_VERSION))
        .commit(),
      `ACL commit of version ${version}`,
    );
    if (res.succeeded) return;
    const [fenceKv] = res.responses[0].response_range.kvs;
    if (fenceKv?.create_revision !== fence.createRevision) {
      this.#writer = undefined;
      throw this.#fencedError();
    }
    const [versionKv] = res.responses[1].response_range.kvs;
    throw new StoreError(
      'STORE_CONFLICT',
      `the stored ACL version is ${versionKv?.value.toString() ?? 0}; version ${version} does not follow it`,
    );
  }

  /** Splits ops into transactions of at most maxOps - META_OPS ops and about maxBytes. */
  #split(ops: Op[]): Op[][] {
    const chunks: Op[][] = [[]];
    let bytes = 0;
    for (const op of ops) {
      const size = op.key.length + (op.value?.length ?? 0) + 16;
      const chunk = chunks[chunks.length - 1];
      if (chunk.length > 0 && (chunk.length >= this.#maxOps - META_OPS || bytes + size > this.#maxBytes)) {
        chunks.push([op]);
        bytes = size;
      } else {
        chunk.push(op);
        bytes += size;
      }
    }
    return chunks;
  }

  #fenced(fence: Fence) {
    return this.#ns.if(fence.key, 'Create', '==', fence.createRevision);
  }

  #fencedError(): StoreError {
    return new StoreError(
      'STORE_FENCED',
      'this process is no longer the leader (its election key is gone): the write was refused',
    );
  }

  /** Makes epoch and rev of a new store, once, whoever comes first. */
  async #ensureEpoch(): Promise<void> {
    await this.#call(
      this.#ns
        .if(META_EPOCH, 'Version', '==', 0)
        .then(this.#ns.put(META_EPOCH).value(newEpoch()), this.#ns.put(META_REV).value('0'))
        .commit()
        .then((res) => {
          if (res.succeeded) this.#log.info({ path: this.path }, 'created a new store');
          return res;
        }),
      'store creation',
    );
  }

  /** Every key under `dir`, page by page, all at etcd revision `at` (one consistent view). */
  async #rangeAll(dir: string, at: string): Promise<IKeyValue[]> {
    const out: IKeyValue[] = [];
    const end = Range.prefix(dir).end;
    let start: Buffer = Buffer.from(dir);
    for (;;) {
      const page = await this.#call(
        this.#ns.getAll().inRange({ start, end }).revision(at).sort('Key', 'Ascend').limit(LOAD_PAGE_SIZE).exec(),
        'load',
      );
      out.push(...page.kvs);
      if (!page.more || page.kvs.length === 0) return out;
      start = Buffer.concat([Buffer.from(page.kvs[page.kvs.length - 1].key), Buffer.from([0])]);
    }
  }

  /** An etcd call bounded by the commit timeout (or `deadline`); any failure becomes STORE_UNAVAILABLE. */
  async #call<T>(promise: Promise<T>, what: string, deadline = Date.now() + this.commitTimeoutMs): Promise<T> {
    try {
      return await withTimeout(promise, Math.max(1, deadline - Date.now()), what);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('STORE_UNAVAILABLE', `etcd unavailable: ${what} failed (${(err as Error).message})`, {
        cause: err,
      });
    }
  }

  /** One store operation at a time, in call order. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
  }
}

/**
 * A standby's hot copy of the store: one full read, then every change from a watch of the prefix, resumed by the
 * etcd client across member failures. A watch that cannot resume (its revision was compacted) reads everything
 * again.
 */
export class StoreFollower {
  readonly #store: EtcdStore;
  readonly #ns: Namespace;
  readonly #log: Logger;
  #epoch = '';
  #rev = 0;
  #pending: number | undefined;
  #metaRevMod = '0';
  readonly #providers = new Map<string, Provider>();
  readonly #serviceRevs = new Map<string, number>();
  #acl = new AclRecords();
  #watcher: Watcher | undefined;
  #waiters: Array<{ revision: number; resolve: () => void }> = [];
  #starting: Promise<void> | undefined;
  #closed = false;
  /** The etcd revision this copy is known to reflect. */
  appliedRevision = 0;
  /** Changes applied from the watch. */
  applied = 0;

  constructor(store: EtcdStore, ns: Namespace, log: Logger) {
    this.#store = store;
    this.#ns = ns;
    this.#log = log;
  }

  get running(): boolean {
    return this.#watcher !== undefined && !this.#closed;
  }

  /** The copy now (the Switchboard revision is meta/rev, or meta/pending past it). */
  snapshot(): EtcdSnapshot {
    return {
      epoch: this.#epoch,
      rev: Math.max(this.#rev, this.#pending ?? 0),
      providers: [...this.#providers.values()],
      serviceRevs: new Map(this.#serviceRevs),
      acl: this.#acl.state(),
      storeRevision: this.appliedRevision,
      metaRevMod: this.#metaRevMod,
      pending: this.#pending,
    };
  }

  get size(): number {
    return this.#providers.size;
  }

  /** Resolves once the copy reflects etcd revision `revision` (a change under the prefix at or after it was seen). */
  waitFor(revision: number, timeoutMs: number): Promise<void> {
    if (this.appliedRevision >= revision) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.#waiters.push({ revision, resolve })),
      timeoutMs,
      `hot copy reaching etcd revision ${revision}`,
    );
  }

  start(): Promise<void> {
    this.#starting ??= this.#restart();
    return this.#starting;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#watcher?.cancel().catch(() => undefined);
    this.#watcher = undefined;
  }

  async #restart(): Promise<void> {
    if (this.#closed) return;
    const old = this.#watcher;
    this.#watcher = undefined;
    await old?.cancel().catch(() => undefined);
    const snap = await this.#store.read();
    this.#epoch = snap.epoch;
    this.#rev = snap.rev;
    this.#pending = snap.pending;
    this.#metaRevMod = snap.metaRevMod;
    this.#providers.clear();
    for (const p of snap.providers) this.#providers.set(p.id, p);
    this.#serviceRevs.clear();
    for (const [k, v] of snap.serviceRevs) this.#serviceRevs.set(k, v);
    this.#acl = AclRecords.from(snap.acl);
    this.#advance(snap.storeRevision);
    if (this.#closed) return;
    const watcher = this.#ns
      .watch()
      .prefix('')
      .startRevision(String(snap.storeRevision + 1))
      .watcher();
    watcher.on('data', (res) => {
      let top = 0;
      for (const ev of res.events) {
        try {
          this.#apply(ev.type === 'Delete', ev.kv);
        } catch (err) {
          // Only a writer that is not Switchboard could put an unreadable record here: say so, keep following.
          this.#log.error({ err: (err as Error).message, key: ev.kv.key.toString() }, 'unreadable record in the store');
        }
        top = Math.max(top, Number(ev.kv.mod_revision));
      }
      this.#advance(top);
    });
    watcher.on('error', (err) => {
      if (this.#closed || this.#watcher !== watcher) return;
      this.#log.warn({ err: err.message }, 'store watch failed: reading the whole store again');
      this.#starting = this.#restart().catch((e: Error) => this.#log.error({ err: e.message }, 'store reload failed'));
    });
    this.#watcher = watcher;
  }

  #apply(deleted: boolean, kv: IKeyValue): void {
    const key = kv.key.toString();
    const value = kv.value.toString();
    this.applied++;
    if (key.startsWith(PROVIDERS)) {
      const id = key.slice(PROVIDERS.length);
      if (deleted) this.#providers.delete(id);
      else this.#providers.set(id, JSON.parse(value) as Provider);
    } else if (key.startsWith(SERVICES)) {
      const name = key.slice(SERVICES.length);
      if (deleted) this.#serviceRevs.delete(name);
      else this.#serviceRevs.set(name, Number(value));
    } else if (key === META_REV) {
      this.#rev = Number(value);
      this.#metaRevMod = kv.mod_revision;
    } else if (key === META_PENDING) this.#pending = deleted ? undefined : Number(value);
    else if (key === META_EPOCH && !deleted) this.#epoch = value;
    else if (key.startsWith(ACL_DIR)) this.#acl.apply(deleted, key, value, false);
  }

  #advance(revision: number): void {
    if (revision <= this.appliedRevision) return;
    this.appliedRevision = revision;
    const due = this.#waiters.filter((w) => w.revision <= revision);
    if (due.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.revision > revision);
    for (const w of due) w.resolve();
  }
}

/**
 * The `acl/` keys as records: what a full read collects and what the hot copy keeps current. A record that is not
 * a valid token or policy fails a full read (`strict`: a take-over must not run on damaged ACLs); the watch throws
 * too, and its caller logs the key and keeps following.
 */
class AclRecords {
  #version = 0;
  readonly #policies = new Map<string, AclPolicy>();
  readonly #tokens = new Map<string, AclToken>();

  static from(state: AclState): AclRecords {
    const r = new AclRecords();
    r.#version = state.version;
    for (const p of state.policies) r.#policies.set(p.name, p);
    for (const t of state.tokens) r.#tokens.set(t.accessor, t);
    return r;
  }

  apply(deleted: boolean, key: string, value: string, strict: boolean): void {
    if (key === ACL_VERSION) {
      const version = deleted ? 0 : Number(value);
      if (!Number.isSafeInteger(version) || version < 0) throw new Error(`${key} is not a version: '${value}'`);
      this.#version = version;
    } else if (key.startsWith(ACL_POLICIES)) {
      const name = key.slice(ACL_POLICIES.length);
      if (deleted) this.#policies.delete(name);
      else
        this.#policies.set(
          name,
          checked<AclPolicy>(key, value, aclPolicyProblem, (p) => p.name === name),
        );
    } else if (key.startsWith(ACL_TOKENS)) {
      const accessor = key.slice(ACL_TOKENS.length);
      if (deleted) this.#tokens.delete(accessor);
      else
        this.#tokens.set(
          accessor,
          checked<AclToken>(key, value, aclTokenProblem, (t) => t.accessor === accessor),
        );
    } else if (strict) throw new Error(`unknown ACL key ${key}`);
  }

  state(): AclState {
    if (this.#version === 0) return EMPTY_ACL_STATE;
    return { version: this.#version, tokens: [...this.#tokens.values()], policies: [...this.#policies.values()] };
  }
}

function checked<T>(
  key: string,
  value: string,
  problemOf: (v: unknown) => string | undefined,
  named: (v: T) => boolean,
): T {
  let body: unknown;
  try {
    body = JSON.parse(value);
  } catch (err) {
    throw new Error(`${key} is not JSON (${(err as Error).message})`);
  }
  const problem = problemOf(body);
  if (problem) throw new Error(`${key} is invalid: ${problem}`);
  if (!named(body as T)) throw new Error(`${key} holds a record of another name`);
  return body as T;
}

/**
 * Leader election through etcd, as etcd's own `concurrency.Election` does it: each candidate puts a key under
 * `<prefix>election/` attached to its lease; the key with the lowest create revision is the leader, and that
 * create revision is its **term** (unique, and growing with each new leader). A candidate waits for every older
 * key to disappear (resign, or lease expiry when its holder died or froze).
 *
 * Losing is decided locally as well as by etcd: the lease is refreshed every ttl/3, and when no refresh has been
 * acknowledged for a whole TTL (counted from when the refresh was *sent*, so never later than etcd's own expiry)
 * the leader steps down at once, before etcd has even noticed. A store write is fenced on top of that (see
 * `EtcdStore`): it only lands while the election key with this term exists.
 *
 * We drive the lease ourselves rather than use the etcd3 package's `Campaign`: its lease declares itself lost only
 * after twice the TTL without an answer, and it hides the key's create revision, which is the fence.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, Lease, Namespace, Watcher } from 'etcd3';
import type { Logger } from '../bridge/index.ts';

/** Lease TTL in seconds. etcd 3.4 grants at least 2 s with its default election timeout; a SIGKILLed leader's
 * key goes 1.8–2.4 s later (measured here), which keeps failover under 3 s. */
export const DEFAULT_ELECTION_TTL_S = 2;
/** Pause before campaigning again after a loss or a failed attempt. */
export const DEFAULT_CAMPAIGN_RETRY_MS = 500;
export const ELECTION_DIR = 'election/';

/** What a fenced write compares: the leader's election key (relative to the store prefix) and its create revision. */
export interface Fence {
  readonly key: string;
  readonly createRevision: string;
}

/** One tenure of leadership. */
export interface Term extends Fence {
  /** The term number: the election key's create revision. */
  readonly term: number;
  /** The etcd revision at which this candidate saw itself first in line. */
  readonly revision: number;
}

export interface Candidate {
  value: string;
  createRevision: number;
}

export interface ElectionOptions {
  client: Etcd3;
  /** Key prefix shared with the store, e.g. `/switchboard/`. */
  prefix: string;
  /** What this candidate announces (e.g. its control endpoint); others read it as the active leader. */
  value: string;
  ttlSeconds?: number;
  retryMs?: number;
  log: Logger;
}

type ElectionEvents = {
  /** This process became the leader. */
  elected: [term: Term];
  /** This process was the leader and no longer is. */
  lost: [reason: string];
  /** The observed leader's value changed (undefined: none right now). */
  leader: [value: string | undefined];
};

export class Election extends EventEmitter<ElectionEvents> {
  readonly #ns: Namespace;
  readonly #value: string;
  readonly #ttlMs: number;
  readonly #retryMs: number;
  readonly #log: Logger;
  /** Bumped by every loss: work of an older campaign is ignored. */
  #generation = 0;
  #lease: Lease | undefined;
  #key: string | undefined;
  #createRevision: string | undefined;
  #term: Term | undefined;
  /** Local bound on the lease: the send time of the last acknowledged refresh + TTL. */
  #validUntil = 0;
  #keepTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #watcher: Watcher | undefined;
  #evaluating: Promise<void> | undefined;
  #dirty = false;
  #leader: string | undefined;
  #started = false;
  #closed = false;
  /** How many times this process has become the leader. */
  elections = 0;

  constructor(opts: ElectionOptions) {
    super();
    this.#ns = opts.client.namespace(opts.prefix + ELECTION_DIR);
    this.#value = opts.value;
    this.#ttlMs = (opts.ttlSeconds ?? DEFAULT_ELECTION_TTL_S) * 1000;
    this.#retryMs = opts.retryMs ?? DEFAULT_CAMPAIGN_RETRY_MS;
    this.#log = opts.log;
    if (!Number.isInteger(this.#ttlMs / 1000) || this.#ttlMs < 1000)
      throw new RangeError(`election TTL must be a whole number of seconds >= 1, got ${this.#ttlMs / 1000}`);
  }

  /** True while this process holds the leadership and its lease is certainly alive. */
  get isLeader(): boolean {
    return this.#term !== undefined && Date.now() < this.#validUntil;
  }

  /** The current term while leader. */
  get term(): Term | undefined {
    return this.isLeader ? this.#term : undefined;
  }

  /** The observed leader's value (this process's own while it leads). */
  get leader(): string | undefined {
    return this.#leader;
  }

  /** Starts observing and campaigning; resolves once the first campaign is registered (or has failed). */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#watcher = await this.#ns.watch().prefix('').create();
    this.#watcher.on('put', () => this.#evaluate());
    this.#watcher.on('delete', () => this.#evaluate());
    // After a reconnect the watch resumes from its last revision, but read the line again anyway.
    this.#watcher.on('connected', () => this.#evaluate());
    this.#watcher.on('error', (err) => this.#log.warn({ err }, 'election watch failed'));
    await this.#campaign();
  }

  /** Every candidate in line, the leader first. */
  async candidates(): Promise<Candidate[]> {
    const res = await this.#ns.getAll().sort('Create', 'Ascend').exec();
    return res.kvs.map((kv) => ({ value: kv.value.toString(), createRevision: Number(kv.create_revision) }));
  }

  /** Resigns (revokes the lease, so a standby takes over at once) and stops. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const lease = this.#lease;
    this.#lose('resigned: closing');
    await this.#watcher?.cancel().catch(() => undefined);
    if (lease) await withTimeout(lease.revoke(), this.#ttlMs, 'lease revoke').catch(() => undefined);
  }

  async #campaign(): Promise<void> {
    if (this.#closed) return;
    const generation = this.#generation;
    const lease = this.#ns.lease(this.#ttlMs / 1000, { autoKeepAlive: false });
    this.#lease = lease;
    lease.on('lost', (err: Error) => this.#lose(`etcd says our lease is gone (${err.message})`, generation));
    try {
      const sentAt = Date.now();
      const id = await withTimeout(lease.grant(), this.#ttlMs, 'lease grant');
      if (generation !== this.#generation) return;
      this.#renewed(sentAt);
      const key = BigInt(id).toString(16);
      const res = await withTimeout(
        this.#ns
          .if(key, 'Create', '==', 0)
          .then(this.#ns.put(key).value(this.#value).lease(id))
          .else(this.#ns.get(key))
          .commit(),
        this.#ttlMs,
        'campaign',
      );
      if (generation !== this.#generation) return;
      this.#key = key;
      this.#createRevision = res.succeeded
        ? res.header.revision
        : res.responses[0].response_range.kvs[0].create_revision;
      this.#keepTimer = setInterval(() => this.#keepAlive(generation), Math.floor(this.#ttlMs / 3));
      this.#log.debug({ key, createRevision: this.#createRevision }, 'campaigning');
      this.#evaluate();
    } catch (err) {
      this.#lose(`campaign failed: ${(err as Error).message}`, generation);
    }
  }

  #keepAlive(generation: number): void {
    const lease = this.#lease;
    if (!lease || generation !== this.#generation) return;
    const sentAt = Date.now();
    withTimeout(lease.keepaliveOnce(), this.#ttlMs, 'lease keep-alive').then(
      (res) => {
        if (generation !== this.#generation) return;
        if (res.TTL === '0') this.#lose('etcd says our lease expired', generation);
        else this.#renewed(sentAt);
      },
      (err: Error) => this.#log.warn({ err: err.message }, 'lease keep-alive failed; retrying'),
    );
  }

  /** A refresh sent at `sentAt` was acknowledged: the lease lives at least until sentAt + TTL. */
  #renewed(sentAt: number): void {
    this.#validUntil = Math.max(this.#validUntil, sentAt + this.#ttlMs);
    clearTimeout(this.#watchdog);
    const generation = this.#generation;
    this.#watchdog = setTimeout(
      () =>
        this.#lose(
          `no lease refresh acknowledged by etcd for ${this.#ttlMs} ms: our lease may have expired`,
          generation,
        ),
      this.#validUntil - Date.now(),
    );
  }

  /** Reads the line of candidates again (coalesced: one read in flight, one more if something changed meanwhile). */
  #evaluate(): void {
    if (this.#evaluating) {
      this.#dirty = true;
      return;
    }
    this.#evaluating = this.#readLine()
      .catch((err: Error) => {
        this.#log.warn({ err: err.message }, 'reading the election failed');
        if (!this.#closed) this.#dirty = true;
      })
      .finally(() => {
        this.#evaluating = undefined;
        if (this.#dirty && !this.#closed) {
          this.#dirty = false;
          // A failed read is retried after a pause; a change is read at once.
          setTimeout(() => this.#evaluate(), 50).unref();
        }
      });
  }

  async #readLine(): Promise<void> {
    const generation = this.#generation;
    const res = await withTimeout(this.#ns.getAll().sort('Create', 'Ascend').exec(), this.#ttlMs, 'election read');
    if (this.#closed) return;
    const first = res.kvs[0];
    const leader = first?.value.toString();
    if (leader !== this.#leader) {
      this.#leader = leader;
      this.emit('leader', leader);
    }
    if (generation !== this.#generation || this.#key === undefined) return;
    const mine = res.kvs.find((kv) => kv.key.toString() === this.#key);
    if (!mine || mine.create_revision !== this.#createRevision) {
      this.#lose('our election key is gone (lease expired or revoked)', generation);
      return;
    }
    if (this.#term || first !== mine || Date.now() >= this.#validUntil) return;
    this.#term = {
      key: ELECTION_DIR + this.#key,
      createRevision: this.#createRevision,
      term: Number(this.#createRevision),
      revision: Number(res.header.revision),
    };
    this.elections++;
    this.#log.info({ term: this.#term.term, value: this.#value }, 'elected leader');
    this.emit('elected', this.#term);
  }

  #lose(reason: string, generation = this.#generation): void {
    if (generation !== this.#generation) return;
    this.#generation++;
    const wasLeader = this.#term !== undefined;
    const lease = this.#lease;
    this.#term = undefined;
    this.#lease = undefined;
    this.#key = undefined;
    this.#createRevision = undefined;
    this.#validUntil = 0;
    clearInterval(this.#keepTimer);
    clearTimeout(this.#watchdog);
    // Give the lease back so our key goes now, not at expiry (best effort: etcd may be unreachable).
    if (lease && !this.#closed) withTimeout(lease.revoke(), this.#ttlMs, 'lease revoke').catch(() => lease.release());
    if (wasLeader) {
      this.#log.warn({ reason }, 'lost the leadership: stepping down');
      this.emit('lost', reason);
    } else if (!this.#closed) this.#log.info({ reason }, 'campaign interrupted');
    if (!this.#closed) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => void this.#campaign(), this.#retryMs);
    }
  }
}

/** Rejects after `ms` (the call itself goes on; its outcome is ignored). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from etcd within ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

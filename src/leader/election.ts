/**
 * Leader election through etcd, as etcd's own `concurrency.Election` does it: each candidate puts a key under
 * `<prefix>election/` attached to its lease; the key with the lowest create revision is the leader, and that
 * create revision is its **term** (unique, and growing with each new leader). A candidate waits for every older
 * key to disappear (resign, or lease expiry when its holder died or froze).
 *
 * Losing is decided locally as well as by etcd: the lease is refreshed every ttl/6, and when no refresh has been
 * acknowledged for a whole TTL (counted from when the refresh was *sent*, so never later than etcd's own expiry)
 * the leader steps down at once, before etcd has even noticed; if the lease turns out to have survived (etcd
 * keeps leases alive across its own raft elections), it leads again under the same term. A store write is fenced on top of that (see
 * `EtcdStore`): it only lands while the election key with this term exists.
 *
 * We drive the lease ourselves rather than use the etcd3 package's `Campaign`: its lease declares itself lost only
 * after twice the TTL without an answer, and it hides the key's create revision, which is the fence.
 */
import { EventEmitter } from 'node:events';
import { EtcdLeaseInvalidError, type Etcd3, type Namespace, type Watcher } from 'etcd3';
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
  readonly #client: Etcd3;
  readonly #ns: Namespace;
  readonly #value: string;
  readonly #ttlMs: number;
  readonly #retryMs: number;
  readonly #log: Logger;
  /** Bumped when a campaign ends (its lease is gone or given up): work of an older campaign is ignored. */
  #generation = 0;
  #leaseId: string | undefined;
  #key: string | undefined;
  #createRevision: string | undefined;
  #term: Term | undefined;
  /** Stepped down because refreshes went unanswered, but the lease may still live: resume if it does. */
  #suspended = false;
  /** Local bound on the lease: the send time of the last acknowledged refresh + TTL. */
  #validUntil = 0;
  #keepTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #watcher: Watcher | undefined;
  #evaluating: Promise<void> | undefined;
  #dirty = false;
  /** When the line of candidates was last read. */
  #lastRead = 0;
  #leader: string | undefined;
  #started = false;
  #closed = false;
  /** How many times this process has become the leader. */
  elections = 0;

  constructor(opts: ElectionOptions) {
    super();
    this.#client = opts.client;
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
    // .watcher() connects in the background (and again after a member dies, from its last revision).
    this.#watcher = this.#ns.watch().prefix('').watcher();
    this.#watcher.on('put', () => this.#evaluate());
    this.#watcher.on('delete', () => this.#evaluate());
    this.#watcher.on('connected', () => this.#evaluate());
    this.#watcher.on('error', (err) => this.#log.warn({ err: err.message }, 'election watch failed'));
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
    const leaseId = this.#leaseId;
    this.#lose('resigned: closing');
    await this.#watcher?.cancel().catch(() => undefined);
    if (leaseId) await this.#revoke(leaseId);
  }

  async #campaign(): Promise<void> {
    if (this.#closed) return;
    const generation = this.#generation;
    try {
      const sentAt = Date.now();
      const granted = await withTimeout(
        this.#client.leaseClient.leaseGrant({ TTL: this.#ttlMs / 1000 }),
        this.#ttlMs,
        'lease grant',
      );
      if (generation !== this.#generation) {
        void this.#revoke(granted.ID);
        return;
      }
      this.#leaseId = granted.ID;
      this.#renewed(sentAt);
      const key = BigInt(granted.ID).toString(16);
      const res = await withTimeout(
        this.#ns
          .if(key, 'Create', '==', 0)
          .then(this.#ns.put(key).value(this.#value).lease(granted.ID))
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
      this.#scheduleKeepAlive(generation, this.#keepEveryMs());
      this.#log.debug({ key, createRevision: this.#createRevision }, 'campaigning');
      this.#evaluate();
    } catch (err) {
      this.#lose(`campaign failed: ${(err as Error).message}`, generation);
    }
  }

  /**
   * Refreshes every TTL/6 (etcd's client uses TTL/3): a refresh lost while etcd elects a new raft leader then
   * still leaves another try before the local bound runs out. A failed refresh is tried again after 200 ms.
   */
  #keepEveryMs(): number {
    return Math.max(200, Math.floor(this.#ttlMs / 6));
  }

  #scheduleKeepAlive(generation: number, ms: number): void {
    clearTimeout(this.#keepTimer);
    this.#keepTimer = setTimeout(() => this.#keepAlive(generation), ms);
  }

  #keepAlive(generation: number): void {
    const leaseId = this.#leaseId;
    if (!leaseId || generation !== this.#generation || this.#closed) return;
    const sentAt = Date.now();
    this.#refresh(leaseId, Math.min(1000, this.#ttlMs / 2)).then(
      (ttl) => {
        if (generation !== this.#generation) return;
        if (ttl <= 0) {
          this.#lose('etcd says our lease expired', generation);
          return;
        }
        this.#renewed(sentAt);
        this.#scheduleKeepAlive(generation, this.#keepEveryMs());
        // The lease outlived the silence: the key (and its place in line) is still ours. A waiting candidate also
        // reads the line once per TTL, in case its watch missed the change that puts it first.
        if (this.#suspended || (!this.#term && Date.now() - this.#lastRead > this.#ttlMs)) this.#evaluate();
      },
      (err: Error) => {
        if (generation !== this.#generation) return;
        if (err instanceof EtcdLeaseInvalidError) {
          this.#lose('etcd says our lease is gone', generation);
          return;
        }
        this.#log.debug({ err: err.message }, 'lease refresh failed; trying again');
        this.#scheduleKeepAlive(generation, 200);
      },
    );
  }

  /** One keep-alive on its own stream, cancelled if etcd does not answer in time. Resolves with the TTL left. */
  async #refresh(leaseId: string, timeoutMs: number): Promise<number> {
    const stream = await withTimeout(
      this.#client.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs }),
      timeoutMs,
      'lease keep-alive',
    );
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.cancel();
        reject(new Error(`lease keep-alive: no answer from etcd within ${timeoutMs} ms`));
      }, timeoutMs);
      stream.on('data', (res) => {
        clearTimeout(timer);
        stream.end();
        resolve(Number(res.TTL));
      });
      stream.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      stream.write({ ID: leaseId });
    });
  }

  /** A refresh sent at `sentAt` was acknowledged: the lease lives at least until sentAt + TTL. */
  #renewed(sentAt: number): void {
    this.#validUntil = Math.max(this.#validUntil, sentAt + this.#ttlMs);
    clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => this.#silent(), this.#validUntil - Date.now());
  }

  /**
   * No refresh acknowledged for a whole TTL: etcd may already have let the lease go, so a leader steps down now.
   * The lease is kept and refreshed on: if etcd still knows it (it keeps leases alive across its own raft
   * elections), the key never went away, nobody else could be elected, and this candidate leads again.
   */
  #silent(): void {
    if (this.#closed || Date.now() < this.#validUntil) return;
    if (this.#term) {
      this.#term = undefined;
      this.#suspended = true;
      const reason = `no lease refresh acknowledged by etcd for ${this.#ttlMs} ms: our lease may have expired`;
      this.#log.warn({ reason }, 'lost the leadership: stepping down');
      this.emit('lost', reason);
    }
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
          setTimeout(() => this.#evaluate(), 50).unref();
        }
      });
  }

  async #readLine(): Promise<void> {
    const generation = this.#generation;
    const res = await withTimeout(this.#ns.getAll().sort('Create', 'Ascend').exec(), this.#ttlMs, 'election read');
    this.#lastRead = Date.now();
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
    this.#suspended = false;
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

  /** This campaign is over (its lease is gone, or we give it up): step down if leading, campaign again. */
  #lose(reason: string, generation = this.#generation): void {
    if (generation !== this.#generation) return;
    this.#generation++;
    const wasLeader = this.#term !== undefined;
    const leaseId = this.#leaseId;
    this.#term = undefined;
    this.#suspended = false;
    this.#leaseId = undefined;
    this.#key = undefined;
    this.#createRevision = undefined;
    this.#validUntil = 0;
    clearTimeout(this.#keepTimer);
    clearTimeout(this.#watchdog);
    // Give the lease back so our key goes now, not at expiry (best effort: etcd may be unreachable).
    if (leaseId && !this.#closed) void this.#revoke(leaseId);
    if (wasLeader) {
      this.#log.warn({ reason }, 'lost the leadership: stepping down');
      this.emit('lost', reason);
    } else if (!this.#closed) this.#log.info({ reason }, 'campaign interrupted');
    if (!this.#closed) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => void this.#campaign(), this.#retryMs);
    }
  }

  async #revoke(leaseId: string): Promise<void> {
    await withTimeout(this.#client.leaseClient.leaseRevoke({ ID: leaseId }), this.#ttlMs, 'lease revoke').catch(
      (err: Error) => this.#log.debug({ err: err.message }, 'lease revoke failed (it expires by itself)'),
    );
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

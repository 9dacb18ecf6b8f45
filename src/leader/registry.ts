/**
 * The leader's registry: the authoritative in-memory copy of the store, the revision counter, and group commit.
 *
 * A change is applied in memory, given the next revision and staged; staged changes are written as one store
 * commit (when: group-commit.ts). One commit is in flight at a time: what is staged meanwhile goes into the next.
 * Only once a commit resolves are its events published (in revision order) and its writers acknowledged.
 *
 * When the store fails (`STORE_UNAVAILABLE`: etcd without quorum; `STORE_FAILED`: SQLite could not write, e.g.
 * disk full), the failed batch is kept, newer changes are merged into it (later wins) and it is written again with
 * a capped backoff: the registry keeps deciding, and publishes once durable. A lost leadership (`STORE_FENCED`,
 * ...) ends the registry for good: the leader steps down. Readers that must see only durable state wait for
 * `committed()`.
 */
import {
  addressKey,
  compactProvider,
  LeaderError,
  providerIdFor,
  sameJson,
  type Change,
  type Logger,
  type Metrics,
  type Provider,
  type ProviderInput,
  type ProviderState,
  type RegistryEvent,
  type CheckResult,
} from '../bridge/index.ts';
import { GroupCommit } from './group-commit.ts';
import { StoreError, type Loaded, type RegistryStore } from './store-api.ts';

export { MAX_COMMIT_BATCH, MAX_COMMIT_DELAY_MS } from './group-commit.ts';
export const DEFAULT_HISTORY_SIZE = 10_000;
/** First pause before writing a failed batch again; doubles up to the cap. */
export const RETRY_MIN_MS = 50;
export const RETRY_MAX_MS = 1000;

/** Who registers, and how many providers they may own at once (ACLs on); absent with ACLs off. */
export interface PutOwner {
  /** Accessor id of the token. */
  owner: string;
  /** The token's quota: a put that would give it more providers is refused (SB_QUOTA_EXCEEDED). */
  maxProviders: number;
}

export interface PutResult {
  status: 200 | 201;
  provider: Provider;
  changed: boolean;
}

/** The store as the registry last found it, for pongs, /readyz and /metrics. */
export interface StoreHealth {
  healthy: boolean;
  /** Why the last commit failed, while unhealthy. */
  error?: string;
  /** Epoch milliseconds since the store has been failing. */
  since?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Changes on their way to the store, with who waits for them. */
interface Batch {
  events: RegistryEvent[];
  puts: Map<string, Provider>;
  deletes: Set<string>;
  services: Map<string, number>;
  waiters: Waiter[];
}

const emptyBatch = (): Batch => ({ events: [], puts: new Map(), deletes: new Set(), services: new Map(), waiters: [] });

/** Store errors after which this process may not write any more (another leader, or closed). */
const FATAL_CODES = new Set(['STORE_FENCED', 'STORE_NOT_LEADER', 'STORE_CONFLICT', 'STORE_CLOSED']);

export class Registry {
  readonly epoch: string;
  readonly #store: RegistryStore;
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #providers = new Map<string, Provider>();
  readonly #byAddress = new Map<string, string>();
  /** Last revision that changed each service, for events' `prev`. */
  readonly #serviceRev = new Map<string, number>();
  /** Providers per owner (token accessor), kept as records change: a quota check is one lookup, not a scan. */
  readonly #owned = new Map<string, number>();
  /** `prev` of a service the store no longer lists (emptied before a restart): see `Loaded.emptiedRev`. */
  readonly #emptiedRev: number;
  readonly #publish: (event: RegistryEvent) => void;
  readonly #onFenced: (err: Error) => void;
  readonly #onGiveUp: (err: Error) => void;
  readonly #failExitMs: number;
  #rev: number;
  #committedRev: number;
  /** Staged, not yet sent to the store. */
  #staged: Batch = emptyBatch();
  /** The one commit in flight. */
  #inFlight: Batch | undefined;
  /** A batch whose commit failed, waiting to be written again (with what was staged since merged in). */
  #retry: Batch | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelayMs = RETRY_MIN_MS;
  #failingSince: number | undefined;
  #lastError: string | undefined;
  #gaveUp = false;
  readonly #groupCommit: GroupCommit;
  // Recent committed events, for followers that missed some.
  readonly #history: RegistryEvent[] = [];
  readonly #historySize: number;
  /** Set when this registry may not write any more (leadership lost, store closed). */
  #failed: Error | null = null;
  #idleWaiters: Array<() => void> = [];
  /** Commits and the changes they carried: their ratio is the group-commit batch size. */
  commits = 0;
  committedChanges = 0;
  commitMs = 0;
  /** Commits that failed (each retry that fails counts). */
  commitFailures = 0;
  /** Told the duration of each commit (the leader's commit-duration histogram). */
  onCommit: ((seconds: number) => void) | undefined;

  constructor(
    store: RegistryStore,
    loaded: Loaded,
    opts: {
      log: Logger;
      /** Where the revision, commit and provider gauges are registered (none when absent). */
      metrics?: Metrics;
      publish: (event: RegistryEvent) => void;
      historySize?: number;
      /** True while more requests are already waiting to be read: a commit then waits for them (group-commit.ts). */
      moreWaiting?: () => boolean;
      /** The store says this process is no longer its writer (leadership lost): the leader steps down. */
      onFenced?: (err: Error) => void;
      /** The store has failed for `storeFailExitMs`: the leader gives up (exits, so a standby or supervisor acts). */
      onGiveUp?: (err: Error) => void;
      storeFailExitMs?: number;
    },
  ) {
    this.#groupCommit = new GroupCommit({
      staged: () => this.#staged.events.length,
      moreWaiting: opts.moreWaiting ?? (() => false),
      commit: () => this.flush(),
    });
    this.#store = store;
    this.#log = opts.log;
    this.#metrics = opts.metrics;
    this.#publish = opts.publish;
    this.#onFenced = opts.onFenced ?? (() => undefined);
    this.#onGiveUp = opts.onGiveUp ?? (() => undefined);
    this.#failExitMs = opts.storeFailExitMs ?? Infinity;
    this.#historySize = opts.historySize ?? DEFAULT_HISTORY_SIZE;
    this.epoch = loaded.epoch;
    this.#rev = loaded.rev;
    this.#committedRev = loaded.rev;
    for (const p of loaded.providers) {
      this.#providers.set(p.id, compactProvider(p));
      this.#byAddress.set(addressKey(p), p.id);
      this.#own(p.owner, 1);
    }
    for (const [service, rev] of loaded.serviceRevs) this.#serviceRev.set(service, rev);
    this.#emptiedRev = loaded.emptiedRev ?? 0;
    if (opts.metrics) this.#registerMetrics(opts.metrics);
  }

  #registerMetrics(metrics: Metrics): void {
    // Families are process-wide: a later term's registry declares them again, which points them at itself.
    metrics.gauge('switchboard_rev', 'Current revision', () => this.committedRev);
    metrics.collectedCounter('switchboard_store_commits_total', 'Store transactions committed', () => this.commits);
    metrics.collectedCounter(
      'switchboard_store_committed_changes_total',
      'Changes written by those transactions (changes / commits = group-commit batch size)',
      () => this.committedChanges,
    );
    metrics.collectedCounter(
      'switchboard_store_commit_seconds_total',
      'Time spent in store commits',
      () => this.commitMs / 1000,
    );
    metrics.gauge(
      'switchboard_store_healthy',
      '1 while store commits succeed, 0 while they fail and are retried',
      () => (this.storeHealth().healthy ? 1 : 0),
    );
    metrics.counter('switchboard_store_commit_failures_total', 'Store commits that failed (each failed retry counts)');
    // One observation per store transaction: the write and fsync of a group commit, not the wait to batch it.
    metrics.histogram('switchboard_store_commit_duration_seconds', 'Duration of each store commit');
    this.onCommit = (s) => metrics.observe('switchboard_store_commit_duration_seconds', undefined, s);
    metrics.gauge(
      'switchboard_providers',
      'Registered providers by state',
      () => {
        const counts: Record<string, number> = { pending: 0, up: 0, down: 0, maintenance: 0 };
        for (const p of this.all()) counts[p.state] = (counts[p.state] ?? 0) + 1;
        return Object.entries(counts).map(([state, n]) => [{ state }, n]);
      },
      ['state'],
    );
  }

  get rev(): number {
    return this.#rev;
  }
  get committedRev(): number {
    return this.#committedRev;
  }
  get size(): number {
    return this.#providers.size;
  }

  get(id: string): Provider | undefined {
    return this.#providers.get(id);
  }

  /** How many providers this token accessor registered (and still owns). */
  ownedBy(owner: string): number {
    return this.#owned.get(owner) ?? 0;
  }

  all(): IterableIterator<Provider> {
    return this.#providers.values();
  }

  /**
   * Register or update. `id` absent: derived from the address (POST). With `owner` (ACLs on) the provider is
   * recorded as that token's, and refused (SB_QUOTA_EXCEEDED) when the token would own more than its quota; a
   * provider it already owns never counts twice. Without `owner` the stored owner, if any, stays.
   */
  put(id: string | undefined, input: ProviderInput, now = Date.now(), owner?: PutOwner): PutResult {
    const key = addressKey(input);
    const providerId =
      id ?? this.#byAddress.get(key) ?? providerIdFor(input.service, input.host, input.port, input.protocol);
    const holder = this.#byAddress.get(key);
    if (holder !== undefined && holder !== providerId) {
      throw new LeaderError(
        409,
        'SB_ADDRESS_CONFLICT',
        `provider '${holder}' is already registered for ${input.service} at ${input.host}:${input.port} (${input.protocol})`,
      );
    }
    const previous = this.#providers.get(providerId);
    if (owner && previous?.owner !== owner.owner && this.ownedBy(owner.owner) >= owner.maxProviders) {
      throw new LeaderError(
        403,
        'SB_QUOTA_EXCEEDED',
        `token '${owner.owner}' already has ${this.ownedBy(owner.owner)} providers registered, its quota (maxProviders ${owner.maxProviders})`,
      );
    }
    const { check, tags = [], meta = {}, ...address } = input;
    if (previous) {
      const same =
        (!owner || previous.owner === owner.owner) &&
        addressKey(previous) === key &&
        previous.host === input.host &&
        // Key order is not a change: a client in another language may send meta or check fields in any order.
        sameJson(previous.check, check) &&
        sameJson(previous.tags, tags) &&
        sameJson(previous.meta, meta);
      if (same) return { status: 200, provider: previous, changed: false };
      const provider: Provider = { ...previous, ...address, tags, meta, updatedAt: now, rev: 0 };
      if (owner) provider.owner = owner.owner;
      if (check) provider.check = check;
      else {
        delete provider.check;
        // Without a check there is nothing to wait for: the provider is up unless an operator holds it.
        if (provider.state !== 'maintenance' && provider.state !== 'up') {
          provider.state = 'up';
          provider.stateSince = now;
        }
      }
      compactProvider(provider);
      this.#byAddress.delete(addressKey(previous));
      this.#byAddress.set(key, providerId);
      if (previous.service !== input.service) {
        // Moving a provider between services is a removal from one and a registration in the other.
        this.#stage('deregistered', { ...previous }, now, true);
        return { status: 200, provider: this.#stage('registered', provider, now), changed: true };
      }
      return { status: 200, provider: this.#stage('updated', provider, now), changed: true };
    }
    const provider: Provider = {
      id: providerId,
      ...address,
      tags,
      meta,
      state: check ? 'pending' : 'up',
      stateSince: now,
      registeredAt: now,
      updatedAt: now,
      rev: 0,
    };
    if (owner) provider.owner = owner.owner;
    if (check) provider.check = check;
    compactProvider(provider);
    this.#byAddress.set(key, providerId);
    return { status: 201, provider: this.#stage('registered', provider, now), changed: true };
  }

  remove(id: string, now = Date.now()): Provider {
    const previous = this.#providers.get(id);
    if (!previous) throw new LeaderError(404, 'SB_PROVIDER_NOT_FOUND', `provider '${id}' is not registered`);
    this.#byAddress.delete(addressKey(previous));
    return this.#stage('deregistered', { ...previous }, now, true);
  }

  /** A presence or maintenance transition. Returns the new record, or undefined when nothing changed. */
  setState(
    id: string,
    state: ProviderState,
    change: Change,
    lastCheck?: CheckResult,
    now = Date.now(),
  ): Provider | undefined {
    const previous = this.#providers.get(id);
    // A term that lost its leadership decides nothing more (the next leader does, from the workers' reports).
    if (this.#failed || !previous || previous.state === state) return undefined;
    const provider: Provider = { ...previous, state, stateSince: now, updatedAt: now, rev: 0 };
    if (lastCheck) provider.lastCheck = lastCheck;
    return this.#stage(change, provider, now);
  }

  /**
   * Resolves once everything staged so far is durable (and published). Rejects at once while the store fails
   * (`SB_STORE_UNAVAILABLE`: the changes are kept and written when it recovers, but cannot be confirmed now) and
   * when this registry may not write any more.
   */
  committed(): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failedError());
    const batch = this.#staged.events.length > 0 ? this.#staged : this.#inFlight;
    if (!batch && !this.#retry) return Promise.resolve();
    if (this.#retry) return Promise.reject(this.#unavailableError());
    return new Promise((resolve, reject) => batch!.waiters.push({ resolve, reject }));
  }

  /** Throws the error a client write gets while the store cannot take it (failing, or no longer ours). */
  assertWritable(): void {
    if (this.#failed) throw this.#failedError();
    if (this.#failingSince !== undefined) throw this.#unavailableError();
  }

  storeHealth(): StoreHealth {
    if (this.#failed) return { healthy: false, error: this.#failed.message };
    if (this.#failingSince === undefined) return { healthy: true };
    return { healthy: false, error: this.#lastError, since: this.#failingSince };
  }

  /** Nothing staged, in flight or waiting for a retry. */
  get idle(): boolean {
    return this.#staged.events.length === 0 && !this.#inFlight && !this.#retry;
  }

  /**
   * Writes what is staged, and waits (up to `timeoutMs`) until nothing is left to write: on a clean shutdown
   * everything decided is stored. Stops the retries; what could not be written by then is lost (never acknowledged).
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.#failed) return;
    if (this.#retry) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    this.flush();
    if (this.idle) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Stops for good: nothing more is written, acknowledged or published (the leadership is lost, or the leader is
   * closing after `drain`). Whoever still waits is told the leader is unavailable. Idempotent.
   */
  abandon(reason: Error): void {
    this.#failed ??= reason;
    this.#groupCommit.cancel();
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const err = this.#failedError();
    for (const batch of [this.#retry, this.#inFlight, this.#staged])
      for (const w of batch?.waiters.splice(0) ?? []) w.reject(err);
    this.#retry = undefined;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** The committed events after `since`, or undefined if the history no longer reaches back that far. */
  since(since: number): RegistryEvent[] | undefined {
    if (since >= this.#committedRev) return [];
    const first = this.#history[0];
    if (!first || first.rev > since + 1) return undefined;
    return this.#history.slice(since + 1 - first.rev);
  }

  /**
   * Starts a commit of whatever is staged now (with a failed batch, if one waits), unless one is in flight (it
   * then follows that one) or a failed batch waits for its retry timer.
   */
  flush(): void {
    this.#groupCommit.cancel();
    if (this.#inFlight || this.#retryTimer || this.#failed) return;
    let batch = this.#staged;
    this.#staged = emptyBatch();
    if (this.#retry) {
      batch = mergeInto(this.#retry, batch);
      this.#retry = undefined;
    }
    if (batch.events.length === 0) {
      this.#becameIdle();
      return;
    }
    this.#inFlight = batch;
    const rev = batch.events[batch.events.length - 1].rev;
    const started = performance.now();
    let commit: Promise<void>;
    try {
      commit = this.#store.commit(rev, batch.puts.values(), batch.deletes, batch.services);
    } catch (err) {
      commit = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    commit.then(
      () => this.#committedBatch(batch, rev, performance.now() - started),
      (err: unknown) => this.#failedBatch(batch, err as Error),
    );
  }

  #committedBatch(batch: Batch, rev: number, commitMs: number): void {
    this.#inFlight = undefined;
    if (this.#failed) return;
    this.#committedRev = rev;
    this.commits++;
    this.committedChanges += batch.events.length;
    this.commitMs += commitMs;
    this.onCommit?.(commitMs / 1000);
    if (this.#failingSince !== undefined) {
      this.#log.warn(
        { rev, failedForMs: Date.now() - this.#failingSince, changes: batch.events.length },
        'store recovered: commits succeed again',
      );
      this.#failingSince = undefined;
      this.#lastError = undefined;
    }
    this.#retryDelayMs = RETRY_MIN_MS;
    for (const event of batch.events) {
      this.#history.push(event);
      this.#publish(event);
    }
    if (this.#history.length > this.#historySize) this.#history.splice(0, this.#history.length - this.#historySize);
    for (const w of batch.waiters) w.resolve();
    // What was staged during this commit waited long enough already.
    this.flush();
  }

  #failedBatch(batch: Batch, err: Error): void {
    this.#inFlight = undefined;
    if (this.#failed) return;
    const code = err instanceof StoreError ? err.code : undefined;
    if (code && FATAL_CODES.has(code)) {
      this.#log.warn({ code, err: err.message }, 'store refused the commit: this leader may not write any more');
      this.abandon(err);
      this.#onFenced(err);
      return;
    }
    // Unknown outcome or nothing written: keep the batch, write it again (later changes merged in) after a pause.
    this.commitFailures++;
    this.#metrics?.inc('switchboard_store_commit_failures_total');
    this.#lastError = err.message;
    const now = Date.now();
    if (this.#failingSince === undefined) {
      this.#failingSince = now;
      this.#log.error(
        { err: err.message, code, changes: batch.events.length, rev: batch.events[batch.events.length - 1]?.rev },
        'store commit failed: refusing writes and retrying until it works again',
      );
    }
    this.#retry = batch;
    // Its writers cannot be told "done" now; the change stays and is stored once the store recovers.
    const unavailable = this.#unavailableError();
    for (const w of batch.waiters.splice(0)) w.reject(unavailable);
    for (const w of this.#staged.waiters.splice(0)) w.reject(unavailable);
    if (!this.#gaveUp && now - this.#failingSince >= this.#failExitMs) {
      this.#gaveUp = true;
      this.#onGiveUp(err);
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.flush();
    }, this.#retryDelayMs);
    this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, RETRY_MAX_MS);
  }

  #own(owner: string | undefined, delta: number): void {
    if (owner === undefined) return;
    const n = (this.#owned.get(owner) ?? 0) + delta;
    if (n > 0) this.#owned.set(owner, n);
    else this.#owned.delete(owner);
  }

  #becameIdle(): void {
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #unavailableError(): LeaderError {
    return new LeaderError(
      503,
      'SB_STORE_UNAVAILABLE',
      `the leader cannot write its store (${this.#lastError ?? 'failing'}); writes are refused until it recovers`,
    );
  }

  #failedError(): LeaderError {
    return new LeaderError(
      503,
      'SB_LEADER_UNAVAILABLE',
      `this leader stopped writing (${this.#failed?.message ?? 'closed'}); retry with the active leader`,
    );
  }

  #stage(change: Change, provider: Provider, now: number, removal = false): Provider {
    if (this.#failed) throw this.#failedError();
    this.#rev++;
    provider.rev = this.#rev;
    const staged = this.#staged;
    this.#own(this.#providers.get(provider.id)?.owner, -1);
    if (!removal) this.#own(provider.owner, 1);
    if (removal) {
      this.#providers.delete(provider.id);
      staged.puts.delete(provider.id);
      staged.deletes.add(provider.id);
    } else {
      this.#providers.set(provider.id, provider);
      staged.deletes.delete(provider.id);
      staged.puts.set(provider.id, provider);
    }
    const prev = this.#serviceRev.get(provider.service) ?? this.#emptiedRev;
    this.#serviceRev.set(provider.service, this.#rev);
    staged.services.set(provider.service, this.#rev);
    staged.events.push({
      epoch: this.epoch,
      rev: this.#rev,
      prev,
      change,
      service: provider.service,
      provider,
      at: now,
    });
    this.#groupCommit.staged();
    return provider;
  }
}

/** `older` with `newer` applied on top (later wins), as one batch: a superset written under the newer revision. */
function mergeInto(older: Batch, newer: Batch): Batch {
  for (const [id, p] of newer.puts) {
    older.deletes.delete(id);
    older.puts.set(id, p);
  }
  for (const id of newer.deletes) {
    older.puts.delete(id);
    older.deletes.add(id);
  }
  for (const [name, rev] of newer.services) older.services.set(name, rev);
  older.events.push(...newer.events);
  older.waiters.push(...newer.waiters);
  return older;
}

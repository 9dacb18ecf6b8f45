/**
 * The leader's registry: the authoritative in-memory copy of the store, the revision counter, and group commit.
 *
 * A change is applied in memory, given the next revision and staged; staged changes are written in one SQLite
 * transaction (when: group-commit.ts), then published in revision order, then acknowledged. Readers that must see
 * only durable state (snapshots) wait for `committed()`.
 */
import {
  addressKey,
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
import type { Store } from './store.ts';

export { MAX_COMMIT_BATCH, MAX_COMMIT_DELAY_MS } from './group-commit.ts';
export const DEFAULT_HISTORY_SIZE = 10_000;

export interface PutResult {
  status: 200 | 201;
  provider: Provider;
  changed: boolean;
}

export class Registry {
  readonly epoch: string;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #providers = new Map<string, Provider>();
  readonly #byAddress = new Map<string, string>();
  /** Last revision that changed each service, for events' `prev`. */
  readonly #serviceRev = new Map<string, number>();
  /** `prev` of a service the store no longer lists (emptied before a restart): see `Loaded.emptiedRev`. */
  readonly #emptiedRev: number;
  readonly #publish: (event: RegistryEvent) => void;
  #rev: number;
  #committedRev: number;
  // Staged, not yet durable.
  #staged: RegistryEvent[] = [];
  #stagedPuts = new Map<string, Provider>();
  #stagedDeletes = new Set<string>();
  #stagedServices = new Map<string, number>();
  readonly #groupCommit: GroupCommit;
  #waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  // Recent committed events, for followers that missed some.
  readonly #history: RegistryEvent[] = [];
  readonly #historySize: number;
  #failed: Error | null = null;
  /** Commits and the changes they carried: their ratio is the group-commit batch size. */
  commits = 0;
  committedChanges = 0;
  commitMs = 0;
  /** Told the duration of each commit (the leader's commit-duration histogram). */
  onCommit: ((seconds: number) => void) | undefined;

  constructor(
    store: Store,
    opts: {
      log: Logger;
      /** Where the revision, commit and provider gauges are registered (none when absent). */
      metrics?: Metrics;
      publish: (event: RegistryEvent) => void;
      historySize?: number;
      /** True while more requests are already waiting to be read: a commit then waits for them (group-commit.ts). */
      moreWaiting?: () => boolean;
    },
  ) {
    this.#groupCommit = new GroupCommit({
      staged: () => this.#staged.length,
      moreWaiting: opts.moreWaiting ?? (() => false),
      commit: () => this.flush(),
    });
    this.#store = store;
    this.#log = opts.log;
    this.#publish = opts.publish;
    this.#historySize = opts.historySize ?? DEFAULT_HISTORY_SIZE;
    const loaded = store.load();
    this.epoch = loaded.epoch;
    this.#rev = loaded.rev;
    this.#committedRev = loaded.rev;
    for (const p of loaded.providers) {
      this.#providers.set(p.id, p);
      this.#byAddress.set(addressKey(p), p.id);
    }
    for (const [service, rev] of loaded.serviceRevs) this.#serviceRev.set(service, rev);
    this.#emptiedRev = loaded.emptiedRev ?? 0;
    if (opts.metrics) this.#registerMetrics(opts.metrics);
  }

  #registerMetrics(metrics: Metrics): void {
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

  all(): IterableIterator<Provider> {
    return this.#providers.values();
  }

  /** Register or update. `id` absent: derived from the address (POST). */
  put(id: string | undefined, input: ProviderInput, now = Date.now()): PutResult {
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
    const { check, tags = [], meta = {}, ...address } = input;
    if (previous) {
      const same =
        addressKey(previous) === key &&
        previous.host === input.host &&
        // Key order is not a change: a client in another language may send meta or check fields in any order.
        sameJson(previous.check, check) &&
        sameJson(previous.tags, tags) &&
        sameJson(previous.meta, meta);
      if (same) return { status: 200, provider: previous, changed: false };
      const provider: Provider = { ...previous, ...address, tags, meta, updatedAt: now, rev: 0 };
      if (check) provider.check = check;
      else {
        delete provider.check;
        // Without a check there is nothing to wait for: the provider is up unless an operator holds it.
        if (provider.state !== 'maintenance' && provider.state !== 'up') {
          provider.state = 'up';
          provider.stateSince = now;
        }
      }
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
    if (check) provider.check = check;
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
    if (!previous || previous.state === state) return undefined;
    const provider: Provider = { ...previous, state, stateSince: now, updatedAt: now, rev: 0 };
    if (lastCheck) provider.lastCheck = lastCheck;
    return this.#stage(change, provider, now);
  }

  /** Resolves once everything staged so far is durable (and published). Rejects if the store failed. */
  committed(): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#staged.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** The committed events after `since`, or undefined if the history no longer reaches back that far. */
  since(since: number): RegistryEvent[] | undefined {
    if (since >= this.#committedRev) return [];
    const first = this.#history[0];
    if (!first || first.rev > since + 1) return undefined;
    return this.#history.slice(since + 1 - first.rev);
  }

  /** Writes whatever is staged now (also used on close). */
  flush(): void {
    this.#groupCommit.cancel();
    if (this.#staged.length === 0) return;
    const events = this.#staged;
    const waiters = this.#waiters;
    this.#staged = [];
    this.#waiters = [];
    const started = performance.now();
    try {
      this.#store.commit(this.#rev, this.#stagedPuts.values(), this.#stagedDeletes, this.#stagedServices);
    } catch (err) {
      // Memory is now ahead of disk: nothing more may be acknowledged. The process must restart from the store.
      this.#failed = err as Error;
      this.#log.fatal({ err }, 'store commit failed; refusing further writes');
      for (const w of waiters) w.reject(this.#failed);
      return;
    } finally {
      this.#stagedPuts.clear();
      this.#stagedDeletes.clear();
      this.#stagedServices.clear();
    }
    this.#committedRev = events[events.length - 1].rev;
    this.commits++;
    this.committedChanges += events.length;
    const commitMs = performance.now() - started;
    this.commitMs += commitMs;
    this.onCommit?.(commitMs / 1000);
    for (const event of events) {
      this.#history.push(event);
      this.#publish(event);
    }
    if (this.#history.length > this.#historySize) this.#history.splice(0, this.#history.length - this.#historySize);
    for (const w of waiters) w.resolve();
  }

  get failed(): Error | null {
    return this.#failed;
  }

  #stage(change: Change, provider: Provider, now: number, removal = false): Provider {
    if (this.#failed) throw new LeaderError(503, 'SB_STORE_FAILED', 'the leader store failed; restart the leader');
    this.#rev++;
    provider.rev = this.#rev;
    if (removal) {
      this.#providers.delete(provider.id);
      this.#stagedPuts.delete(provider.id);
      this.#stagedDeletes.add(provider.id);
    } else {
      this.#providers.set(provider.id, provider);
      this.#stagedDeletes.delete(provider.id);
      this.#stagedPuts.set(provider.id, provider);
    }
    const prev = this.#serviceRev.get(provider.service) ?? this.#emptiedRev;
    this.#serviceRev.set(provider.service, this.#rev);
    this.#stagedServices.set(provider.service, this.#rev);
    this.#staged.push({
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

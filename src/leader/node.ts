/**
 * The leader process's lifecycle: which store, and when this process leads. leader.ts is one active term; this
 * file decides when a term starts and ends.
 *
 * - SQLite (no `--store`, or `--store sqlite`): one term forever, started at once (term 0).
 * - etcd (`--store etcd://...`): a hot standby first (`StoreFollower` keeps a copy of the store current, and the
 *   `Election` campaigns). Nothing is bound while standing by. When elected: take the store over from the hot
 *   copy, build the registry, bind the ZeroMQ plane under a new session (workers say hello and report presence,
 *   gateways catch up, as after a leader restart). When the lease is lost or a commit is fenced: close the
 *   plane first, drop the term, stand by again (the election campaigns again by itself).
 *
 * Transitions run one at a time, in the order the election reported them.
 */
import type { Etcd3 } from 'etcd3';
import type { AclState, Logger, Metrics, ServerSecurity, StoreHealth } from '../bridge/index.ts';
import { AclBootstrap } from './acl-bootstrap.ts';
import { defaultPublishEndpoint, type LeaderConfig } from './config.ts';
// Types only: the etcd client (and its gRPC stack, ~0.4 s of CPU to load) is imported when --store etcd asks for it.
import type { Election, Term } from './election.ts';
import type { EtcdStore } from './etcd-store.ts';
import { Leader, type LeaderStatus } from './leader.ts';
import { parseStoreSpec, sqliteStore, StoreError, type RegistryStore, type StoreSpec } from './store-api.ts';
import { Store } from './store.ts';

/** How long the first contact with etcd may take before the leader refuses to start. */
const ETCD_CONNECT_TIMEOUT_MS = 10_000;
/** After a step-down the store asked for while the election still holds, wait this long before leading again. */
const RETAKE_DELAY_MS = 1000;

/** Why a term ended, as the `reason` label of `switchboard_leader_step_downs_total`. */
export type StepDownReason = 'lease_lost' | 'fenced' | 'store_failed' | 'closing';

export interface LeaderNodeOptions {
  config: Readonly<LeaderConfig>;
  log: Logger;
  metrics: Metrics;
  /** The store has failed for `storeFailExitMs` (or a term could not bind): the process should exit. */
  onFatal: (err: Error) => void;
  /** CURVE server options of every term's sockets. */
  security?: ServerSecurity;
}

export class LeaderNode {
  readonly #config: Readonly<LeaderConfig>;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #onFatal: (err: Error) => void;
  readonly #security: ServerSecurity | undefined;
  readonly spec: StoreSpec;
  #store: RegistryStore | undefined;
  #etcd: { client: Etcd3; election: Election; store: EtcdStore } | undefined;
  #bootstrap: AclBootstrap | undefined;
  #active: Leader | undefined;
  #queue: Promise<void> = Promise.resolve();
  #retakeTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #electionsWon = 0;
  /** The last term's endpoints: as bound while active, as configured while standing by. */
  controlEndpoint: string;
  eventsEndpoint: string;

  constructor(opts: LeaderNodeOptions) {
    this.#config = opts.config;
    this.#log = opts.log;
    this.#metrics = opts.metrics;
    this.#onFatal = opts.onFatal;
    this.#security = opts.security;
    this.spec = parseStoreSpec(opts.config.store, opts.config.storePrefix);
    this.controlEndpoint = opts.config.bind;
    this.eventsEndpoint = opts.config.publish ?? defaultPublishEndpoint(opts.config.bind);
    const m = opts.metrics;
    m.gauge('switchboard_leader_active', '1 while this process is the active leader', () => (this.#active ? 1 : 0));
    m.gauge(
      'switchboard_leader_term',
      "This process's term while active (the election key's create revision; 0 for SQLite or standby)",
      () => this.#active?.term ?? 0,
    );
    m.collectedCounter(
      'switchboard_leader_elections_won_total',
      'Times this process became the active leader',
      () => this.#electionsWon,
    );
    m.counter('switchboard_leader_step_downs_total', 'Times this process stopped being the active leader', {
      reason: 'lease_lost',
    });
    for (const reason of ['fenced', 'store_failed'] as const)
      m.counter('switchboard_leader_step_downs_total', '', { reason });
  }

  /** The active term, if this process leads now. */
  get active(): Leader | undefined {
    return this.#active;
  }

  get epoch(): string {
    return this.#active?.epoch ?? '';
  }

  status(): LeaderStatus | undefined {
    return this.#active?.status();
  }

  storeHealth(): StoreHealth | undefined {
    return this.#active?.storeHealth();
  }

  async start(): Promise<void> {
    // Read --bootstrap-token-file first: a bad one stops the start before any store is touched.
    this.#bootstrap = new AclBootstrap({ file: this.#config.bootstrapTokenFile, log: this.#log });
    if (this.spec.kind === 'sqlite') {
      const store = sqliteStore(new Store(this.#config.dataDir, this.#log));
      this.#store = store;
      try {
        const loaded = await store.load();
        // Bootstrapped once bound: a leader that cannot bind makes (and shows) no token.
        await this.#activate(store, loaded, 0, undefined, (acl) => this.#bootstrap!.ensure(store, acl));
      } catch (err) {
        await store.close();
        throw err;
      }
      return;
    }
    const { url, prefix } = this.spec;
    const bind = this.#config.bind;
    if (/:\*$/.test(bind) || (this.#config.publish !== undefined && /:\*$/.test(this.#config.publish)))
      throw new Error(
        `--bind and --publish need fixed ports with --store etcd (workers and gateways list every leader): got ${bind}`,
      );
    const [{ connectEtcd, EtcdStore }, { Election, withTimeout }] = await Promise.all([
      import('./etcd-store.ts'),
      import('./election.ts'),
    ]);
    const client = connectEtcd(url);
    const election = new Election({
      client,
      prefix,
      value: bind,
      ttlSeconds: this.#config.sessionTtlS,
      log: this.#log,
    });
    const store = new EtcdStore({
      client,
      log: this.#log,
      prefix,
      url,
      fence: () => election.term,
      leaderValue: bind,
    });
    this.#etcd = { client, election, store };
    this.#store = store;
    try {
      await withTimeout(store.follow(), ETCD_CONNECT_TIMEOUT_MS, 'following the store');
    } catch (err) {
      await store.close();
      client.close();
      const why = err instanceof StoreError ? err.message : (err as Error).message;
      throw new Error(`cannot use the etcd store at ${url} (prefix ${prefix}): ${why}`, { cause: err });
    }
    election.on('elected', (term) => this.#serial(() => this.#elected(term)));
    election.on('lost', (reason) => this.#serial(() => this.#stepDown('lease_lost', reason)));
    election.on('leader', (value) => {
      if (!this.#active && value !== bind) this.#log.info({ leader: value ?? null }, 'standby');
    });
    await election.start();
    if (!this.#active) this.#log.info({ leader: election.leader ?? null, store: store.path }, 'standby');
  }

  /** Resigns (a standby takes over at once), writes what is staged, closes everything. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retakeTimer);
    await this.#queue;
    const active = this.#active;
    this.#active = undefined;
    if (active) await active.close();
    if (this.#etcd) {
      await this.#etcd.election.close();
      await this.#etcd.store.close();
      this.#etcd.client.close();
    } else await this.#store?.close();
  }

  #serial(fn: () => Promise<void>): void {
    this.#queue = this.#queue.then(fn).catch((err: unknown) => this.#log.error({ err }, 'leader transition failed'));
  }

  async #elected(term: Term): Promise<void> {
    const etcd = this.#etcd!;
    if (this.#closed || this.#active) return;
    // Reported late: the election moved on since.
    if (etcd.election.term?.createRevision !== term.createRevision) return;
    let loaded;
    try {
      loaded = await etcd.store.load();
      loaded.acl = await this.#bootstrap!.ensure(etcd.store, loaded.acl);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, term: term.term }, 'could not take the store over; retrying');
      this.#retake();
      return;
    }
    if (this.#closed || etcd.election.term?.createRevision !== term.createRevision) return;
    const candidates = async () =>
      (await etcd.election.candidates()).map((c) => ({ endpoint: c.value, term: c.createRevision }));
    await this.#activate(etcd.store, loaded, term.term, candidates);
  }

  async #activate(
    store: RegistryStore,
    loaded: Awaited<ReturnType<RegistryStore['load']>>,
    term: number,
    candidates?: () => Promise<Array<{ endpoint: string; term: number }>>,
    bootstrapAcl?: (acl: AclState) => Promise<AclState>,
  ): Promise<void> {
    const leader = new Leader(this.#config, this.#log, this.#metrics, {
      store,
      loaded,
      term,
      candidates,
      bootstrapAcl,
      onFenced: (err) => this.#serial(() => this.#stepDown('fenced', err.message)),
      onGiveUp: (err) => this.#giveUp(err),
      security: this.#security,
    });
    try {
      await leader.start();
    } catch (err) {
      if (this.spec.kind === 'sqlite') throw err;
      // Elected but the endpoints are taken: lead nowhere rather than half; a supervisor restarts us.
      this.#giveUp(new Error(`elected but could not bind: ${(err as Error).message}`, { cause: err }));
      return;
    }
    this.#active = leader;
    this.#electionsWon++;
    this.controlEndpoint = leader.controlEndpoint;
    this.eventsEndpoint = leader.eventsEndpoint;
    this.#log.info(
      { term, session: leader.session, control: leader.controlEndpoint, rev: loaded.rev, store: store.path },
      'elected',
    );
  }

  async #stepDown(reason: StepDownReason, detail: string): Promise<void> {
    const leader = this.#active;
    if (!leader) return;
    this.#active = undefined;
    await leader.stepDown(detail);
    this.#metrics.inc('switchboard_leader_step_downs_total', { reason });
    this.#log.warn({ reason: detail, cause: reason, term: leader.term }, 'stepped down');
    this.#log.info({ leader: this.#etcd?.election.leader ?? null }, 'standby');
    if (reason !== 'lease_lost') this.#retake();
  }

  /** The store refused us while the election may still hold: try to lead again shortly (load() re-checks). */
  #retake(): void {
    clearTimeout(this.#retakeTimer);
    this.#retakeTimer = setTimeout(() => {
      const term = this.#etcd?.election.term;
      if (term && !this.#active && !this.#closed) this.#serial(() => this.#elected(term));
    }, RETAKE_DELAY_MS);
  }

  #giveUp(err: Error): void {
    this.#log.fatal(
      { err: err.message, store: this.#store?.path },
      'the store keeps failing: exiting so a standby or a supervisor takes over',
    );
    this.#metrics.inc('switchboard_leader_step_downs_total', { reason: 'store_failed' });
    this.#onFatal(err);
  }
}

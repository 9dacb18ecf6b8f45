/**
 * The leader's active term: owns the registry, decides presence, assigns watch tasks, publishes every change once.
 * It is built when this process becomes the leader (node.ts: at once for SQLite, when elected for etcd) from a
 * store already taken over, and ends with `close()` (clean shutdown) or `stepDown()` (leadership lost). This
 * file only wires the parts, each in its own file:
 * - control.ts: the ROUTER (workers and gateways), its receive loop and reply queue;
 * - handlers.ts: the table of one handler per message type, filled by worker-handlers.ts and gateway-handlers.ts;
 * - registry.ts (+ group-commit.ts, store-api.ts): the authoritative records, revisions and durable commits;
 * - acl-registry.ts (+ acl-handlers.ts): tokens and policies, committed one change at a time;
 * - assignment.ts (+ workers.ts): which worker watches which provider;
 * - presence-decider.ts (+ presence.ts, mass-down.ts): what observations mean, the mass-down guard, maintenance;
 * - reaper.ts: auto-deregistration;
 * - publisher.ts: the PUB (events and position beacons).
 */
import { randomBytes } from 'node:crypto';
import type { Logger, Metrics, Provider, RegistryEvent, StoreHealth } from '../bridge/index.ts';
import { aclHandlers } from './acl-handlers.ts';
import { AclRegistry } from './acl-registry.ts';
import { Assignment } from './assignment.ts';
import { defaultPublishEndpoint, type LeaderConfig } from './config.ts';
import { ControlSocket } from './control.ts';
import { gatewayHandlers } from './gateway-handlers.ts';
import { dispatch, type ClusterView, type Handlers, type LeaderParts } from './handlers.ts';
import { PresenceDecider } from './presence-decider.ts';
import { EventPublisher } from './publisher.ts';
import { Reaper } from './reaper.ts';
import { Registry } from './registry.ts';
import type { Loaded, RegistryStore } from './store-api.ts';
import { workerHandlers } from './worker-handlers.ts';

/** How long close() waits for queued replies and events to reach ZeroMQ before dropping them. */
const CLOSE_DRAIN_MS = 200;
/** How long close() waits for the last commit (a failing store is given up on after this). */
const CLOSE_COMMIT_MS = 3000;

/** One candidate for the leadership, as `cluster.reply` lists it. */
export interface LeaderCandidate {
  endpoint: string;
  term: number;
}

/** What the node hands a term: a store taken over, what it loaded, and how to report the end of the term. */
export interface TermOptions {
  store: RegistryStore;
  loaded: Loaded;
  /** The election key's create revision (0 for SQLite: one term forever). */
  term: number;
  /** Every candidate in line, the active first (SQLite: undefined, this process alone). */
  candidates?: () => Promise<LeaderCandidate[]>;
  /** The store says another process is the writer now: the node steps this term down. */
  onFenced: (err: Error) => void;
  /** The store has failed for `storeFailExitMs`: the node gives up (the process exits). */
  onGiveUp: (err: Error) => void;
}

/** A read-only view of the leader, for operators' tools, tests and benchmarks. */
export interface LeaderStatus {
  epoch: string;
  /** The last durable revision. */
  rev: number;
  /** Registered providers. */
  providers: number;
  /** Live workers. */
  workers: number;
  /** Checked providers no worker watches right now. */
  unassigned: number;
}

export class Leader {
  readonly session = randomBytes(6).toString('hex');
  readonly term: number;
  readonly #config: LeaderConfig;
  readonly #log: Logger;
  readonly #store: RegistryStore;
  readonly #candidates: (() => Promise<LeaderCandidate[]>) | undefined;
  readonly #registry: Registry;
  readonly #acl: AclRegistry;
  readonly #control: ControlSocket;
  readonly #publisher: EventPublisher;
  readonly #assignment: Assignment;
  readonly #presence: PresenceDecider;
  readonly #reaper: Reaper;
  readonly #handlers: Handlers;
  #closed = false;
  #stopping: Promise<void> | undefined;
  controlEndpoint = '';
  eventsEndpoint = '';

  constructor(config: LeaderConfig, log: Logger, metrics: Metrics, term: TermOptions) {
    this.#config = config;
    this.#log = log;
    this.#store = term.store;
    this.term = term.term;
    this.#candidates = term.candidates;
    this.#control = new ControlSocket({ log, metrics });
    this.#publisher = new EventPublisher({ log, metrics });
    this.#acl = new AclRegistry(term.loaded.acl, { defaultMaxProviders: config.aclMaxProviders });
    const fenced = (err: Error): void => {
      // Halt at once (the plane closes before anything else), then tell the node.
      void this.stepDown(`store refused the commit: ${err.message}`);
      term.onFenced(err);
    };
    this.#registry = new Registry(term.store, term.loaded, {
      log,
      metrics,
      historySize: config.historySize,
      publish: (event) => this.#publisher.publish(event),
      moreWaiting: () => this.#control.moreWaiting(),
      onFenced: fenced,
      onGiveUp: term.onGiveUp,
      storeFailExitMs: config.storeFailExitMs,
    });
    this.#assignment = new Assignment({
      registry: this.#registry,
      control: this.#control,
      session: this.session,
      workerTimeoutMs: config.workerTimeoutMs,
      reassignGraceMs: config.reassignGraceMs,
      sweepIntervalMs: config.sweepIntervalMs,
      log,
      metrics,
    });
    this.#presence = new PresenceDecider({
      registry: this.#registry,
      ownerOf: (id) => this.#assignment.ownerOf(id),
      guard: {
        percent: config.massDownPercent,
        minProviders: config.massDownMinProviders,
        windowMs: config.massDownWindowMs,
        settleMs: config.massDownSettleMs,
      },
      log,
      metrics,
    });
    this.#reaper = new Reaper({
      defaultAfterMs: config.deregisterAfterMs,
      intervalMs: config.sweepIntervalMs,
      providers: () => this.#registry.all(),
      remove: (p) => this.#forget(this.#registry.remove(p.id)),
      log,
      metrics,
    });
    const parts: LeaderParts = {
      session: this.session,
      registry: this.#registry,
      acl: this.#acl,
      store: term.store,
      control: this.#control,
      assignment: this.#assignment,
      presence: this.#presence,
      publisher: this.#publisher,
      metrics,
      log,
      eventsEndpoint: () => this.eventsEndpoint,
      controlEndpoint: () => this.controlEndpoint,
      cluster: () => this.#cluster(),
      forget: (removed) => this.#forget(removed),
      announceAcl: () => this.#publisher.beaconNow(),
      fenced,
    };
    this.#handlers = { ...workerHandlers(parts), ...gatewayHandlers(parts), ...aclHandlers(parts) };
  }

  get epoch(): string {
    return this.#registry.epoch;
  }

  storeHealth(): StoreHealth {
    return this.#registry.storeHealth();
  }

  status(): LeaderStatus {
    return {
      epoch: this.#registry.epoch,
      rev: this.#registry.committedRev,
      providers: this.#registry.size,
      workers: this.#assignment.workers,
      unassigned: this.#assignment.unassigned,
    };
  }

  /** The committed events after `since`, oldest first; undefined if the history no longer reaches back so far. */
  history(since: number): RegistryEvent[] | undefined {
    return this.#registry.since(since);
  }

  async start(): Promise<void> {
    try {
      this.controlEndpoint = await this.#control.bind(this.#config.bind);
      this.eventsEndpoint = await this.#publisher.bind(
        this.#config.publish ?? defaultPublishEndpoint(this.#config.bind),
      );
    } catch (err) {
      await this.#control.close();
      this.#publisher.close();
      this.#registry.abandon(new Error('the leader could not bind'));
      throw err;
    }
    this.#control.listen((routing, message) => dispatch(this.#handlers, routing, message, Date.now()));
    this.#publisher.startBeacons(this.#config.beaconIntervalMs, () => ({
      session: this.session,
      epoch: this.#registry.epoch,
      rev: this.#registry.committedRev,
      aclVersion: this.#acl.version,
    }));
    this.#assignment.start();
    this.#reaper.start();
    this.#log.info(
      {
        control: this.controlEndpoint,
        events: this.eventsEndpoint,
        epoch: this.#registry.epoch,
        rev: this.#registry.rev,
        providers: this.#registry.size,
        store: this.#store.path,
        term: this.term,
      },
      'leader started',
    );
  }

  /** Clean shutdown: writes what is staged (bounded), drains replies and events, closes the sockets. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#publisher.stopBeacons();
    this.#assignment.close();
    this.#presence.close();
    this.#reaper.close();
    await this.#registry.drain(CLOSE_COMMIT_MS);
    this.#registry.abandon(new Error('the leader is stopping'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([this.#publisher.idle(), this.#control.idle()]),
      new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_DRAIN_MS))),
    ]);
    clearTimeout(timer);
    this.#publisher.close();
    await this.#control.close();
    this.#log.info('leader stopped');
  }

  /**
   * The leadership is lost: the ZeroMQ plane closes first (nothing more reaches workers, gateways or subscribers),
   * then everything stops without writing, acknowledging or publishing anything more. Idempotent.
   */
  stepDown(reason: string): Promise<void> {
    if (this.#stopping) return this.#stopping;
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#publisher.close();
    const control = this.#control.close();
    this.#registry.abandon(new Error(`stepped down: ${reason}`));
    this.#publisher.stopBeacons();
    this.#assignment.close();
    this.#presence.close();
    this.#reaper.close();
    this.#stopping = control;
    return control;
  }

  async #cluster(): Promise<ClusterView> {
    const self = { endpoint: this.controlEndpoint, term: this.term };
    const line = this.#candidates ? await this.#candidates() : [self];
    return {
      store: { kind: this.#store.kind, path: this.#store.path },
      active: { endpoint: this.controlEndpoint, session: this.session, term: this.term },
      candidates: line.map((c) => ({ ...c, active: c.term === this.term })),
    };
  }

  /** After a removal (by a client or the reaper): drop its watch task and everything kept about it. */
  #forget(removed: Provider): void {
    this.#assignment.retask(removed, undefined);
    this.#presence.forget(removed.id);
  }
}

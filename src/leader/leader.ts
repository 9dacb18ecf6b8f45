/**
 * The leader: owns the registry, decides presence, assigns watch tasks, publishes every change once.
 * Sockets: a ROUTER (workers and gateways) and a PUB (events and position beacons).
 */
import { randomBytes } from 'node:crypto';
import { Publisher, Router } from 'zeromq';
import {
  baseSocketOptions,
  FrameDecoder,
  LeaderError,
  pack,
  receiveLoop,
  SendQueue,
  toLeader,
  TOPIC_BEACON,
  TOPIC_EVENT,
  type Logger,
  type Metrics,
  type CheckResult,
  type Observation,
  type Provider,
  type RegistryEvent,
  type Task,
  type ToLeader,
} from '../bridge/index.ts';
import { defaultPublishEndpoint, type LeaderConfig } from './config.ts';
import { MassDownGuard } from './mass-down.ts';
import { decide, stateAfterMaintenance } from './presence.ts';
import { Reaper } from './reaper.ts';
import { Registry } from './registry.ts';
import { Store } from './store.ts';
import { WorkerPool, type Moves, type WorkerEntry } from './workers.ts';

function taskOf(p: Provider): Task | undefined {
  return p.check ? { id: p.id, host: p.host, port: p.port, check: p.check } : undefined;
}

export class Leader {
  readonly session = randomBytes(6).toString('hex');
  readonly registry: Registry;
  /** zmq tasks on one PUB endpoint share a worker: one connection, each beat received once. */
  readonly pool = new WorkerPool((id) => {
    const check = this.registry.get(id)?.check;
    return check?.type === 'zmq' ? check.endpoint : undefined;
  });
  readonly #config: LeaderConfig;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #store: Store;
  readonly #router: Router;
  readonly #pub: Publisher;
  readonly #routerQueue: SendQueue;
  readonly #pubQueue: SendQueue;
  readonly #decoder: FrameDecoder;
  /** Last observation per provider, kept even while in maintenance. */
  readonly #observed = new Map<string, boolean | null>();
  /** Last check result per provider, restored as `lastCheck` when maintenance ends. */
  readonly #lastResult = new Map<string, CheckResult>();
  readonly #guard: MassDownGuard;
  readonly #reaper: Reaper;
  readonly #startedAt = Date.now();
  #graceOver = false;
  #timers: NodeJS.Timeout[] = [];
  #loop: Promise<void> | null = null;
  #closed = false;
  controlEndpoint = '';
  eventsEndpoint = '';

  constructor(config: LeaderConfig, log: Logger, metrics: Metrics) {
    this.#config = config;
    this.#log = log;
    this.#metrics = metrics;
    this.#store = new Store(config.dataDir, log);
    this.registry = new Registry(this.#store, {
      log,
      historySize: config.historySize,
      publish: (event) => this.#publishEvent(event),
      moreWaiting: () => !this.#router.closed && this.#router.readable,
    });
    this.#router = new Router(
      baseSocketOptions({
        // Gateways send registrations here; a provider record is small, a batch of reports can be large.
        maxMessageSize: 64 * 1024 * 1024,
        mandatory: false,
        sendHighWaterMark: 100_000,
        receiveHighWaterMark: 100_000,
        heartbeatInterval: 500,
        heartbeatTimeout: 1500,
      }),
    );
    this.#pub = new Publisher(baseSocketOptions({ sendHighWaterMark: 100_000 }));
    this.#routerQueue = new SendQueue(this.#router, {
      log,
      limit: 100_000,
      onDrop: (r) => metrics.inc('switchboard_send_dropped_total', { socket: 'leader-router', reason: r }),
    });
    this.#pubQueue = new SendQueue(this.#pub, {
      log,
      limit: 100_000,
      onDrop: (r) => metrics.inc('switchboard_send_dropped_total', { socket: 'leader-pub', reason: r }),
    });
    this.#decoder = new FrameDecoder('leader-router', metrics, log);
    for (const socket of ['leader-router', 'leader-pub'])
      metrics.counter('switchboard_send_dropped_total', 'Messages dropped before reaching ZeroMQ', {
        socket,
        reason: 'queue-full',
      });
    metrics.counter('switchboard_events_published_total', 'Registry events published');
    metrics.counter('switchboard_workers_expired_total', 'Workers declared dead after missing heartbeats');
    metrics.gauge('switchboard_rev', 'Current revision', () => this.registry.committedRev);
    metrics.collectedCounter(
      'switchboard_store_commits_total',
      'Store transactions committed',
      () => this.registry.commits,
    );
    metrics.collectedCounter(
      'switchboard_store_committed_changes_total',
      'Changes written by those transactions (changes / commits = group-commit batch size)',
      () => this.registry.committedChanges,
    );
    metrics.collectedCounter(
      'switchboard_store_commit_seconds_total',
      'Time spent in store commits',
      () => this.registry.commitMs / 1000,
    );
    // One observation per store transaction: the write and fsync of a group commit, not the wait to batch it.
    metrics.histogram('switchboard_store_commit_duration_seconds', 'Duration of each store commit');
    this.registry.onCommit = (s) => metrics.observe('switchboard_store_commit_duration_seconds', undefined, s);
    metrics.gauge(
      'switchboard_providers',
      'Registered providers by state',
      () => {
        const counts: Record<string, number> = { pending: 0, up: 0, down: 0, maintenance: 0 };
        for (const p of this.registry.all()) counts[p.state] = (counts[p.state] ?? 0) + 1;
        return Object.entries(counts).map(([state, n]) => [{ state }, n]);
      },
      ['state'],
    );
    metrics.gauge('switchboard_workers', 'Live workers', () => this.pool.size);
    metrics.gauge('switchboard_tasks_unassigned', 'Watch tasks waiting for a worker', () => this.pool.unassigned.size);
    this.#guard = new MassDownGuard({
      percent: config.massDownPercent,
      minProviders: config.massDownMinProviders,
      windowMs: config.massDownWindowMs,
      settleMs: config.massDownSettleMs,
      log,
      metrics,
      checkedCount: () => {
        let n = 0;
        for (const p of this.registry.all()) if (p.check && p.state !== 'maintenance') n++;
        return n;
      },
      apply: (o) => this.#applyDown(o),
    });
    this.#reaper = new Reaper({
      defaultAfterMs: config.deregisterAfterMs,
      intervalMs: config.sweepIntervalMs,
      providers: () => this.registry.all(),
      remove: (p) => this.#forget(this.registry.remove(p.id)),
      log,
      metrics,
    });
    // Every checked provider needs a watcher; they wait for workers (and, after a restart, for their old owner).
    for (const p of this.registry.all()) if (p.check) this.pool.unassigned.add(p.id);
  }

  async start(): Promise<void> {
    try {
      await this.#router.bind(this.#config.bind);
      await this.#pub.bind(this.#config.publish ?? defaultPublishEndpoint(this.#config.bind));
    } catch (err) {
      this.#router.close();
      this.#pub.close();
      this.#store.close();
      throw err;
    }
    this.controlEndpoint = this.#router.lastEndpoint ?? this.#config.bind;
    this.eventsEndpoint = this.#pub.lastEndpoint ?? '';
    this.#loop = receiveLoop(this.#router, (frames) => this.#receive(frames), this.#log);
    this.#timers.push(setInterval(() => this.#beacon(), this.#config.beaconIntervalMs));
    this.#timers.push(setInterval(() => this.#sweep(), this.#config.sweepIntervalMs));
    this.#reaper.start();
    this.#log.info(
      {
        control: this.controlEndpoint,
        events: this.eventsEndpoint,
        epoch: this.registry.epoch,
        rev: this.registry.rev,
        providers: this.registry.size,
        store: this.#store.path,
      },
      'leader started',
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#guard.close();
    this.#reaper.close();
    this.registry.flush();
    await Promise.race([
      Promise.all([this.#pubQueue.idle(), this.#routerQueue.idle()]),
      new Promise((r) => setTimeout(r, 200)),
    ]);
    this.#routerQueue.close();
    this.#pubQueue.close();
    this.#router.close();
    this.#pub.close();
    await this.#loop;
    this.#store.close();
    this.#log.info('leader stopped');
  }

  // --- receiving

  #receive(frames: Buffer[]): void {
    const routing = frames[0];
    if (!routing || frames.length !== 2) {
      this.#decoder.drop('frame-count');
      return;
    }
    const message = this.#decoder.decode(toLeader, frames[1]);
    if (!message) return;
    this.#dispatch(routing, message);
  }

  #dispatch(routing: Buffer, m: ToLeader): void {
    const now = Date.now();
    switch (m.type) {
      case 'worker.hello':
        return this.#workerHello(routing, m.workerId, m.observations, now);
      case 'worker.ping': {
        const known = this.pool.touch(m.workerId, routing, now);
        this.#reply(
          routing,
          known ? { type: 'worker.pong', session: this.session } : { type: 'worker.unknown', session: this.session },
        );
        return;
      }
      case 'presence': {
        if (!this.pool.touch(m.workerId, routing, now)) {
          this.#reply(routing, { type: 'worker.unknown', session: this.session });
          return;
        }
        this.#applyObservations(m.workerId, m.observations);
        return;
      }
      case 'ping':
        this.#reply(routing, {
          type: 'pong',
          reqId: m.reqId,
          session: this.session,
          epoch: this.registry.epoch,
          rev: this.registry.committedRev,
          events: this.eventsEndpoint,
          guard: this.#guard.status(),
        });
        return;
      case 'metrics':
        // prom-client renders asynchronously (collected families); a closed queue drops a late answer.
        this.#metrics.render().then(
          (text) => this.#reply(routing, { type: 'metrics.reply', reqId: m.reqId, text }),
          (err: unknown) => this.#log.warn({ err }, 'rendering metrics failed'),
        );
        return;
      case 'cluster':
        this.#reply(routing, {
          type: 'cluster.reply',
          reqId: m.reqId,
          session: this.session,
          epoch: this.registry.epoch,
          rev: this.registry.committedRev,
          providers: this.registry.size,
          workers: [...this.pool.workers.values()].map((w) => ({
            id: w.id,
            tasks: w.tasks.size,
            lastSeenMs: now - w.lastSeen,
          })),
          unassigned: this.pool.unassigned.size,
        });
        return;
      case 'guard.release':
        void this.#answer(routing, m.reqId, async () => {
          const released = this.#guard.release();
          this.#log.warn({ released }, 'mass-down guard released by an operator');
          await this.registry.committed();
          return { type: 'ack', status: 200, rev: this.registry.committedRev };
        });
        return;
      case 'snapshot':
        void this.#answer(routing, m.reqId, async () => {
          // Only durable state goes out: wait until nothing is staged.
          while (this.registry.rev !== this.registry.committedRev) await this.registry.committed();
          return {
            type: 'snapshot.reply',
            epoch: this.registry.epoch,
            rev: this.registry.committedRev,
            providers: [...this.registry.all()],
          };
        });
        return;
      case 'since': {
        const events = m.epoch === this.registry.epoch ? this.registry.since(m.since) : undefined;
        this.#reply(routing, {
          type: 'since.reply',
          reqId: m.reqId,
          complete: events !== undefined,
          events: events ?? [],
        });
        return;
      }
      case 'put':
        void this.#answer(routing, m.reqId, async () => {
          const previous = m.id ? this.registry.get(m.id) : undefined;
          const result = this.registry.put(m.id, m.input);
          if (result.changed) this.#retask(previous, result.provider);
          await this.registry.committed();
          return { type: 'ack', status: result.status, rev: result.provider.rev, provider: result.provider };
        });
        return;
      case 'delete':
        void this.#answer(routing, m.reqId, async () => {
          const removed = this.registry.remove(m.id);
          this.#forget(removed);
          await this.registry.committed();
          return { type: 'ack', status: 204, rev: removed.rev };
        });
        return;
      case 'maintenance':
        void this.#answer(routing, m.reqId, async () => {
          const provider = this.#require(m.id);
          const now = Date.now();
          // An operator's decision: a held down no longer matters, and maintenance outranks it anyway.
          if (m.enabled) this.#guard.forget(m.id);
          const updated = m.enabled
            ? this.registry.setState(
                m.id,
                'maintenance',
                'maintenance',
                { ok: false, at: now, output: m.reason ?? 'maintenance' },
                now,
              )
            : provider.state === 'maintenance'
              ? this.#leaveMaintenance(provider, now)
              : undefined;
          await this.registry.committed();
          const current = updated ?? this.#require(m.id);
          return { type: 'ack', status: 200, rev: current.rev, provider: current };
        });
        return;
      case 'ttl':
        void this.#answer(routing, m.reqId, async () => {
          const provider = this.#require(m.id);
          if (provider.check?.type !== 'ttl') {
            throw new LeaderError(409, 'SB_NOT_TTL_CHECK', `provider '${m.id}' does not have a ttl check`);
          }
          const owner = this.pool.ownerOf(m.id);
          const entry = owner ? this.pool.workers.get(owner) : undefined;
          if (!entry) throw new LeaderError(503, 'SB_NO_WORKER', `no worker watches provider '${m.id}' yet`);
          this.#reply(entry.routing, { type: 'ttl.pass', id: m.id, at: Date.now() });
          return { type: 'ack', status: 204, rev: provider.rev };
        });
        return;
    }
  }

  #require(id: string): Provider {
    const p = this.registry.get(id);
    if (!p) throw new LeaderError(404, 'SB_PROVIDER_NOT_FOUND', `provider '${id}' is not registered`);
    return p;
  }

  #leaveMaintenance(provider: Provider, now: number): Provider | undefined {
    const state = stateAfterMaintenance(provider, this.#observed.get(provider.id));
    const change = state === 'up' ? 'up' : state === 'down' ? 'down' : 'updated';
    // lastCheck carried the maintenance reason; show the real last check result again.
    return this.registry.setState(provider.id, state, change, this.#lastResult.get(provider.id), now);
  }

  /** After a removal (by a client or the reaper): drop its watch task and everything kept about it. */
  #forget(removed: Provider): void {
    this.#retask(removed, undefined);
    this.#observed.delete(removed.id);
    this.#lastResult.delete(removed.id);
    this.#guard.forget(removed.id);
  }

  async #answer(routing: Buffer, reqId: number, work: () => Promise<object>): Promise<void> {
    try {
      const reply = await work();
      this.#reply(routing, { ...reply, reqId });
    } catch (err) {
      if (err instanceof LeaderError) {
        this.#reply(routing, { type: 'nack', reqId, statusCode: err.statusCode, code: err.code, message: err.message });
      } else {
        this.#log.error({ err }, 'request failed');
        this.#reply(routing, {
          type: 'nack',
          reqId,
          statusCode: 503,
          code: 'SB_LEADER_FAILED',
          message: 'the leader could not complete the request',
        });
      }
    }
  }

  #reply(routing: Buffer, message: object): void {
    this.#routerQueue.push([routing, pack(message)]);
  }

  // --- workers and tasks

  #workerHello(routing: Buffer, workerId: string, observations: Observation[], now: number): void {
    const isNew = !this.pool.workers.has(workerId);
    const entry = this.pool.hello(
      workerId,
      routing,
      observations.map((o) => o.id),
      (id) => this.registry.get(id)?.check !== undefined,
      now,
    );
    this.#log.info({ workerId, claimed: observations.length, kept: entry.tasks.size, isNew }, 'worker said hello');
    // Observations on tasks it keeps are current truth (a restarted leader learns what happened while it was away).
    this.#applyObservations(workerId, observations);
    const moves = this.#graceOver ? this.pool.placeUnassigned() : { add: new Map(), remove: new Map() };
    const balance = this.#graceOver ? this.pool.rebalance() : { add: new Map(), remove: new Map() };
    // The new worker gets its whole list at once; others get incremental moves.
    moves.add.delete(workerId);
    balance.add.delete(workerId);
    this.#sendMoves(moves);
    this.#sendMoves(balance);
    this.#reply(routing, { type: 'worker.welcome', session: this.session, tasks: this.#tasksOf(entry) });
  }

  #tasksOf(entry: WorkerEntry): Task[] {
    const tasks: Task[] = [];
    for (const id of entry.tasks) {
      const p = this.registry.get(id);
      const task = p && taskOf(p);
      if (task) tasks.push(task);
    }
    return tasks;
  }

  #applyObservations(workerId: string, observations: Observation[]): void {
    for (const o of observations) {
      if (this.pool.ownerOf(o.id) !== workerId) continue; // a worker that no longer owns the task is not heard
      const provider = this.registry.get(o.id);
      if (!provider) continue;
      if (o.alive !== null) {
        this.#observed.set(o.id, o.alive);
        const result: CheckResult = { ok: o.alive, at: o.at };
        if (o.output !== undefined) result.output = o.output;
        this.#lastResult.set(o.id, result);
      }
      // Alive again, or really gone (its own connection closed): whatever the guard held is moot.
      if (o.alive === true || o.cause === 'disconnect') this.#guard.forget(o.id);
      const decision = decide(provider, o);
      if (!decision) continue;
      // A down that is not a closed connection may be part of a mass event: the guard decides when it is published.
      if (decision.state === 'down' && o.cause !== 'disconnect') {
        this.#guard.offer(o);
        continue;
      }
      this.registry.setState(o.id, decision.state, decision.change, decision.lastCheck, Date.now());
    }
  }

  /** A down released by the mass-down guard: published only if it still holds. */
  #applyDown(o: Observation): void {
    const provider = this.registry.get(o.id);
    if (!provider || this.#observed.get(o.id) !== false) return;
    const decision = decide(provider, o);
    if (decision?.state === 'down')
      this.registry.setState(o.id, decision.state, decision.change, decision.lastCheck, Date.now());
  }

  /** After a registration, update or removal: move the watch task to match the new record. */
  #retask(before: Provider | undefined, after: Provider | undefined): void {
    const oldTask = before && taskOf(before);
    const newTask = after && taskOf(after);
    if (!newTask) {
      if (oldTask) {
        const owner = this.pool.unassign(oldTask.id);
        if (owner) this.#reply(owner.routing, { type: 'tasks.remove', ids: [oldTask.id] });
      }
      return;
    }
    if (oldTask && JSON.stringify(oldTask) === JSON.stringify(newTask)) return;
    const owner = this.pool.assign(newTask.id);
    // tasks.add for a task the worker already has replaces its definition.
    if (owner) this.#reply(owner.routing, { type: 'tasks.add', tasks: [newTask] });
  }

  #sendMoves(moves: Moves): void {
    for (const [workerId, ids] of moves.remove) {
      const entry = this.pool.workers.get(workerId);
      if (entry) this.#reply(entry.routing, { type: 'tasks.remove', ids });
    }
    for (const [workerId, ids] of moves.add) {
      const entry = this.pool.workers.get(workerId);
      if (!entry) continue;
      const tasks = ids.flatMap((id) => {
        const p = this.registry.get(id);
        const t = p && taskOf(p);
        return t ? [t] : [];
      });
      if (tasks.length) this.#reply(entry.routing, { type: 'tasks.add', tasks });
    }
  }

  #sweep(): void {
    const now = Date.now();
    const dead = this.pool.expire(now, this.#config.workerTimeoutMs);
    for (const entry of dead) {
      this.#metrics.inc('switchboard_workers_expired_total');
      this.#log.warn(
        { workerId: entry.id, tasks: entry.tasks.size, silentMs: now - entry.lastSeen },
        'worker declared dead; moving its tasks',
      );
    }
    if (!this.#graceOver && now - this.#startedAt >= this.#config.reassignGraceMs) this.#graceOver = true;
    if (this.#graceOver && this.pool.unassigned.size > 0 && this.pool.size > 0) {
      this.#sendMoves(this.pool.placeUnassigned());
    }
  }

  // --- publishing

  #publishEvent(event: RegistryEvent): void {
    this.#metrics.inc('switchboard_events_published_total');
    this.#pubQueue.push([TOPIC_EVENT, pack(event)]);
  }

  #beacon(): void {
    this.#pubQueue.push([
      TOPIC_BEACON,
      pack({ session: this.session, epoch: this.registry.epoch, rev: this.registry.committedRev, at: Date.now() }),
    ]);
  }
}

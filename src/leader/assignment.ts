/**
 * Worker assignment: which live worker watches which checked provider, and the messages that keep workers in
 * step (welcome with the whole list, then incremental `tasks.add`/`tasks.remove`). The balancing rules themselves
 * are in workers.ts; this file applies them to the registry's records and tells the workers. After a restart
 * the leader waits `reassignGraceMs` before placing orphans, so old owners can say hello and keep their tasks.
 */
import type { Logger, Metrics, Provider, Task, WorkerStatus } from '../bridge/index.ts';
import type { ControlSocket } from './control.ts';
import type { Registry } from './registry.ts';
import { WorkerPool, type Moves, type WorkerEntry } from './workers.ts';

/** The watch task of a provider; none without a check. */
export function taskOf(p: Provider): Task | undefined {
  return p.check ? { id: p.id, host: p.host, port: p.port, check: p.check } : undefined;
}

export interface AssignmentOptions {
  registry: Registry;
  control: ControlSocket;
  /** The leader's session id, in every welcome. */
  session: string;
  workerTimeoutMs: number;
  reassignGraceMs: number;
  sweepIntervalMs: number;
  log: Logger;
  metrics: Metrics;
}

export class Assignment {
  readonly #opts: AssignmentOptions;
  readonly #registry: Registry;
  readonly #control: ControlSocket;
  readonly #log: Logger;
  /** zmq tasks on one PUB endpoint share a worker: one connection, each beat received once. */
  readonly #pool: WorkerPool;
  readonly #startedAt = Date.now();
  #graceOver = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: AssignmentOptions) {
    this.#opts = opts;
    this.#registry = opts.registry;
    this.#control = opts.control;
    this.#log = opts.log;
    this.#pool = new WorkerPool((id) => {
      const check = this.#registry.get(id)?.check;
      return check?.type === 'zmq' ? check.endpoint : undefined;
    });
    opts.metrics.counter('switchboard_workers_expired_total', 'Workers declared dead after missing heartbeats');
    opts.metrics.gauge('switchboard_workers', 'Live workers', () => this.#pool.size);
    opts.metrics.gauge(
      'switchboard_tasks_unassigned',
      'Watch tasks waiting for a worker',
      () => this.#pool.unassigned.size,
    );
    // Every checked provider needs a watcher; they wait for workers (and, after a restart, for their old owner).
    for (const p of this.#registry.all()) if (p.check) this.#pool.unassigned.add(p.id);
  }

  /** Live workers. */
  get workers(): number {
    return this.#pool.size;
  }

  /** Checked providers no worker watches right now. */
  get unassigned(): number {
    return this.#pool.unassigned.size;
  }

  ownerOf(id: string): string | undefined {
    return this.#pool.ownerOf(id);
  }

  /** The ROUTER routing id of the worker that watches `id`, if any. */
  ownerRouting(id: string): Buffer | undefined {
    const owner = this.#pool.ownerOf(id);
    return owner === undefined ? undefined : this.#pool.workers.get(owner)?.routing;
  }

  /** Starts the periodic sweep (dead workers, orphans); a second start replaces the first. */
  start(): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.sweep(Date.now()), this.#opts.sweepIntervalMs);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A worker said hello: it keeps the claimed tasks nobody else owns. Call `welcome` once its observations have
   * been heard (a restarted leader learns from them what happened while it was away).
   */
  hello(routing: Buffer, workerId: string, claimed: string[], now: number): WorkerEntry {
    const isNew = !this.#pool.workers.has(workerId);
    const entry = this.#pool.hello(
      workerId,
      routing,
      claimed,
      (id) => this.#registry.get(id)?.check !== undefined,
      now,
    );
    this.#log.info({ workerId, claimed: claimed.length, kept: entry.tasks.size, isNew }, 'worker said hello');
    return entry;
  }

  /** Places orphans, rebalances, and sends the worker its whole task list (the others get incremental moves). */
  welcome(routing: Buffer, entry: WorkerEntry): void {
    const none = (): Moves => ({ add: new Map(), remove: new Map() });
    const moves = this.#graceOver ? this.#pool.placeUnassigned() : none();
    const balance = this.#graceOver ? this.#pool.rebalance() : none();
    moves.add.delete(entry.id);
    balance.add.delete(entry.id);
    this.#sendMoves(moves);
    this.#sendMoves(balance);
    this.#control.reply(routing, { type: 'worker.welcome', session: this.#opts.session, tasks: this.#tasksOf(entry) });
  }

  /** A worker was heard: true if it is known (else it must say hello again). */
  touch(workerId: string, routing: Buffer, now: number): boolean {
    return this.#pool.touch(workerId, routing, now) !== undefined;
  }

  /** After a registration, update or removal: move the watch task to match the new record. */
  retask(before: Provider | undefined, after: Provider | undefined): void {
    const oldTask = before && taskOf(before);
    const newTask = after && taskOf(after);
    if (!newTask) {
      if (oldTask) {
        const owner = this.#pool.unassign(oldTask.id);
        if (owner) this.#control.reply(owner.routing, { type: 'tasks.remove', ids: [oldTask.id] });
      }
      return;
    }
    if (oldTask && JSON.stringify(oldTask) === JSON.stringify(newTask)) return;
    const owner = this.#pool.assign(newTask.id);
    // tasks.add for a task the worker already has replaces its definition.
    if (owner) this.#control.reply(owner.routing, { type: 'tasks.add', tasks: [newTask] });
  }

  /** Declares silent workers dead (their tasks become orphans) and, after the grace, places orphans. */
  sweep(now: number): void {
    const dead = this.#pool.expire(now, this.#opts.workerTimeoutMs);
    for (const entry of dead) {
      this.#opts.metrics.inc('switchboard_workers_expired_total');
      this.#log.warn(
        { workerId: entry.id, tasks: entry.tasks.size, silentMs: now - entry.lastSeen },
        'worker declared dead; moving its tasks',
      );
    }
    if (!this.#graceOver && now - this.#startedAt >= this.#opts.reassignGraceMs) this.#graceOver = true;
    if (this.#graceOver && this.#pool.unassigned.size > 0 && this.#pool.size > 0) {
      this.#sendMoves(this.#pool.placeUnassigned());
    }
  }

  /** The workers as operators see them (`GET /v1/admin/cluster`). */
  workerStatus(now: number): WorkerStatus[] {
    return [...this.#pool.workers.values()].map((w) => ({
      id: w.id,
      tasks: w.tasks.size,
      lastSeenMs: now - w.lastSeen,
    }));
  }

  #tasksOf(entry: WorkerEntry): Task[] {
    const tasks: Task[] = [];
    for (const id of entry.tasks) {
      const p = this.#registry.get(id);
      const task = p && taskOf(p);
      if (task) tasks.push(task);
    }
    return tasks;
  }

  #sendMoves(moves: Moves): void {
    for (const [workerId, ids] of moves.remove) {
      const entry = this.#pool.workers.get(workerId);
      if (entry) this.#control.reply(entry.routing, { type: 'tasks.remove', ids });
    }
    for (const [workerId, ids] of moves.add) {
      const entry = this.#pool.workers.get(workerId);
      if (!entry) continue;
      const tasks = ids.flatMap((id) => {
        const p = this.#registry.get(id);
        const t = p && taskOf(p);
        return t ? [t] : [];
      });
      if (tasks.length) this.#control.reply(entry.routing, { type: 'tasks.add', tasks });
    }
  }
}

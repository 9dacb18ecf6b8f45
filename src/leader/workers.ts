/**
 * Which worker watches which provider. Each watched provider has exactly one owner among live workers, or waits
 * in `unassigned` until one is available. Balanced by task count, with one exception: tasks that share an
 * affinity key (zmq checks on the same PUB endpoint) go to the same worker, so each endpoint is connected to,
 * and each of its beats received, by one worker only.
 */
export interface WorkerEntry {
  id: string;
  /** ROUTER routing id of the worker's DEALER; it changes when the worker reconnects. */
  routing: Buffer;
  lastSeen: number;
  tasks: Set<string>;
}

/** Moves the pool asks the leader to send: remove before add, so a task is not watched twice for long. */
export interface Moves {
  add: Map<string, string[]>;
  remove: Map<string, string[]>;
}

function push(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

export class WorkerPool {
  readonly workers = new Map<string, WorkerEntry>();
  readonly #owner = new Map<string, string>();
  readonly unassigned = new Set<string>();
  readonly #affinityOf: (taskId: string) => string | undefined;
  /** Affinity key → the worker that last took a task of that group. */
  readonly #byAffinity = new Map<string, string>();
  /**
   * Affinity key → worker id → how many tasks of the group it owns, and each owned task's key as it was when
   * placed: whether a worker still holds a group is a lookup, not a scan of its tasks (that scan, once per
   * registration, made registering 10,000 heartbeating providers quadratic: most of the leader's profile).
   */
  readonly #groupCount = new Map<string, Map<string, number>>();
  readonly #taskKey = new Map<string, string>();

  constructor(affinityOf: (taskId: string) => string | undefined = () => undefined) {
    this.#affinityOf = affinityOf;
  }

  ownerOf(taskId: string): string | undefined {
    return this.#owner.get(taskId);
  }

  get size(): number {
    return this.workers.size;
  }

  /** Registers or re-registers a worker. `claimed` are tasks it says it watches; it keeps those nobody else owns. */
  hello(
    id: string,
    routing: Buffer,
    claimed: Iterable<string>,
    isTask: (taskId: string) => boolean,
    now: number,
  ): WorkerEntry {
    let entry = this.workers.get(id);
    if (!entry) {
      entry = { id, routing, lastSeen: now, tasks: new Set() };
      this.workers.set(id, entry);
    }
    entry.routing = routing;
    entry.lastSeen = now;
    for (const taskId of claimed) {
      if (!isTask(taskId)) continue;
      const owner = this.#owner.get(taskId);
      if (owner === undefined || owner === id) {
        this.#setOwner(taskId, entry);
      }
    }
    return entry;
  }

  touch(id: string, routing: Buffer, now: number): WorkerEntry | undefined {
    const entry = this.workers.get(id);
    if (!entry) return undefined;
    entry.routing = routing;
    entry.lastSeen = now;
    return entry;
  }

  /** Gives a task to the least loaded worker; returns that worker, or undefined (kept as unassigned). */
  assign(taskId: string): WorkerEntry | undefined {
    const current = this.#owner.get(taskId);
    if (current) {
      const entry = this.workers.get(current);
      // Placed again under the same owner: its group follows the task's affinity key now (an endpoint change).
      if (entry) this.#setOwner(taskId, entry);
      return entry;
    }
    const target = this.#companionOwner(taskId) ?? this.#leastLoaded();
    if (!target) {
      this.unassigned.add(taskId);
      return undefined;
    }
    this.#setOwner(taskId, target);
    return target;
  }

  /** Forgets a task (deregistered or no longer checked); returns its former owner. */
  unassign(taskId: string): WorkerEntry | undefined {
    this.unassigned.delete(taskId);
    const owner = this.#owner.get(taskId);
    if (owner === undefined) return undefined;
    this.#owner.delete(taskId);
    this.#leaveGroup(taskId, owner);
    const entry = this.workers.get(owner);
    entry?.tasks.delete(taskId);
    return entry;
  }

  /** Workers silent for longer than `timeoutMs` are removed; their tasks become unassigned. */
  expire(now: number, timeoutMs: number): WorkerEntry[] {
    const dead: WorkerEntry[] = [];
    for (const entry of this.workers.values()) {
      if (now - entry.lastSeen > timeoutMs) dead.push(entry);
    }
    for (const entry of dead) this.remove(entry.id);
    return dead;
  }

  remove(id: string): WorkerEntry | undefined {
    const entry = this.workers.get(id);
    if (!entry) return undefined;
    this.workers.delete(id);
    for (const taskId of entry.tasks) {
      this.#owner.delete(taskId);
      this.#leaveGroup(taskId, id);
      this.unassigned.add(taskId);
    }
    return entry;
  }

  /** Hands unassigned tasks to live workers, least loaded first. */
  placeUnassigned(): Moves {
    const moves: Moves = { add: new Map(), remove: new Map() };
    if (this.workers.size === 0) return moves;
    for (const taskId of this.unassigned) {
      const target = this.#companionOwner(taskId) ?? this.#leastLoaded()!;
      this.#setOwner(taskId, target);
      push(moves.add, target.id, taskId);
    }
    this.unassigned.clear();
    return moves;
  }

  /** Moves tasks from the most to the least loaded worker until no two differ by more than one. */
  rebalance(): Moves {
    const moves: Moves = { add: new Map(), remove: new Map() };
    if (this.workers.size < 2) return moves;
    const entries = [...this.workers.values()];
    const total = entries.reduce((n, e) => n + e.tasks.size, 0);
    const ceiling = Math.ceil(total / entries.length);
    const floor = Math.floor(total / entries.length);
    const donors = entries.filter((e) => e.tasks.size > ceiling);
    const takers = entries.filter((e) => e.tasks.size < floor);
    for (const taker of takers) {
      for (const donor of donors) {
        while (taker.tasks.size < floor && donor.tasks.size > ceiling) {
          // A task moves with its whole affinity group, so an endpoint stays with one worker.
          const first = donor.tasks.values().next().value as string;
          const key = this.#affinityOf(first);
          const group = key === undefined ? [first] : [...donor.tasks].filter((id) => this.#affinityOf(id) === key);
          if (group.length > 1 && taker.tasks.size + group.length > ceiling) break;
          for (const taskId of group) {
            donor.tasks.delete(taskId);
            this.#setOwner(taskId, taker);
            push(moves.remove, donor.id, taskId);
            push(moves.add, taker.id, taskId);
          }
        }
      }
    }
    return moves;
  }

  #setOwner(taskId: string, entry: WorkerEntry): void {
    const previous = this.#owner.get(taskId);
    if (previous && previous !== entry.id) this.workers.get(previous)?.tasks.delete(taskId);
    if (previous) this.#leaveGroup(taskId, previous);
    this.#owner.set(taskId, entry.id);
    this.unassigned.delete(taskId);
    entry.tasks.add(taskId);
    const key = this.#affinityOf(taskId);
    if (key !== undefined) {
      this.#byAffinity.set(key, entry.id);
      this.#taskKey.set(taskId, key);
      let counts = this.#groupCount.get(key);
      if (!counts) {
        counts = new Map();
        this.#groupCount.set(key, counts);
      }
      counts.set(entry.id, (counts.get(entry.id) ?? 0) + 1);
    }
  }

  /** `taskId` no longer belongs to `workerId`: one task fewer in its group there. */
  #leaveGroup(taskId: string, workerId: string): void {
    const key = this.#taskKey.get(taskId);
    if (key === undefined) return;
    this.#taskKey.delete(taskId);
    const counts = this.#groupCount.get(key);
    const n = (counts?.get(workerId) ?? 0) - 1;
    if (n > 0) counts!.set(workerId, n);
    else {
      counts?.delete(workerId);
      if (counts?.size === 0) this.#groupCount.delete(key);
    }
  }

  /** The live owner of another task with the same affinity key, if any. */
  #companionOwner(taskId: string): WorkerEntry | undefined {
    const key = this.#affinityOf(taskId);
    if (key === undefined) return undefined;
    const owner = this.#byAffinity.get(key);
    if (owner === undefined) return undefined;
    const entry = this.workers.get(owner);
    if (!entry) return undefined;
    // The group may have moved; trust the map only if that worker still owns a task of the group.
    if ((this.#groupCount.get(key)?.get(owner) ?? 0) > 0) return entry;
    this.#byAffinity.delete(key);
    return undefined;
  }

  #leastLoaded(): WorkerEntry | undefined {
    let best: WorkerEntry | undefined;
    for (const entry of this.workers.values()) {
      if (!best || entry.tasks.size < best.tasks.size) best = entry;
    }
    return best;
  }
}

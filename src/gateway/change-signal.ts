/**
 * Blocking queries wait here: one waiter per request, woken by the replica's own change events for its service.
 * Nothing polls, so thousands of waiting requests cost memory only.
 */
import type { Replica } from '../bridge/index.ts';

interface Waiter {
  index: number;
  service: string | null;
  done: () => void;
}

export class ChangeSignal {
  readonly #replica: Replica;
  readonly #byService = new Map<string, Set<Waiter>>();
  readonly #all = new Set<Waiter>();
  readonly #unsubscribe: Array<() => void>;
  readonly limit: number;
  #count = 0;

  constructor(replica: Replica, limit: number) {
    this.#replica = replica;
    this.limit = limit;
    this.#unsubscribe = [
      replica.onEvent((event) => {
        this.#wake(this.#byService.get(event.service));
        this.#wake(this.#all);
      }),
      // After a resync a service's index may go down (a deregistration older than the snapshot is forgotten):
      // answer every query whose index moved either way, so the client re-asks with the index it now sees.
      replica.onReset(() => {
        for (const set of this.#byService.values()) this.#wake(set, true);
        this.#wake(this.#all, true);
      }),
    ];
  }

  get waiting(): number {
    return this.#count;
  }

  /** The revision a blocking query compares its index with. */
  indexOf(service: string | null): number {
    return service === null ? this.#replica.rev : this.#replica.serviceRev(service);
  }

  /** Resolves when `service` (or anything, for null) changed past `index`, at the timeout, or on abort. */
  wait(service: string | null, index: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.indexOf(service) > index || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const set = service === null ? this.#all : this.#setFor(service);
      // eslint-disable-next-line prefer-const -- assigned after the waiter that clears it is built
      let timer: NodeJS.Timeout;
      const waiter: Waiter = {
        index,
        service,
        done: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', waiter.done);
          if (set.delete(waiter)) this.#count--;
          if (service !== null && set.size === 0) this.#byService.delete(service);
          resolve();
        },
      };
      timer = setTimeout(waiter.done, timeoutMs);
      signal?.addEventListener('abort', waiter.done, { once: true });
      set.add(waiter);
      this.#count++;
    });
  }

  close(): void {
    for (const u of this.#unsubscribe) u();
    for (const set of this.#byService.values()) for (const w of [...set]) w.done();
    for (const w of [...this.#all]) w.done();
  }

  #setFor(service: string): Set<Waiter> {
    let set = this.#byService.get(service);
    if (!set) {
      set = new Set();
      this.#byService.set(service, set);
    }
    return set;
  }

  #wake(set: Set<Waiter> | undefined, reset = false): void {
    if (!set) return;
    for (const w of [...set]) {
      const index = this.indexOf(w.service);
      if (index > w.index || (reset && index !== w.index)) w.done();
    }
  }
}

/** `30` and `30s` are seconds, `500ms` milliseconds, `5m` minutes. */
export function parseWait(text: string | undefined, defaultMs: number, maxMs: number): number {
  if (text === undefined) return defaultMs;
  const m = /^(\d+)(ms|s|m)?$/.exec(text);
  if (!m) return defaultMs;
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  return Math.min(ms, maxMs);
}

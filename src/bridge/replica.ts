/**
 * A copy of the registry kept in step with the leader (the Clone pattern's client side): a snapshot, then events
 * applied strictly in revision order. It only holds data; `Follower` moves the data in.
 */
import { compactProvider } from './intern.ts';
import { orderEvent, type Ordering } from './revision.ts';
import type { Provider, RegistryEvent, Snapshot } from './schemas.ts';

export type ApplyResult = Ordering;

type EventListener = (event: RegistryEvent) => void;
type ResetListener = (snapshot: { epoch: string; rev: number }) => void;

export class Replica {
  #epoch: string | null = null;
  #rev = 0;
  readonly #providers = new Map<string, Provider>();
  readonly #services = new Map<string, Map<string, Provider>>();
  /** Revision of the last change to each service; survives deregistration so blocking queries see removals. */
  readonly #serviceRev = new Map<string, number>();
  readonly #onEvent = new Set<EventListener>();
  readonly #onReset = new Set<ResetListener>();
  #revWaiters: Array<{ rev: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout }> = [];
  /** The lowest revision a waiter waits for: an event below it wakes nobody and need not scan the waiters. */
  #minWaiterRev = Infinity;

  get epoch(): string | null {
    return this.#epoch;
  }
  get rev(): number {
    return this.#rev;
  }
  /** True once a snapshot has been applied. */
  get loaded(): boolean {
    return this.#epoch !== null;
  }
  get size(): number {
    return this.#providers.size;
  }

  provider(id: string): Provider | undefined {
    return this.#providers.get(id);
  }

  providers(): IterableIterator<Provider> {
    return this.#providers.values();
  }

  service(name: string): Provider[] {
    const members = this.#services.get(name);
    return members ? [...members.values()] : [];
  }

  serviceNames(): string[] {
    return [...this.#services.keys()].sort();
  }

  /** The last revision that touched `service` (0 if never seen since the last snapshot). */
  serviceRev(name: string): number {
    return this.#serviceRev.get(name) ?? 0;
  }

  applySnapshot(snapshot: Snapshot): void {
    this.#providers.clear();
    this.#services.clear();
    this.#serviceRev.clear();
    this.#epoch = snapshot.epoch;
    this.#rev = snapshot.rev;
    for (const provider of snapshot.providers) {
      this.#put(provider);
      const prev = this.#serviceRev.get(provider.service) ?? 0;
      if (provider.rev > prev) this.#serviceRev.set(provider.service, provider.rev);
    }
    for (const listener of this.#onReset) listener({ epoch: snapshot.epoch, rev: snapshot.rev });
    this.#wakeRevWaiters();
  }

  /** Applies `event` only when it is the next revision; otherwise says why not and changes nothing. */
  applyEvent(event: RegistryEvent): ApplyResult {
    const ordering = orderEvent({ epoch: this.#epoch, rev: this.#rev }, event);
    if (ordering !== 'next') return ordering;
    if (event.change === 'deregistered') this.#remove(event.provider.id);
    else this.#put(event.provider);
    this.#rev = event.rev;
    this.#serviceRev.set(event.service, event.rev);
    for (const listener of this.#onEvent) listener(event);
    this.#wakeRevWaiters();
    return ordering;
  }

  onEvent(listener: EventListener): () => void {
    this.#onEvent.add(listener);
    return () => this.#onEvent.delete(listener);
  }

  onReset(listener: ResetListener): () => void {
    this.#onReset.add(listener);
    return () => this.#onReset.delete(listener);
  }

  /** Resolves true once the replica has reached `rev` (read-your-writes after an acknowledged write). */
  waitForRev(rev: number, timeoutMs: number): Promise<boolean> {
    if (this.#rev >= rev) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        rev,
        resolve,
        timer: setTimeout(() => {
          this.#revWaiters = this.#revWaiters.filter((w) => w !== waiter);
          this.#minWaiterRev = this.#revWaiters.reduce((m, w) => Math.min(m, w.rev), Infinity);
          resolve(false);
        }, timeoutMs),
      };
      this.#revWaiters.push(waiter);
      if (rev < this.#minWaiterRev) this.#minWaiterRev = rev;
    });
  }

  /** Releases every waiter (on close). */
  releaseWaiters(): void {
    this.#minWaiterRev = Infinity;
    for (const w of this.#revWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
  }

  #wakeRevWaiters(): void {
    if (this.#rev < this.#minWaiterRev) return;
    const keep = [];
    let min = Infinity;
    for (const w of this.#revWaiters) {
      if (this.#rev >= w.rev) {
        clearTimeout(w.timer);
        w.resolve(true);
      } else {
        keep.push(w);
        if (w.rev < min) min = w.rev;
      }
    }
    this.#revWaiters = keep;
    this.#minWaiterRev = min;
  }

  #put(provider: Provider): void {
    // Decoded records carry their own copy of every string; the replica keeps shared ones (intern.ts).
    compactProvider(provider);
    const previous = this.#providers.get(provider.id);
    if (previous && previous.service !== provider.service) this.#remove(provider.id);
    this.#providers.set(provider.id, provider);
    let members = this.#services.get(provider.service);
    if (!members) {
      members = new Map();
      this.#services.set(provider.service, members);
    }
    members.set(provider.id, provider);
  }

  #remove(id: string): void {
    const previous = this.#providers.get(id);
    if (!previous) return;
    this.#providers.delete(id);
    const members = this.#services.get(previous.service);
    members?.delete(id);
    if (members && members.size === 0) this.#services.delete(previous.service);
  }
}

/**
 * The gateway's memory of recent events, so a client that reconnects (to this gateway or after a blip) resumes
 * from its last revision instead of taking a whole snapshot. A fixed-size ring: memory is bounded by `size`.
 */
import type { RegistryEvent } from '../bridge/index.ts';

export class EventHistory {
  readonly #ring: Array<RegistryEvent | undefined>;
  #start = 0;
  #length = 0;
  #epoch: string | null = null;
  /** Events after this revision (up to `#last`) are all held; older ones are gone. */
  #floor = 0;
  #last = 0;

  constructor(readonly size: number) {
    this.#ring = new Array<RegistryEvent | undefined>(Math.max(0, size));
  }

  get length(): number {
    return this.#length;
  }

  /** The oldest revision a client may resume from (it then gets every event after it). */
  get floor(): number {
    return this.#floor;
  }

  /**
   * The replica took a snapshot: what happened between our last event and the snapshot is unknown, so the old
   * events cannot be stitched to the new ones. Resumes work again from `rev` on.
   */
  reset(epoch: string, rev: number): void {
    this.#ring.fill(undefined);
    this.#start = 0;
    this.#length = 0;
    this.#epoch = epoch;
    this.#floor = rev;
    this.#last = rev;
  }

  /** Appends the next event (the replica hands them over strictly in order). */
  push(event: RegistryEvent): void {
    if (event.epoch !== this.#epoch || event.rev !== this.#last + 1) {
      // Not contiguous with what we hold: start over so a resume can never skip an event.
      this.reset(event.epoch, event.rev - 1);
    }
    this.#last = event.rev;
    if (this.size === 0) {
      this.#floor = event.rev;
      return;
    }
    if (this.#length < this.size) {
      this.#ring[(this.#start + this.#length) % this.size] = event;
      this.#length++;
    } else {
      this.#ring[this.#start] = event;
      this.#start = (this.#start + 1) % this.size;
      this.#floor++;
    }
  }

  /**
   * Every held event after `rev`, oldest first, or null when they are not all held: another epoch, a revision
   * older than the floor, or one newer than anything seen (the client follows a store we do not know).
   */
  since(epoch: string | undefined, rev: number): RegistryEvent[] | null {
    if (this.#epoch === null) return null;
    if (epoch !== undefined && epoch !== this.#epoch) return null;
    if (rev < this.#floor || rev > this.#last) return null;
    const out: RegistryEvent[] = [];
    for (let i = rev - this.#floor; i < this.#length; i++) out.push(this.#ring[(this.#start + i) % this.size]!);
    return out;
  }
}

/**
 * The leader's answers to snapshot requests. A snapshot is cheap to ask for and expensive to serve, so:
 * - its providers are encoded once per committed revision, and every reply at that revision reuses those bytes
 *   (a reply is a small header with the request's reqId, then the shared bytes: one copy per reply, no
 *   re-encoding); a follower that asks for chunks (`chunk` in the request) gets `snapshot.chunk` frames instead,
 *   each chunk encoded once per revision and shared the same way, sent one after the other with a turn of the
 *   event loop between them;
 * - at most SNAPSHOTS_PER_SECOND replies are built per second; requests beyond wait in a bounded line, one per
 *   peer, and past that are refused with a `nack` SB_BUSY (the follower retries);
 * - a peer that was sent this very revision less than SNAPSHOT_REPEAT_MS ago is refused the same way: a peer that
 *   asks again and again without reading cannot make the leader copy the registry into its queue again and again.
 * - the encoded bytes are let go ENCODED_KEEP_MS after the last reply: between gateway starts the leader holds no
 *   second copy of a big registry (18 MB at 100,000 providers).
 * The waiting line and the outcomes are counted (`switchboard_leader_snapshots_waiting`,
 * `switchboard_leader_snapshots_total{outcome}`).
 */
import {
  encodeRows,
  pack,
  packMapWithTail,
  snapshotChunkFrame,
  type Logger,
  type Metrics,
  type Provider,
} from '../bridge/index.ts';
import type { ControlSocket } from './control.ts';
import type { Registry } from './registry.ts';

/** Replies built per second, at most (a token bucket of this size refilled over a second). */
export const SNAPSHOTS_PER_SECOND = 8;
/** Requests waiting for their turn, at most; one per peer. */
export const MAX_SNAPSHOTS_WAITING = 64;
/** A peer is not sent the same revision twice within this time. */
export const SNAPSHOT_REPEAT_MS = 1000;
/** The encoded snapshot is kept this long after its last reply, for the next request at the same revision. */
export const ENCODED_KEEP_MS = 10_000;

interface Waiting {
  routing: Buffer;
  peer: string;
  reqId: number;
  /** Providers per frame, for a snapshot in chunks; undefined: one frame. */
  chunk: number | undefined;
}

/**
 * The registry of one revision in chunks of `size` providers: the records are taken at once (records are replaced
 * on change, never edited, so the list stays that revision's), and each chunk is encoded when first sent.
 */
interface Chunks {
  at: string;
  epoch: string;
  rev: number;
  size: number;
  providers: readonly Provider[];
  encoded: Buffer[];
}

export class SnapshotReplies {
  readonly #registry: Registry;
  readonly #control: ControlSocket;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  /** The providers of revision `#encodedAt`, msgpack-encoded once. */
  #encoded: Buffer | null = null;
  #encodedAt = '';
  /** The registry of revision `#chunks.at`, for snapshots in chunks (one encoding of each chunk, shared). */
  #chunks: Chunks | null = null;
  readonly #waiting: Waiting[] = [];
  readonly #waitingPeers = new Set<string>();
  /** Peer → the revision it was last sent and when. Entries older than SNAPSHOT_REPEAT_MS are swept. */
  readonly #lastSent = new Map<string, { at: string; time: number }>();
  #tokens = SNAPSHOTS_PER_SECOND;
  #refilledAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #dropTimer: NodeJS.Timeout | undefined;
  #draining = false;

  constructor(opts: { registry: Registry; control: ControlSocket; metrics: Metrics; log: Logger }) {
    this.#registry = opts.registry;
    this.#control = opts.control;
    this.#metrics = opts.metrics;
    this.#log = opts.log.child({ component: 'snapshots' });
    opts.metrics.gauge(
      'switchboard_leader_snapshots_waiting',
      'Snapshot requests waiting for their turn',
      () => this.#waiting.length,
    );
    for (const outcome of ['sent', 'busy'])
      opts.metrics.counter('switchboard_leader_snapshots_total', 'Snapshot requests, by outcome', { outcome });
    opts.metrics.counter('switchboard_leader_snapshot_encodings_total', 'Snapshots encoded (one per revision asked)');
  }

  /** A snapshot request from `routing`: answered now, later, or refused with SB_BUSY. */
  request(routing: Buffer, reqId: number, chunk?: number): void {
    const peer = routing.toString('hex');
    const now = Date.now();
    const last = this.#lastSent.get(peer);
    const repeated = last !== undefined && last.at === this.#at() && now - last.time < SNAPSHOT_REPEAT_MS;
    if (repeated || this.#waitingPeers.has(peer) || this.#waiting.length >= MAX_SNAPSHOTS_WAITING) {
      this.#busy(
        routing,
        reqId,
        repeated ? 'this revision was sent to you a moment ago' : 'too many snapshot requests',
      );
      return;
    }
    this.#waiting.push({ routing, peer, reqId, chunk });
    this.#waitingPeers.add(peer);
    void this.#drain();
  }

  /** Stops the refill timer and forgets who waits (the control socket drops their replies anyway). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dropEncoded();
    this.#waiting.length = 0;
    this.#waitingPeers.clear();
  }

  #at(): string {
    return `${this.#registry.epoch}/${this.#registry.committedRev}`;
  }

  #busy(routing: Buffer, reqId: number, why: string): void {
    this.#metrics.inc('switchboard_leader_snapshots_total', { outcome: 'busy' });
    this.#control.reply(routing, { type: 'nack', reqId, statusCode: 503, code: 'SB_BUSY', message: `${why}; retry` });
  }

  #refill(now: number): void {
    const earned = ((now - this.#refilledAt) / 1000) * SNAPSHOTS_PER_SECOND;
    this.#tokens = Math.min(SNAPSHOTS_PER_SECOND, this.#tokens + earned);
    this.#refilledAt = now;
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#waiting.length > 0 && !this.#control.closed) {
        this.#refill(Date.now());
        if (this.#tokens < 1) {
          // Come back when the next token is earned.
          clearTimeout(this.#timer);
          const ms = Math.ceil(((1 - this.#tokens) * 1000) / SNAPSHOTS_PER_SECOND);
          this.#timer = setTimeout(() => void this.#drain(), ms);
          this.#timer.unref();
          return;
        }
        // Only durable state goes out: wait until nothing is staged.
        while (this.#registry.rev !== this.#registry.committedRev) await this.#registry.committed();
        const next = this.#waiting.shift();
        if (!next) break;
        this.#waitingPeers.delete(next.peer);
        this.#tokens -= 1;
        if (next.chunk === undefined) this.#send(next);
        else await this.#sendChunks(next, next.chunk);
      }
    } catch (err) {
      this.#log.error({ err }, 'snapshot replies failed');
      for (const w of this.#waiting.splice(0)) this.#busy(w.routing, w.reqId, 'the leader could not build a snapshot');
      this.#waitingPeers.clear();
    } finally {
      this.#draining = false;
    }
  }

  #dropEncoded(): void {
    clearTimeout(this.#dropTimer);
    this.#dropTimer = undefined;
    this.#encoded = null;
    this.#encodedAt = '';
    this.#chunks = null;
  }

  /**
   * The snapshot in chunks: each frame handed to ZeroMQ before the next is encoded, with a turn of the event loop
   * between them, so the leader keeps answering while a large registry goes out and the follower decodes the first
   * chunks while the last are encoded.
   */
  async #sendChunks(w: Waiting, size: number): Promise<void> {
    const at = this.#at();
    let chunks = this.#chunks;
    if (!chunks || chunks.at !== at || chunks.size !== size) {
      chunks = {
        at,
        epoch: this.#registry.epoch,
        rev: this.#registry.committedRev,
        size,
        providers: [...this.#registry.all()],
        encoded: [],
      };
      this.#chunks = chunks;
      this.#encoded = null;
      this.#metrics.inc('switchboard_leader_snapshot_encodings_total');
    }
    this.#sent(w.peer, at);
    const total = chunks.providers.length;
    const count = Math.max(1, Math.ceil(total / size));
    for (let seq = 0; seq < count; seq++) {
      if (this.#control.closed) return;
      this.#keepEncoded();
      const rows = (chunks.encoded[seq] ??= encodeRows(chunks.providers, seq * size, size));
      const head = { reqId: w.reqId, epoch: chunks.epoch, rev: chunks.rev, seq, total, last: seq === count - 1 };
      this.#control.replyEncoded(w.routing, snapshotChunkFrame(head, rows));
      await this.#control.idle();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Keeps what is encoded for ENCODED_KEEP_MS from now. */
  #keepEncoded(): void {
    clearTimeout(this.#dropTimer);
    this.#dropTimer = setTimeout(() => this.#dropEncoded(), ENCODED_KEEP_MS);
    this.#dropTimer.unref();
  }

  /** Remembers that `peer` was sent revision `at` now (and forgets the entries that no longer matter). */
  #sent(peer: string, at: string): void {
    const now = Date.now();
    for (const [p, last] of this.#lastSent) if (now - last.time >= SNAPSHOT_REPEAT_MS) this.#lastSent.delete(p);
    this.#lastSent.set(peer, { at, time: now });
    this.#metrics.inc('switchboard_leader_snapshots_total', { outcome: 'sent' });
  }

  #send(w: Waiting): void {
    const at = this.#at();
    if (at !== this.#encodedAt || !this.#encoded) {
      // `pack` answers a view of an encoder buffer about twice its size: kept for seconds, keep just the bytes.
      this.#encoded = Buffer.from(pack([...this.#registry.all()]));
      this.#encodedAt = at;
      this.#chunks = null;
      this.#metrics.inc('switchboard_leader_snapshot_encodings_total');
    }
    this.#keepEncoded();
    this.#sent(w.peer, at);
    this.#control.replyEncoded(
      w.routing,
      snapshotReply(w.reqId, this.#registry.epoch, this.#registry.committedRev, this.#encoded),
    );
  }
}

/**
 * `{ type: 'snapshot.reply', reqId, epoch, rev, providers }` as MessagePack, with `providers` already encoded: a
 * map header, four small fields, then the shared bytes.
 */
export function snapshotReply(reqId: number, epoch: string, rev: number, providers: Buffer): Buffer {
  return packMapWithTail({ type: 'snapshot.reply', reqId, epoch, rev }, 1, [pack('providers'), providers]);
}

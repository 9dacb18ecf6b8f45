/**
 * A snapshot sent in chunks: the leader sends the registry of one revision as `snapshot.chunk` frames of at most
 * `chunk` providers, as rows (arrays, no repeated keys), and the follower decodes and compacts each frame as it
 * arrives. So decoding overlaps the transfer, no frame or buffer holds the whole registry (1,000,000 providers
 * are ~180 MB of msgpack), and each record is built once, in its compact form, straight from its row.
 *
 * The follower's copy is replaced only by a complete sequence: `SnapshotAssembly` refuses a chunk out of order, of
 * another revision, or a last chunk whose count is short, and the whole request then fails and is asked again.
 */
import { pack, packMapWithTail } from './codec.ts';
import { intern, internValue, shareMeta, shareTags } from './intern.ts';
import type { ProviderRow, SnapshotChunk } from './messages.ts';
import type { Provider, Snapshot } from './schemas.ts';

/** Providers per chunk a follower asks for: ~400 KB frames, 50 of them at 100,000 providers. */
export const DEFAULT_SNAPSHOT_CHUNK = 2000;

/** Why a chunk sequence was refused (`switchboard_replica_snapshots_refused_total{reason}`). */
export type ChunkRefusal = 'order' | 'revision' | 'count' | 'index';
export const CHUNK_REFUSALS: readonly ChunkRefusal[] = ['order', 'revision', 'count', 'index'];

export class SnapshotChunkError extends Error {
  constructor(
    readonly reason: ChunkRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotChunkError';
  }
}

/** The lists of a chunk its rows point into, by field. */
interface ChunkLists {
  services: string[];
  protocols: string[];
  tags: Provider['tags'][];
  metas: Provider['meta'][];
  states: Provider['state'][];
}

/** Values → their position in a list, for one chunk (records share tag lists and meta maps: found by identity). */
class Positions<T> {
  readonly list: T[] = [];
  readonly #at = new Map<T, number>();
  of(value: T): number {
    let i = this.#at.get(value);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(value);
      this.#at.set(value, i);
    }
    return i;
  }
}

/** The optional fields of a record, or null when it has none. */
function extraOf(p: Provider): ProviderRow[12] {
  if (p.check === undefined && p.lastCheck === undefined && p.owner === undefined) return null;
  const extra: NonNullable<ProviderRow[12]> = {};
  if (p.check !== undefined) extra.check = p.check;
  if (p.lastCheck !== undefined) extra.lastCheck = p.lastCheck;
  if (p.owner !== undefined) extra.owner = p.owner;
  return extra;
}

/**
 * The lists and rows of `providers[first, first + count)`, msgpack-encoded as the tail of a `snapshot.chunk` map:
 * the shared part of one chunk, sent to every follower that asks at this revision with this chunk size.
 */
export function encodeRows(providers: readonly Provider[], first: number, count: number): Buffer {
  const services = new Positions<string>();
  const protocols = new Positions<string>();
  const tags = new Positions<Provider['tags']>();
  const metas = new Positions<Provider['meta']>();
  const states = new Positions<Provider['state']>();
  const rows: ProviderRow[] = [];
  const end = Math.min(providers.length, first + count);
  for (let i = first; i < end; i++) {
    const p = providers[i];
    rows.push([
      p.id,
      services.of(p.service),
      p.host,
      p.port,
      protocols.of(p.protocol),
      tags.of(p.tags),
      metas.of(p.meta),
      states.of(p.state),
      p.stateSince,
      p.registeredAt,
      p.updatedAt,
      p.rev,
      extraOf(p),
    ]);
  }
  const lists: ChunkLists = {
    services: services.list,
    protocols: protocols.list,
    tags: tags.list,
    metas: metas.list,
    states: states.list,
  };
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(lists)) parts.push(pack(key), pack(value));
  parts.push(pack('rows'), pack(rows));
  // `pack` answers views of an encoder buffer: concat keeps just the bytes (they are kept for seconds).
  return Buffer.concat(parts);
}

/** Entries of the map `encodeRows` ends: its five lists and `rows`. */
const BODY_ENTRIES = 6;

/**
 * `{ type: 'snapshot.chunk', reqId, epoch, rev, seq, total, last, ...lists, rows }` as MessagePack, with the lists
 * and rows already encoded: a map header, seven small fields, then the shared bytes.
 */
export function snapshotChunkFrame(
  head: { reqId: number; epoch: string; rev: number; seq: number; total: number; last: boolean },
  body: Buffer,
): Buffer {
  const { reqId, epoch, rev, seq, total, last } = head;
  return packMapWithTail({ type: 'snapshot.chunk', reqId, epoch, rev, seq, total, last }, BODY_ENTRIES, [body]);
}

/** A list entry a row points to, or a refusal when it points past the list. */
function at<T>(list: readonly T[], i: number, what: string): T {
  const value = list[i];
  if (value === undefined) throw new SnapshotChunkError('index', `a row points past the ${what} list`);
  return value;
}

/**
 * The records of a chunk, compact (shared strings, tag lists and meta maps): each list entry is shared once for
 * the chunk, then every row's record is built straight from it, keys in schema order.
 */
export function chunkProviders(chunk: SnapshotChunk): Provider[] {
  const services = chunk.services.map(intern);
  const protocols = chunk.protocols.map(intern);
  const states = chunk.states.map((s) => intern(s) as Provider['state']);
  const tags = chunk.tags.map(shareTags);
  const metas = chunk.metas.map(shareMeta);
  const out: Provider[] = new Array<Provider>(chunk.rows.length);
  for (let i = 0; i < chunk.rows.length; i++) {
    const row = chunk.rows[i];
    const extra = row[12];
    const service = at(services, row[1], 'services');
    const protocol = at(protocols, row[4], 'protocols');
    const tagList = at(tags, row[5], 'tags');
    const meta = at(metas, row[6], 'metas');
    const state = at(states, row[7], 'states');
    const host = internValue(row[2]);
    if (extra === null) {
      // The common case: one object shape for every record.
      out[i] = {
        id: row[0],
        service,
        host,
        port: row[3],
        protocol,
        tags: tagList,
        meta,
        state,
        stateSince: row[8],
        registeredAt: row[9],
        updatedAt: row[10],
        rev: row[11],
      };
      continue;
    }
    const p = { id: row[0], service, host, port: row[3], protocol } as Provider;
    if (extra.check !== undefined) p.check = extra.check;
    p.tags = tagList;
    p.meta = meta;
    p.state = state;
    p.stateSince = row[8];
    p.registeredAt = row[9];
    p.updatedAt = row[10];
    p.rev = row[11];
    if (extra.lastCheck !== undefined) p.lastCheck = extra.lastCheck;
    if (extra.owner !== undefined) p.owner = extra.owner;
    out[i] = p;
  }
  return out;
}

/**
 * The follower's side: chunks of one request go in, in order; a complete snapshot comes out. Any break in the
 * sequence throws a SnapshotChunkError and the assembly is to be dropped (nothing of it reaches the replica).
 */
export class SnapshotAssembly {
  #epoch = '';
  #rev = -1;
  #total = -1;
  #next = 0;
  #providers: Provider[] = [];
  #done = false;
  #refused: ChunkRefusal | null = null;

  /** Providers received so far. */
  get received(): number {
    return this.#providers.length;
  }

  /**
   * Takes the next chunk; true once it was the last (then `snapshot()` answers the whole). Throws a
   * SnapshotChunkError on a break in the sequence, and the assembly stays refused.
   */
  add(chunk: SnapshotChunk): boolean {
    if (this.#refused) throw new SnapshotChunkError(this.#refused, 'this snapshot was refused');
    try {
      return this.#add(chunk);
    } catch (err) {
      if (err instanceof SnapshotChunkError) {
        this.#refused = err.reason;
        this.#providers = [];
      }
      throw err;
    }
  }

  #add(chunk: SnapshotChunk): boolean {
    if (this.#done || chunk.seq !== this.#next)
      throw new SnapshotChunkError('order', `chunk ${chunk.seq} arrived where chunk ${this.#next} was due`);
    if (chunk.seq === 0) {
      this.#epoch = chunk.epoch;
      this.#rev = chunk.rev;
      this.#total = chunk.total;
    } else if (chunk.epoch !== this.#epoch || chunk.rev !== this.#rev || chunk.total !== this.#total) {
      throw new SnapshotChunkError(
        'revision',
        `chunk ${chunk.seq} is of ${chunk.epoch}/${chunk.rev} (${chunk.total}), the first of ${this.#epoch}/${this.#rev} (${this.#total})`,
      );
    }
    if (this.#providers.length + chunk.rows.length > this.#total)
      throw new SnapshotChunkError('count', `more than the ${this.#total} providers announced`);
    for (const p of chunkProviders(chunk)) this.#providers.push(p);
    this.#next++;
    if (!chunk.last) return false;
    if (this.#providers.length !== this.#total)
      throw new SnapshotChunkError('count', `${this.#providers.length} of the ${this.#total} providers announced`);
    this.#done = true;
    return true;
  }

  /** The whole snapshot, once the last chunk is in. */
  snapshot(): Snapshot {
    if (this.#refused) throw new SnapshotChunkError(this.#refused, 'this snapshot was refused');
    if (!this.#done) throw new SnapshotChunkError('count', 'the snapshot is not complete');
    const providers = this.#providers;
    this.#providers = [];
    return { epoch: this.#epoch, rev: this.#rev, providers };
  }
}

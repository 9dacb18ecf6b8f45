/**
 * One shared copy of the strings that repeat across provider records (service names, hosts, protocols, states,
 * tags, meta keys and values), for the leader's registry and the gateways' replicas: 100,000 records decoded from
 * JSON or MessagePack otherwise carry 100,000 copies of each (a heap snapshot of a leader holding 100,000
 * providers: ~130 bytes a record of repeated strings, tag lists and meta maps).
 *
 * The tables are bounded maps, cleared when full: what repeats often is found again at once, a string seen once
 * (a unique host) costs one map entry until the next clear, and nothing grows with the registry. (V8's own string
 * table, reached through a property name, would be weak but costs ~4 µs a new string: 4 s to load 1M records.)
 */
import type { Provider } from './schemas.ts';

/** Names (services, protocols, states, tags, meta keys) remembered at once; the table is cleared when full. */
export const INTERN_NAMES = 16_384;
/** Values (hosts, meta values) remembered at once; the table is cleared when full. */
export const INTERN_VALUES = 65_536;
/** Tag lists and meta maps remembered at once (each table); cleared when full. */
export const INTERN_SHARED_LISTS = 4096;
/** Longer strings are left as they are (a meta value may be long and unique). */
export const INTERN_MAX_LENGTH = 256;

class Interner {
  readonly #table = new Map<string, string>();
  constructor(readonly size: number) {}

  intern(s: string): string {
    const hit = this.#table.get(s);
    if (hit !== undefined) return hit;
    if (s.length > INTERN_MAX_LENGTH) return s;
    if (this.#table.size >= this.size) this.#table.clear();
    this.#table.set(s, s);
    return s;
  }
}

const names = new Interner(INTERN_NAMES);
const values = new Interner(INTERN_VALUES);

/** The shared copy of a name (service, protocol, tag, meta key): equal names give the same string. */
export function intern(s: string): string {
  return names.intern(s);
}

/**
 * Tag lists and meta maps are shared whole between records that carry equal ones (the instances of a service
 * mostly do): records are replaced on change, never edited, so one frozen copy serves them all (an edit would
 * throw rather than change every record). Remembered per JSON text, at most INTERN_SHARED_LISTS of each; cleared when full.
 */
const sharedTags = new Map<string, string[]>();
const sharedMeta = new Map<string, Provider['meta']>();
const EMPTY_TAGS: string[] = Object.freeze([]) as unknown as string[];
const EMPTY_META: Provider['meta'] = Object.freeze({});

function share<T extends object>(table: Map<string, T>, value: T): T {
  const key = JSON.stringify(value);
  const hit = table.get(key);
  if (hit !== undefined) return hit;
  if (table.size >= INTERN_SHARED_LISTS) table.clear();
  table.set(key, Object.freeze(value));
  return value;
}

/** The shared copy of a value (host, meta value). */
export function internValue(s: string): string {
  return values.intern(s);
}

/** The shared, frozen copy of a tag list (`tags` itself is changed and may be the one kept). */
export function shareTags(tags: string[]): string[] {
  if (tags.length === 0) return EMPTY_TAGS;
  if (Object.isFrozen(tags)) return tags;
  for (let i = 0; i < tags.length; i++) tags[i] = names.intern(tags[i]);
  return share(sharedTags, tags);
}

/** The shared, frozen copy of a meta map (`meta` itself is changed and may be the one kept). */
export function shareMeta(meta: Provider['meta']): Provider['meta'] {
  if (Object.isFrozen(meta)) return meta;
  let empty = true;
  // Keys of an object built by a decoder are property names already (shared by V8); values are not.
  for (const k in meta) {
    meta[k] = values.intern(meta[k]);
    empty = false;
  }
  return empty ? EMPTY_META : share(sharedMeta, meta);
}

/**
 * `p` with its repeated strings, tag list and meta map replaced by shared copies, in place (the same record with
 * the same values, serialized byte for byte as before). Returns `p`.
 */
export function compactProvider<T extends Provider>(p: T): T {
  p.service = names.intern(p.service);
  p.host = values.intern(p.host);
  p.protocol = names.intern(p.protocol);
  p.state = names.intern(p.state) as Provider['state'];
  p.tags = shareTags(p.tags);
  p.meta = shareMeta(p.meta);
  return p;
}

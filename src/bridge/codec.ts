/**
 * MessagePack on every ZeroMQ frame. Records (msgpackr's extension) are off everywhere: the public feed must be
 * plain maps for non-JS decoders, and using one format inside too keeps a single decoder to harden.
 */
import { Packr, Unpackr } from 'msgpackr';

const packr = new Packr({ useRecords: false, variableMapSize: true });
// A plain decoder for untrusted input: no structures, objects as plain maps; msgpackr renames `__proto__` keys.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

/** Throws on malformed input; callers validate the result with a schema before use. */
export function unpack(frame: Uint8Array): unknown {
  return unpackr.unpack(frame);
}

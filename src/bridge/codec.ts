/**
 * MessagePack on every ZeroMQ frame. Records (msgpackr's extension) are off everywhere: the public feed must be
 * plain maps for non-JS decoders, and using one format inside too keeps a single decoder to harden.
 */
import { Packr, Unpackr } from 'msgpackr';

const packr = new Packr({ useRecords: false, variableMapSize: true });
// A plain decoder for untrusted input: no structures, objects as plain maps; msgpackr renames `__proto__` keys.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Above this, the encoder's work buffer is replaced after the message is packed (see `pack`). */
const LARGE_MESSAGE_BYTES = 1024 * 1024;

export function pack(value: unknown): Buffer {
  const out = packr.pack(value);
  // msgpackr grows its (process-wide) work buffer to about four times the largest message and keeps it: one
  // snapshot of a large registry would pin tens of MB for good. The packed bytes stay valid (they are a view
  // of the old buffer, freed once sent); later messages get a small buffer again.
  if (out.length > LARGE_MESSAGE_BYTES) packr.useBuffer(Buffer.allocUnsafeSlow(64 * 1024));
  return out;
}

/** Throws on malformed input; callers validate the result with a schema before use. */
export function unpack(frame: Uint8Array): unknown {
  return unpackr.unpack(frame);
}

/**
 * A msgpack map whose last entries are already encoded: the `head` fields (small values, packed here), then
 * `tail`, the encoded keys and values of `tailEntries` more entries (bytes shared between messages, not copied
 * into the encoder). At most 15 entries in all (a fixmap).
 */
export function packMapWithTail(head: Record<string, unknown>, tailEntries: number, tail: readonly Buffer[]): Buffer {
  const fields = Object.entries(head);
  const entries = fields.length + tailEntries;
  if (entries > 15) throw new RangeError(`a map of ${entries} entries is no fixmap`);
  const parts: Buffer[] = [Buffer.from([0x80 | entries])];
  for (const [key, value] of fields) parts.push(pack(key), pack(value));
  parts.push(...tail);
  return Buffer.concat(parts);
}

/**
 * Batch frames between gateways and the leader: the writes of one event-loop turn travel in one `batch` frame and
 * their answers in `batch.reply` frames. A frame costs a ZeroMQ send, a wake-up of its I/O thread, a receive and a
 * decode on the other side whatever it carries, so at thousands of writes per second one frame per turn instead
 * of one per write takes that cost off every write (see bench/RESULTS.md, "What the profiles showed").
 */
import { pack } from './codec.ts';
import { BATCHABLE_TYPES, MAX_BATCH_FRAME_BYTES, MAX_BATCH_REQUESTS, type BatchableType } from './messages.ts';

const batchable = new Set<string>(BATCHABLE_TYPES);

/** True for the request types that may travel in a batch frame. */
export function isBatchable(type: string): type is BatchableType {
  return batchable.has(type);
}

/**
 * Encodes `items` as frames of `wrap(slice)`: at most `maxItems` items each and, where an item allows it, at most
 * `maxBytes` bytes (a frame over it is split in halves; one item alone goes as it is). In order.
 */
export function packBatches<T>(
  items: readonly T[],
  wrap: (slice: readonly T[]) => object,
  maxItems = MAX_BATCH_REQUESTS,
  maxBytes = MAX_BATCH_FRAME_BYTES,
): Array<{ items: readonly T[]; frame: Buffer }> {
  const out: Array<{ items: readonly T[]; frame: Buffer }> = [];
  const add = (slice: readonly T[]): void => {
    const frame = pack(wrap(slice));
    if (frame.length <= maxBytes || slice.length === 1) {
      out.push({ items: slice, frame });
      return;
    }
    const half = Math.ceil(slice.length / 2);
    add(slice.slice(0, half));
    add(slice.slice(half));
  };
  for (let i = 0; i < items.length; i += maxItems) add(items.slice(i, i + maxItems));
  return out;
}

/**
 * Serialized lookup answers, kept as UTF-8 bytes (a string would be encoded again on every send), bounded by
 * their total size in bytes (not their count: one answer for a large service can be tens of megabytes). An answer
 * larger than a quarter of the budget is not kept at all; when the budget is full the cache starts over, which is
 * cheap because every change of the registry clears it anyway.
 */
export const DEFAULT_LOOKUP_CACHE_BYTES = 64 * 1024 * 1024;

export class AnswerCache {
  readonly #maxBytes: number;
  readonly #answers = new Map<string, Buffer>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(key: string): Buffer | undefined {
    return this.#answers.get(key);
  }

  set(key: string, answer: Buffer): void {
    // Keys are UTF-16 strings in V8: two bytes per unit.
    const size = answer.length + 2 * key.length;
    if (size > this.#maxBytes / 4) return;
    if (this.#bytes + size > this.#maxBytes) this.clear();
    this.#answers.set(key, answer);
    this.#bytes += size;
  }

  clear(): void {
    this.#answers.clear();
    this.#bytes = 0;
  }
}

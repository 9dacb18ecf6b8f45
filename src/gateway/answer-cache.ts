/**
 * Serialized lookup answers, bounded by their total size in bytes (not their count: one answer for a large
 * service can be tens of megabytes). An answer larger than a quarter of the budget is not kept at all; when the
 * budget is full the cache starts over, which is cheap because every change of the registry clears it anyway.
 */
export const DEFAULT_LOOKUP_CACHE_BYTES = 64 * 1024 * 1024;

export class AnswerCache {
  readonly #maxBytes: number;
  readonly #answers = new Map<string, string>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(key: string): string | undefined {
    return this.#answers.get(key);
  }

  set(key: string, answer: string): void {
    // Two bytes per UTF-16 unit is what V8 may hold for it; key sizes are small and counted too.
    const size = 2 * (answer.length + key.length);
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

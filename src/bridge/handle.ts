/** The shape every role's `start()` returns: an idempotent close, a `closed` promise, and `await using` support. */
export interface Handle {
  close(): Promise<void>;
  readonly closed: Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Builds a Handle around a close routine that runs at most once. */
export function makeHandle<T extends object>(extra: T, shutdown: () => Promise<void>): T & Handle {
  let closing: Promise<void> | null = null;
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  const close = (): Promise<void> => {
    closing ??= shutdown().finally(markClosed);
    return closing;
  };
  return Object.assign(extra, { close, closed, [Symbol.asyncDispose]: close });
}

/** Errors of the internal plane, with string codes (as zeromq.js does) so callers branch on `code`, not text. */
/** `LINK_LOST`: the connection dropped while the request was out; its answer, if any, died with it. */
export type LinkErrorCode = 'LINK_TIMEOUT' | 'LINK_BUSY' | 'LINK_CLOSED' | 'LINK_SEND_FAILED' | 'LINK_LOST';

export class LinkError extends Error {
  readonly code: LinkErrorCode;
  constructor(code: LinkErrorCode, message: string) {
    super(message);
    this.name = 'LinkError';
    this.code = code;
  }
}

/** A request the leader refused (validation, conflict, not found). Carries the public error code. */
export class LeaderError extends Error {
  readonly code: string;
  readonly statusCode: number;
  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.name = 'LeaderError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

/**
 * A role cannot start as configured: a store it cannot use (invalid, in use by another leader, unwritable), an
 * address already in use. The message is one line for a human, naming the file, row or address at fault; the CLI
 * prints it alone, without a stack trace.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** What a gateway answered when it refused a request: its status and Switchboard error code, kept as they are. */
export class SwitchboardError extends Error {
  readonly statusCode: number;
  readonly code: string;
  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.name = 'SwitchboardError';
    this.statusCode = statusCode;
    this.code = code;
  }
}

/** Every gateway was tried and none answered. */
export class NoGatewayError extends Error {
  readonly code = 'SB_NO_GATEWAY';
  readonly causes: unknown[];
  constructor(causes: unknown[]) {
    super(`no gateway answered (${causes.map((c) => (c as Error)?.message ?? String(c)).join('; ')})`);
    this.name = 'NoGatewayError';
    this.causes = causes;
  }
}

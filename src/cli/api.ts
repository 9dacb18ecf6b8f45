/**
 * How the operator's commands talk to a gateway: one JSON request with the token, its answer or an `ApiError` that
 * carries the status to the exit code. Shared by human.ts (ls, get, register, …) and acl.ts (`switchboard acl`).
 */
import type { ParseArgsConfig } from 'node:util';

export const EXIT = {
  OK: 0,
  /** The gateway could not be reached, timed out, or failed (5xx). */
  FAILED: 1,
  /** Bad command line. */
  USAGE: 2,
  /** The provider (or service) does not exist. */
  NOT_FOUND: 3,
  /** The gateway refused the request (4xx other than 404: invalid body, conflict, …). */
  REJECTED: 4,
} as const;

export const DEFAULT_GATEWAY = 'http://127.0.0.1:7700';
export const DEFAULT_CLI_TIMEOUT_MS = 10_000;

export type Options = NonNullable<ParseArgsConfig['options']>;

export class UsageError extends Error {}

/** An HTTP answer that is not what the command wanted, carried to the exit code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface Ctx extends Io {
  gateway: string;
  token: string | undefined;
  json: boolean;
  timeoutMs: number;
}

export interface HumanCommand {
  summary: string;
  usage: string;
  options: Options;
  help: string[];
  run(ctx: Ctx, values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

export async function call<T>(
  ctx: Ctx,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (ctx.token) headers.authorization = `Bearer ${ctx.token}`;
  let res: Response;
  try {
    res = await fetch(new URL(path, ctx.gateway), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
  } catch (err) {
    // fetch wraps the socket error: ECONNREFUSED, ENOTFOUND, … (or an AggregateError of them), or a timeout.
    const c = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
    const cause = c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).message;
    throw new ApiError(0, `cannot reach the gateway at ${ctx.gateway} (${cause})`);
  }
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (res.status >= 400) {
    const e = parsed as { message?: string; code?: string } | null;
    throw new ApiError(res.status, `${res.status} ${e?.code ?? ''} ${e?.message ?? text}`.replace(/\s+/g, ' ').trim());
  }
  if (res.headers.get('x-switchboard-stale') === 'true')
    ctx.err('warning: the gateway has lost its leader; this answer may be out of date\n');
  return { status: res.status, body: parsed as T };
}

export function intFlag(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n))
    throw new UsageError(`--${name} must be an integer, got '${typeof v === 'string' ? v : typeof v}'`);
  return n;
}

/** HTTP errors built from the one table in the bridge, so every answer has Fastify's shape and a known code. */
import createError, { type FastifyErrorConstructor } from '@fastify/error';
import { ERROR_CODES, type ErrorCode } from '../bridge/index.ts';

const constructors = new Map<string, FastifyErrorConstructor>();
for (const [code, spec] of Object.entries(ERROR_CODES)) {
  constructors.set(code, createError(code, spec.message, spec.statusCode));
}

export function httpError(code: ErrorCode, ...args: unknown[]): Error {
  return new (constructors.get(code)!)(...args);
}

/** An error the leader answered with: keep its code and message when the code is known. */
export function errorFromLeader(statusCode: number, code: string, message: string): Error {
  const ctor = constructors.get(code);
  if (ctor && ERROR_CODES[code as ErrorCode].message === '%s') return new ctor(message);
  if (ctor) {
    const err = new ctor();
    err.message = message;
    return err;
  }
  const err = new (constructors.get('SB_LEADER_FAILED')!)(message);
  (err as { statusCode?: number }).statusCode = statusCode;
  return err;
}

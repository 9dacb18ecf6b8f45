/**
 * Fastify's own body-parsing errors, answered with our codes: a client should only ever see codes listed in
 * src/bridge/error-codes.ts and the OpenAPI document. Every other error goes on to Fastify's handler unchanged.
 */
import { errorCodes, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ErrorCode } from '../bridge/index.ts';
import { httpError } from './errors.ts';

const MAPPED: Array<[new (...args: never[]) => Error, ErrorCode]> = [
  [errorCodes.FST_ERR_CTP_INVALID_JSON_BODY, 'SB_INVALID_JSON'],
  [errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY, 'SB_INVALID_JSON'],
  [errorCodes.FST_ERR_CTP_BODY_TOO_LARGE, 'SB_BODY_TOO_LARGE'],
  [errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE, 'SB_UNSUPPORTED_MEDIA_TYPE'],
  [errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH, 'SB_BAD_REQUEST'],
  // A path with a broken percent-encoding (`/v1/providers/%`, `%c0%ae`); found by test/fuzz/rest.test.ts.
  [errorCodes.FST_ERR_BAD_URL, 'SB_BAD_REQUEST'],
];

/** Our error for one of Fastify's parsing errors (its message kept), or undefined for anything else. */
export function ourError(err: Error): Error | undefined {
  for (const [ctor, code] of MAPPED) if (err instanceof ctor) return httpError(code, err.message);
  return undefined;
}

/**
 * Fastify's `frameworkErrors` option: the router's own refusals answered Fastify's codes (FST_ERR_BAD_URL 400,
 * FST_ERR_MAX_PARAM_LENGTH 414, found by test/fuzz/rest.test.ts). A bad encoding is SB_BAD_REQUEST; an id over the
 * router's limit is refused as one just over the schema's limit is, 400 FST_ERR_VALIDATION (not echoing the path).
 */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const ours =
    err instanceof errorCodes.FST_ERR_MAX_PARAM_LENGTH
      ? httpError('FST_ERR_VALIDATION', 'params: a path parameter is longer than the router accepts')
      : ourError(err);
  void reply.send(ours ?? err);
}

/** Installs the mapping as the app's error handler; unmapped errors reach Fastify's default handler as before. */
export function mapFrameworkErrors(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, _request, reply) => {
    // Inside an error handler, reply.send(error) hands the error to the parent (default) handler.
    reply.send(ourError(err) ?? err);
  });
}

/**
 * The route pattern of a request (`/v1/providers/:id`), read once per request. Fastify's `request.routeOptions`
 * builds a new dozen-field object on every access, and the hooks of one request (Host/Origin check, audit,
 * metrics, ACL) ask for it half a dozen times.
 */
import type { FastifyRequest } from 'fastify';

const urls = new WeakMap<FastifyRequest, string | null>();

/** The matched route's pattern, undefined when no route matched (404). */
export function routeUrl(request: FastifyRequest): string | undefined {
  let url = urls.get(request);
  if (url === undefined) {
    url = request.routeOptions.url ?? null;
    urls.set(request, url);
  }
  return url ?? undefined;
}

/**
 * The dashboard: `/ui/` serves a few static files (plain ES modules, no build step) and the view library from the
 * installed npm packages (preact, preact/hooks, htm), so nothing comes from a CDN. `/` redirects to it.
 *
 * Every file is read once when the gateway starts and kept in memory (about 60 KB), answered with an ETag; only
 * the names listed here are served, so no request path ever reaches the file system.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const UI_PREFIX = '/ui/';

/** The page's bare imports, resolved by an import map to files of the installed packages. */
const VENDOR: Record<string, string> = {
  preact: 'preact',
  'preact/hooks': 'preact/hooks',
  htm: 'htm',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** The static folder beside this module (running from src/ through tsx), or in the package's src/ (from dist/). */
function staticDir(): string {
  const candidates = [
    new URL('./static/', import.meta.url),
    new URL('../../../../src/gateway/ui/static/', import.meta.url),
  ].map((u) => fileURLToPath(u));
  const found = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (!found) throw new Error(`dashboard files not found in ${candidates.join(' or ')}`);
  return found;
}

function asset(body: Buffer, name: string): Asset {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { body, type: TYPES[extname(name)] ?? 'application/octet-stream', etag };
}

/** The import map goes inline in index.html; the Content-Security-Policy allows exactly that script by its hash. */
function loadAssets(): { files: Map<string, Asset>; csp: string } {
  const dir = staticDir();
  const files = new Map<string, Asset>();
  const imports: Record<string, string> = {};
  for (const [specifier, pkg] of Object.entries(VENDOR)) {
    // The "import" condition: each package's ES module build, which the browser can load as it is.
    const path = fileURLToPath(import.meta.resolve(pkg));
    const name = `vendor/${pkg.replace('/', '-')}.mjs`;
    files.set(name, asset(readFileSync(path), name));
    imports[specifier] = `${UI_PREFIX}${name}`;
  }
  const importMap = JSON.stringify({ imports });
  const scriptHash = createHash('sha256').update(importMap).digest('base64');
  for (const name of readdirSync(dir)) {
    if (!TYPES[extname(name)]) continue;
    let body = readFileSync(join(dir, name));
    if (name === 'index.html')
      body = Buffer.from(
        body.toString('utf8').replace('<!--IMPORTMAP-->', `<script type="importmap">${importMap}</script>`),
      );
    files.set(name, asset(body, name));
  }
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'sha256-${scriptHash}'`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "style-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return { files, csp };
}

/** Registers `/`, `/ui` and `/ui/*`; hidden from the OpenAPI document (they are not API). */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const { files, csp } = loadAssets();
  const hide = { hide: true };

  const send = (request: FastifyRequest, reply: FastifyReply, name: string): FastifyReply => {
    const file = files.get(name);
    if (!file) {
      reply.callNotFound();
      return reply;
    }
    reply.header('etag', file.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    if (name === 'index.html') reply.header('content-security-policy', csp).header('referrer-policy', 'no-referrer');
    if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
    return reply.type(file.type).send(file.body);
  };

  app.get('/', { schema: hide }, async (_request, reply) => reply.redirect(UI_PREFIX));
  app.get('/ui', { schema: hide }, async (_request, reply) => reply.redirect(UI_PREFIX));
  app.get(UI_PREFIX, { schema: hide }, async (request, reply) => send(request, reply, 'index.html'));
  app.get<{ Params: { '*': string } }>(`${UI_PREFIX}*`, { schema: hide }, async (request, reply) =>
    send(request, reply, request.params['*']),
  );
}

/** The dashboard's routes on a bare Fastify instance (inject, no network): what a browser gets, and what it never gets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import { dashboardRoutes } from '../../src/gateway/ui/plugin.ts';

async function app() {
  const fastify = Fastify();
  await fastify.register(dashboardRoutes);
  return fastify;
}

test('/ and /ui redirect to /ui/', async (t) => {
  const fastify = await app();
  t.after(() => fastify.close());
  for (const url of ['/', '/ui']) {
    const res = await fastify.inject({ url });
    assert.equal(res.statusCode, 302, url);
    assert.equal(res.headers.location, '/ui/');
  }
});

test('the page: an import map to the installed packages, allowed by its hash and nothing else inline', async (t) => {
  const fastify = await app();
  t.after(() => fastify.close());
  const res = await fastify.inject({ url: '/ui/' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/html/);
  const map = /<script type="importmap">(.*?)<\/script>/.exec(res.body)?.[1];
  assert.ok(map, 'inline import map');
  const hash = createHash('sha256').update(map).digest('base64');
  const csp = String(res.headers['content-security-policy']);
  assert.ok(csp.includes(`script-src 'self' 'sha256-${hash}'`), csp);
  assert.ok(csp.includes("connect-src 'self'"), csp);
  const imports = (JSON.parse(map) as { imports: Record<string, string> }).imports;
  assert.deepEqual(Object.keys(imports).sort(), ['htm', 'preact', 'preact/hooks']);
  for (const url of [...Object.values(imports), '/ui/app.js', '/ui/feed.js', '/ui/charts.js', '/ui/app.css']) {
    const file = await fastify.inject({ url });
    assert.equal(file.statusCode, 200, url);
    assert.match(String(file.headers['content-type']), /^text\/(javascript|css)/, url);
    assert.ok(file.body.length > 100, url);
  }
});

test('ETag revalidation answers 304; unknown names and paths outside the folder answer 404', async (t) => {
  const fastify = await app();
  t.after(() => fastify.close());
  const first = await fastify.inject({ url: '/ui/app.js' });
  const again = await fastify.inject({ url: '/ui/app.js', headers: { 'if-none-match': String(first.headers.etag) } });
  assert.equal(again.statusCode, 304);
  for (const url of ['/ui/nope.js', '/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/vendor/../../package.json'])
    assert.equal((await fastify.inject({ url })).statusCode, 404, url);
});

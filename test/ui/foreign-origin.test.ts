/**
 * A real headless Chromium on a page of another origin (another port of 127.0.0.1) tries what a malicious web page
 * would: read the registry over WebSocket and SSE, and release the mass-down guard with a cross-site text/plain
 * POST. The gateway refuses all of it; the same calls from the gateway's own origin work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { providerRecord } from '../helpers/provider-record.ts';
import { gatewayApp } from '../helpers/gateway-app.ts';
import { browserMissing, launch } from './browser.ts';

/** Runs in the page: what each attempt got. */
async function attempt(gateway: string): Promise<{ ws: string; sse: string; post: string }> {
  const ws = await new Promise<string>((resolve) => {
    const socket = new WebSocket(`${gateway.replace(/^http/, 'ws')}/v1/watch`);
    socket.onmessage = (m) => resolve(`message ${String(m.data).slice(0, 40)}`);
    socket.onerror = () => resolve('error');
    setTimeout(() => resolve('timeout'), 5000);
  });
  const sse = await fetch(`${gateway}/v1/events`).then(
    async (r) => `status ${r.status}`,
    (e: Error) => `rejected ${e.name}`,
  );
  // A "simple" request: no preflight, so the browser sends it; the page cannot read the answer (opaque).
  const post = await fetch(`${gateway}/v1/admin/release-guard`, {
    method: 'POST',
    mode: 'no-cors',
    headers: { 'content-type': 'text/plain' },
    body: 'release',
  }).then(
    (r) => `sent ${r.type}`,
    (e: Error) => `rejected ${e.name}`,
  );
  return { ws, sse, post };
}

test('a foreign-origin page cannot read /v1/watch or /v1/events nor release the guard', async (t) => {
  const missing = browserMissing();
  if (missing) return t.skip(missing);
  const g = await gatewayApp({
    snapshot: { providers: [providerRecord('secret-1', 'payroll', 1)] },
  });
  t.after(() => g.close());
  const gateway = await g.listen();
  const foreign = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>'),
  );
  foreign.listen(0, '127.0.0.1');
  await once(foreign, 'listening');
  t.after(() => foreign.close());
  const browser = await launch();
  t.after(() => browser.close());
  const { page } = browser;

  await page.goto(`http://127.0.0.1:${(foreign.address() as { port: number }).port}/`);
  const evil = await page.evaluate(attempt, gateway);
  t.diagnostic(`foreign origin: ${JSON.stringify(evil)}`);
  assert.equal(evil.ws, 'error');
  assert.equal(evil.sse, 'rejected TypeError');
  assert.equal(evil.post, 'sent opaque');
  // The gateway refused the POST itself (403, logged as a refusal); it never went on towards the leader.
  assert.equal(
    await g.metrics.get('switchboard_audit_events_total', { action: 'admin.release-guard', result: 'refused' }),
    1,
  );
  assert.equal(
    await g.metrics.get('switchboard_audit_events_total', { action: 'admin.release-guard', result: 'failed' }),
    0,
  );

  // Control: the gateway's own origin (as the dashboard) reads the stream.
  await page.goto(`${gateway}/healthz`);
  const own = await page.evaluate(attempt, gateway);
  t.diagnostic(`same origin: ${JSON.stringify(own)}`);
  assert.match(own.ws, /^message \{"type":"snapshot"/);
  assert.equal(own.sse, 'status 200');
});

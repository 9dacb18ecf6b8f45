/**
 * The dashboard in a real headless Chromium against a real `switchboard start` (leader, worker and gateway as
 * the CLI runs them), a real heartbeating provider process killed with SIGKILL, and a real restart.
 *
 * DASHBOARD_SCREENSHOT=docs/dashboard.png writes the README's screenshot; otherwise it goes to a temp folder.
 * The figures (time to first render, frame times under load) are printed as `dashboard: …` lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as pause } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import {
  AclIndex,
  createLogger,
  hashAclSecret,
  type AclPolicy,
  type AclState,
  type Provider,
} from '../../src/bridge/index.ts';
import { Store } from '../../src/leader/store.ts';
import { freePort, spawnRole, startProviderProcess, type Child } from '../../harness/process.ts';
import { http } from '../../harness/http.ts';
import { tempDir } from '../../harness/tmp.ts';
import { gatewayApp } from '../helpers/gateway-app.ts';
import { providerRecord } from '../helpers/provider-record.ts';
import { browserMissing, launch } from './browser.ts';

/** Providers for the scale check. */
const BIG = Number(process.env.DASHBOARD_PROVIDERS ?? 10_000);
const EVENTS_PER_SECOND = 100;
const LOAD_SECONDS = 3;

async function startSwitchboard(dataDir: string, port: number): Promise<{ child: Child; dashboard: string }> {
  const child = spawnRole('start', [
    '--data-dir',
    dataDir,
    '--bind',
    'tcp://127.0.0.1:*',
    '--http-port',
    String(port),
    '--zmq-pub',
    'tcp://127.0.0.1:*',
    '--zmq-snapshot',
    'tcp://127.0.0.1:*',
  ]);
  // `npm start` prints where the dashboard is; the test opens exactly that URL.
  const m = await child.waitForLine(/^\s+dashboard\s+(http\S+)/, 60_000);
  return { child, dashboard: m[1] };
}

const row = (page: Page, id: string) => page.locator(`[data-testid=providers] [role=row][data-id="${id}"]`);

async function pageRev(page: Page): Promise<number> {
  return Number(await page.locator('[data-testid=rev]').textContent());
}

/**
 * Writes `n` providers (no check, so `up`) into a stopped leader's store, spread over 20 services, as one batch
 * after its last revision: the restarted leader loads them as it loads any store. On this 2-core machine shared
 * with other work, 10,000 REST registrations can take minutes; the store takes a second. The registration path
 * has its own tests; this one is about what the page does with 10,000 rows.
 */
function seedStore(dataDir: string, n: number): void {
  const store = new Store(dataDir, createLogger({ level: 'error' }));
  try {
    const { rev } = store.load();
    const now = Date.now();
    const providers: Provider[] = [];
    const services = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const service = `svc-${String(i % 20).padStart(2, '0')}`;
      const r = rev + 1 + i;
      providers.push({
        id: `bulk-${String(i).padStart(5, '0')}`,
        service,
        host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        port: 8000 + (i % 1000),
        protocol: i % 3 === 0 ? 'http' : 'rpc-server',
        tags: i % 2 ? ['blue'] : ['green', 'canary'],
        meta: { version: `1.${i % 7}.0`, zone: `z${i % 3}` },
        state: 'up',
        stateSince: now,
        registeredAt: now,
        updatedAt: now,
        rev: r,
      });
      services.set(service, r);
    }
    store.commit(rev + n, providers, [], services);
  } finally {
    store.close();
  }
}

const percentile = (sorted: number[], p: number): number => sorted[Math.floor((sorted.length - 1) * p)] ?? NaN;

test('the dashboard, live in a real browser against a real switchboard start', async (t) => {
  const missing = browserMissing();
  if (missing) return t.skip(missing);

  const dir = tempDir();
  const port = await freePort();
  const children: Child[] = [];
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    for (const c of children.reverse()) await c.stop();
    dir.remove();
  });

  let sb = await startSwitchboard(dir.path, port);
  children.push(sb.child);
  const api = `http://127.0.0.1:${port}`;
  assert.equal(sb.dashboard, `${api}/ui/`);
  const { page, errors } = browser;

  await t.test('loads from / with no console error', async () => {
    const res = await page.goto(api + '/');
    assert.equal(res?.url(), sb.dashboard, '/ redirects to the dashboard');
    await page.locator('[data-testid=connection]', { hasText: 'live' }).waitFor({ timeout: 15_000 });
    await page.getByText('No service registered yet.').waitFor();
    assert.deepEqual(errors, []);
  });

  let hb: Child;
  await t.test('a provider registered over REST appears within a second, then comes up by heartbeat', async () => {
    const provider = await startProviderProcess(['billing-1'], { intervalMs: 100 });
    hb = provider.child;
    children.push(hb);
    const res = await http('PUT', `${api}/v1/providers/billing-1`, {
      service: 'billing',
      host: '127.0.0.1',
      port: 9001,
      protocol: 'rpc-server',
      tags: ['blue'],
      meta: { version: '1.4.2' },
      check: { type: 'zmq', endpoint: provider.endpoint, intervalMs: 100, misses: 3 },
    });
    assert.equal(res.status, 201);
    const acked = Date.now();
    await row(page, 'billing-1').waitFor({ timeout: 1000 });
    console.log(`dashboard: registered provider shown ${Date.now() - acked} ms after the REST answer`);
    await page.locator('[role=row][data-id="billing-1"][data-state=up]').waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('[data-testid=service][data-service=billing] [data-count=up]').textContent(), '1');
  });

  await t.test('SIGKILL of its heartbeat process turns the row down, live', async () => {
    const killed = Date.now();
    hb.signal('SIGKILL');
    await page.locator('[role=row][data-id="billing-1"][data-state=down]').waitFor({ timeout: 5000 });
    console.log(`dashboard: row down ${Date.now() - killed} ms after SIGKILL of the heartbeat process`);
    assert.equal(
      await page.locator('[data-testid=service][data-service=billing] [data-count=down]').textContent(),
      '1',
    );
    // The live log has the transition, newest first.
    await page.getByRole('link', { name: 'Events' }).click();
    const first = page.locator('[data-testid=event-log] tbody tr').first();
    assert.match((await first.textContent()) ?? '', /down.*billing.*billing-1/);
    await page.getByRole('link', { name: 'Services' }).click();
  });

  await t.test('actions: maintenance and deregister from the UI show in the REST API', async () => {
    await row(page, 'billing-1').locator('.cell.id').click();
    const detail = page.locator('[data-testid=detail]');
    await detail.getByRole('button', { name: 'Maintenance…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reason').fill('kernel upgrade');
    await dialog.getByRole('button', { name: 'Start maintenance' }).click();
    await dialog.waitFor({ state: 'detached' });
    const p = (await http('GET', `${api}/v1/providers/billing-1`)).body;
    assert.equal(p.state, 'maintenance');
    assert.equal(p.lastCheck?.output, 'kernel upgrade');
    await detail.locator('[data-testid=detail-state]', { hasText: 'maintenance' }).waitFor();

    await http('PUT', `${api}/v1/providers/search-1`, {
      service: 'search',
      host: '10.0.0.7',
      port: 8080,
      protocol: 'http',
    });
    await row(page, 'search-1').locator('.cell.id').click();
    await detail.getByRole('button', { name: 'Deregister…' }).click();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await http('GET', `${api}/v1/providers/search-1`)).status, 200, 'cancel changes nothing');
    await detail.getByRole('button', { name: 'Deregister…' }).click();
    await dialog.getByRole('button', { name: 'Deregister' }).click();
    await row(page, 'search-1').waitFor({ state: 'detached' });
    assert.equal((await http('GET', `${api}/v1/providers/search-1`)).status, 404);
    assert.deepEqual(errors, []);
  });

  await t.test(
    `a restart (with ${BIG} providers more in the store): banner, then resync, no duplicate row`,
    async () => {
      const before = await pageRev(page);
      await sb.child.stop();
      await page.locator('[data-testid=banner-reconnecting]').waitFor({ timeout: 5000 });
      // While it is down, its store grows by BIG providers: the page must take them in with its resync.
      seedStore(dir.path, BIG);
      sb = await startSwitchboard(dir.path, port);
      children.push(sb.child);
      await page.locator('[data-testid=connection]', { hasText: 'live' }).waitFor({ timeout: 20_000 });
      await page.locator('[data-testid=banner-reconnecting]').waitFor({ state: 'detached' });
      assert.ok((await pageRev(page)) >= before);
      // Changes after the restart arrive live, and each provider is one row.
      await http('PUT', `${api}/v1/providers/after-restart`, {
        service: 'billing',
        host: '127.0.0.1',
        port: 9002,
        protocol: 'http',
      });
      await row(page, 'after-restart').waitFor({ timeout: 2000 });
      assert.equal(await row(page, 'billing-1').count(), 1);
      const listed = (await http('GET', `${api}/v1/services`)).body.services.reduce(
        (n: number, s: any) => n + s.providers,
        0,
      );
      assert.equal(listed, BIG + 2);
      await page
        .locator('[data-testid=provider-count]', { hasText: `${listed} of ${listed}` })
        .waitFor({ timeout: 2000 });
      // While the gateway was down the browser itself logs the refused connections; nothing else is allowed.
      const unexpected = errors.filter(
        (e) =>
          !/net::ERR_CONNECTION_(REFUSED|RESET)|net::ERR_EMPTY_RESPONSE|WebSocket connection|status of 503/.test(e),
      );
      assert.deepEqual(unexpected, []);
    },
  );

  await t.test(`${BIG} providers render and the page stays responsive at ${EVENTS_PER_SECOND} events/s`, async () => {
    const total = BIG + 2;

    await page.goto(sb.dashboard);
    // Page-side code is typed loosely: this file is type-checked without the DOM library.
    // As functions, not strings: the page's Content-Security-Policy forbids eval, which string predicates need.
    await page.waitForFunction(
      (n) => (globalThis as any).document.querySelector('[data-testid=provider-count]')?.textContent === `${n} of ${n}`,
      total,
      { polling: 'raf', timeout: 30_000 },
    );
    const firstRender = Number(await page.evaluate('performance.now()'));
    const rendered = await page.locator('[data-testid=providers] [role=row][data-id]').count();
    assert.ok(rendered > 10 && rendered < 100, `virtualised: ${rendered} rows in the DOM for ${total} providers`);

    // Frame times as the page sees them, while the REST API changes providers at a steady rate.
    await page.evaluate(`{
      window.frames_ = [];
      window.longTasks_ = 0;
      new PerformanceObserver((list) => (window.longTasks_ += list.getEntries().length)).observe({ type: 'longtask' });
      let last = performance.now();
      const loop = (now) => {
        window.frames_.push(now - last);
        last = now;
        requestAnimationFrame(loop);
      };
      requestAnimationFrame(loop);
    }`);
    const revBefore = await pageRev(page);
    const writes: Array<Promise<unknown>> = [];
    const t0 = Date.now();
    const count = EVENTS_PER_SECOND * LOAD_SECONDS;
    for (let i = 0; i < count; i++) {
      const due = t0 + (i * 1000) / EVENTS_PER_SECOND;
      if (due > Date.now()) await pause(due - Date.now()); // pacing the load, not waiting for a result
      const id = `bulk-${String((i * 37) % BIG).padStart(5, '0')}`;
      writes.push(http('PUT', `${api}/v1/providers/${id}/maintenance`, { enabled: true, reason: 'load' }));
    }
    await Promise.all(writes);
    await page.waitForFunction(
      (rev) => Number((globalThis as any).document.querySelector('[data-testid=rev]')?.textContent) >= rev,
      revBefore + count,
      { timeout: 15_000 },
    );
    const { frames, longTasks } = await page.evaluate<{ frames: number[]; longTasks: number }>(
      '({ frames: window.frames_.slice(1), longTasks: window.longTasks_ })',
    );
    const sorted = [...frames].sort((a, b) => a - b);
    const stats = { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), max: sorted.at(-1) ?? NaN };
    console.log(
      `dashboard: first render of ${total} providers ${Math.round(firstRender)} ms after navigation; ` +
        `frame time with ${EVENTS_PER_SECOND} events/s for ${LOAD_SECONDS} s (${frames.length} frames): ` +
        `p50 ${stats.p50.toFixed(1)} ms, p95 ${stats.p95.toFixed(1)} ms, max ${stats.max.toFixed(1)} ms, long tasks ${longTasks}`,
    );
    assert.ok(stats.p50 < 50, `median frame ${stats.p50} ms`);
    // Not the max: on a machine whose cores are taken by other work, the browser itself is sometimes not scheduled
    // for a second or two (seen: 2.25 s at load average 25), whatever the page does.
    assert.ok(stats.p95 < 500, `95% of frames under half a second (p95 ${stats.p95} ms)`);

    // The virtual table scrolls to the very end.
    await page.locator('[data-testid=providers]').evaluate((el) => (el.scrollTop = el.scrollHeight));
    const lastId = `bulk-${String(BIG - 1).padStart(5, '0')}`;
    await row(page, lastId).waitFor({ timeout: 2000 });
    // A filter narrows every row at once.
    await page.getByLabel('Filter providers').fill(lastId);
    await page.locator('[data-testid=provider-count]', { hasText: /^1 of / }).waitFor({ timeout: 2000 });
    await page.getByLabel('Filter providers').fill('');
  });

  await t.test('cluster view, screenshot, and phone width', async () => {
    // billing-1 leaves maintenance for what its check last saw: down, its heartbeat process is gone.
    await http('PUT', `${api}/v1/providers/billing-1/maintenance`, { enabled: false });
    await page.goto(sb.dashboard + '#/services/billing');
    await page.locator('[role=row][data-id="billing-1"][data-state=down]').waitFor({ timeout: 5000 });
    await page.locator('[role=row][data-id="after-restart"]').waitFor();
    const shot = process.env.DASHBOARD_SCREENSHOT ?? join(dir.path, 'dashboard.png');
    await page.screenshot({ path: shot });
    console.log(`dashboard: screenshot ${shot}`);

    await page.goto(sb.dashboard + '#/cluster');
    await page.locator('[data-testid=workers] tbody tr').first().waitFor({ timeout: 10_000 });
    await page.locator('[data-testid=gateway]', { hasText: 'in sync' }).waitFor({ timeout: 10_000 });
    await page.locator('[data-testid=guard]', { hasText: 'Not active' }).waitFor();

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(sb.dashboard + '#/services/billing');
    await row(page, 'billing-1').waitFor();
    const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
    assert.ok(overflow <= 0, `no sideways scroll of the page at phone width (${overflow} px too wide)`);
    const unexpected = errors.filter(
      (e) => !/net::ERR_CONNECTION_(REFUSED|RESET)|net::ERR_EMPTY_RESPONSE|WebSocket connection|status of 503/.test(e),
    );
    assert.deepEqual(unexpected, []);
  });
  await t.test(
    'with ACLs on: asks for a token, says why a wrong one is refused, shows what a right one reads, and says when it loses its access',
    async (st) => {
      // A gateway with ACLs on, in this process, whose ACL state the test sets as the leader's replication would
      // (that path has its own tests in test/security/acl.test.ts); the page gets the same browser, a new tab.
      const token = (accessor: string, secret: string, policies: string[]) => ({
        accessor,
        secretHash: hashAclSecret(secret),
        policies,
        createdAt: 0,
      });
      const acl = (version: number, policies: AclPolicy[]): AclState => ({
        version,
        tokens: [token('reader', 'reader-secret', ['billing-read']), token('ops', 'ops-secret', ['all-read'])],
        policies: [...policies, { name: 'all-read', rules: [{ prefix: '', access: 'read' }] }],
      });
      const listeners = new Set<() => void>();
      const source = {
        acl: new AclIndex(acl(1, [{ name: 'billing-read', rules: [{ service: 'billing', access: 'read' }] }])),
        onAcl(listener: () => void) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      };
      const g = await gatewayApp({
        snapshot: { providers: [providerRecord('billing-7', 'billing', 1), providerRecord('orders-7', 'orders', 2)] },
        context: { aclEnabled: true, aclSource: source },
      });
      const page = await browser.context.newPage();
      st.after(async () => {
        await page.close();
        await g.close();
      });
      const gateway = await g.listen();
      const answers = ['mistyped-secret', 'reader-secret'];
      const asked: string[] = [];
      page.on('dialog', (d) => {
        asked.push(d.message());
        const answer = answers.shift();
        void (answer === undefined ? d.dismiss() : d.accept(answer));
      });

      await page.goto(`${gateway}/ui/`);
      await row(page, 'billing-7').waitFor({ timeout: 10_000 });
      await page.locator('[data-testid=connection]', { hasText: 'live' }).waitFor();
      assert.equal(asked.length, 2, asked.join(' | '));
      assert.match(asked[0], /requires an access token/);
      assert.match(asked[1], /refused that token \(SB_UNAUTHENTICATED: the token is not known/);
      assert.equal(await row(page, 'orders-7').count(), 0, 'the reader token does not read orders');

      // Its policy loses billing: the gateway ends the stream (4403) and the page says so instead of retrying.
      source.acl = new AclIndex(acl(2, [{ name: 'billing-read', rules: [] }]));
      for (const listener of listeners) listener();
      const banner = page.locator('[data-testid=banner-token]');
      await banner.waitFor({ timeout: 5000 });
      assert.match((await banner.textContent()) ?? '', /SB_PERMISSION_DENIED: token reader reads no service/);
      await page.locator('[data-testid=connection]', { hasText: 'no access' }).waitFor();

      // Another token from the banner: the page starts again from a snapshot of what that one reads.
      answers.push('ops-secret');
      await banner.getByRole('button', { name: 'Enter a token' }).click();
      await row(page, 'orders-7').waitFor({ timeout: 5000 });
      await row(page, 'billing-7').waitFor();
      await banner.waitFor({ state: 'detached' });
    },
  );
});

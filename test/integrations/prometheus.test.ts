/**
 * A real Prometheus (Debian's 2.x) discovers Switchboard providers through http_sd_configs pointed at a gateway,
 * with no shim: asserted through Prometheus's own /api/v1/targets. Up providers appear with their labels; one
 * that goes down (its TTL lapses) or is deregistered disappears; a new one appears.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { freePort } from '../../harness/process.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';

const PROMETHEUS = '/usr/bin/prometheus';
const hasPrometheus = spawnSync(PROMETHEUS, ['--version']).status === 0;

test('the http_sd answer has the documented shape (in-process)', async (t) => {
  const cluster = await startCluster();
  t.after(() => cluster.close());
  const put = await http('PUT', `${cluster.url}/v1/providers/api-1`, {
    service: 'api',
    host: '::1',
    port: 8080,
    protocol: 'http',
    tags: ['blue', 'canary-2'],
    meta: { version: '1.2', 'build.id': '7' },
  });
  assert.equal(put.status, 201);
  const res = await http('GET', `${cluster.url}/v1/sd/prometheus`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, [
    {
      targets: ['[::1]:8080'],
      labels: {
        __meta_switchboard_service: 'api',
        __meta_switchboard_id: 'api-1',
        __meta_switchboard_state: 'up',
        __meta_switchboard_protocol: 'http',
        __meta_switchboard_host: '::1',
        __meta_switchboard_port: '8080',
        __meta_switchboard_tags: ',blue,canary-2,',
        __meta_switchboard_tag_blue: 'true',
        __meta_switchboard_tag_canary_2: 'true',
        __meta_switchboard_meta_version: '1.2',
        __meta_switchboard_meta_build_id: '7',
      },
    },
  ]);
  assert.deepEqual((await http('GET', `${cluster.url}/v1/sd/prometheus?state=down`)).body, []);
  assert.equal((await http('GET', `${cluster.url}/v1/sd/prometheus?tag=green`)).body.length, 0);
  assert.equal((await http('GET', `${cluster.url}/v1/sd/prometheus?service=api&tag=blue`)).body.length, 1);
  assert.equal((await http('GET', `${cluster.url}/v1/sd/prometheus?state=sideways`)).status, 400);
});

test(
  'a real Prometheus discovers, drops and adds targets through http_sd_configs',
  { skip: !hasPrometheus && 'no /usr/bin/prometheus' },
  async (t) => {
    const cluster = await startCluster();
    const dir = tempDir('switchboard-prom-');
    const port = await freePort();
    writeFileSync(
      join(dir.path, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, scrape_timeout: 500ms }',
        'scrape_configs:',
        '  - job_name: switchboard',
        '    http_sd_configs:',
        `      - url: ${cluster.url}/v1/sd/prometheus`,
        '        refresh_interval: 1s',
        '',
      ].join('\n'),
    );
    const prom = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir.path, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir.path, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    prom.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise((resolve) => prom.once('exit', resolve));
    t.after(async () => {
      prom.kill('SIGTERM');
      const timer = setTimeout(() => prom.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      await cluster.close();
      dir.remove();
    });
    const api = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await http('GET', `${api}/-/ready`)).status === 200, {
      timeoutMs: 30_000,
      what: `prometheus ready (stderr: ${stderr})`,
    });

    /** Prometheus's own view: discovered targets of our job, by our provider id label. */
    const targets = async (): Promise<Map<string, any>> => {
      const res = await http('GET', `${api}/api/v1/targets?state=active`);
      const out = new Map<string, any>();
      for (const tg of res.body.data.activeTargets)
        if (tg.labels.job === 'switchboard') out.set(tg.discoveredLabels.__meta_switchboard_id, tg);
      return out;
    };
    const register = (id: string, extra: object = {}): Promise<unknown> =>
      http('PUT', `${cluster.url}/v1/providers/${id}`, {
        service: 'web',
        host: '127.0.0.1',
        port: 9100 + Number(id.slice(-1)),
        protocol: 'http',
        tags: ['prod'],
        meta: { team: 'payments' },
        ...extra,
      });

    await register('web-1');
    // TTL-checked: pending (not discovered) until its first pass, down (gone) when the passes stop.
    await register('web-2', { check: { type: 'ttl', ttlMs: 1500 } });
    const first = await waitFor(async () => ((await targets()).has('web-1') ? await targets() : undefined), {
      timeoutMs: 20_000,
      what: 'web-1 discovered by prometheus',
    });
    assert.equal(first.has('web-2'), false, 'a pending provider is not a target');
    const web1 = first.get('web-1');
    assert.equal(web1.discoveredLabels.__address__, '127.0.0.1:9101');
    assert.equal(web1.discoveredLabels.__meta_switchboard_service, 'web');
    assert.equal(web1.discoveredLabels.__meta_switchboard_state, 'up');
    assert.equal(web1.discoveredLabels.__meta_switchboard_tag_prod, 'true');
    assert.equal(web1.discoveredLabels.__meta_switchboard_meta_team, 'payments');
    assert.equal(web1.labels.instance, '127.0.0.1:9101');

    // web-2 comes up by TTL passes (sent every 300 ms while it should stay up): it appears.
    let passing = true;
    const passLoop = (async () => {
      while (passing) {
        await http('PUT', `${cluster.url}/v1/providers/web-2/ttl`);
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    await waitFor(async () => (await targets()).has('web-2'), { timeoutMs: 20_000, what: 'web-2 discovered once up' });
    passing = false;
    await passLoop;
    // A new provider appears.
    await register('web-3');
    await waitFor(async () => (await targets()).has('web-3'), { timeoutMs: 20_000, what: 'web-3 discovered' });
    // web-2's passes stop: it goes down and disappears. web-3 is deregistered: it disappears too.
    assert.equal((await http('DELETE', `${cluster.url}/v1/providers/web-3`)).status, 204);
    await waitFor(
      async () => {
        const now = await targets();
        return !now.has('web-2') && !now.has('web-3') && now.has('web-1');
      },
      { timeoutMs: 30_000, what: 'web-2 (down) and web-3 (deregistered) gone, web-1 kept' },
    );
    assert.equal((await http('GET', `${cluster.url}/v1/providers/web-2`)).body.state, 'down');
  },
);

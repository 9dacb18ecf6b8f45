/**
 * Metrics as an operator sees them: the gateway's `/metrics` (its own families and the leader's, renamed) and a
 * worker's registry, each checked whole by Prometheus's own `promtool check metrics`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { HeartbeatPublisher } from '../../src/client/heartbeat.ts';
import { startCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';

const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

/** Runs `promtool check metrics` on `text`; resolves with its exit code and output. */
function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new Error('promtool not found: install Debian `prometheus` (.ci/run does) or set PROMTOOL')
          : err,
      ),
    );
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

/** Every family once, each with HELP and TYPE, and every sample under a declared family. */
function assertWellFormed(text: string): void {
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]);
  const helps = [...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]);
  assert.deepEqual(types, [...new Set(types)], 'no family twice');
  assert.deepEqual(helps, types, 'a HELP before each TYPE');
  const families = new Set(types);
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '';
    const family = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(families.has(family), `sample of an undeclared family: ${line}`);
  }
}

function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return undefined;
}

test('gateway /metrics: histograms, counters, process metrics of gateway and leader, valid for promtool', async (t) => {
  const c = await startCluster({ worker: { zmtpHeartbeatIntervalMs: 100, zmtpHeartbeatTimeoutMs: 300 } });
  t.after(() => c.close());
  const beats = new HeartbeatPublisher({ bind: 'tcp://127.0.0.1:*', intervalMs: 50, ids: ['m-1'] });
  const endpoint = await beats.start();
  t.after(() => beats.close());
  const body = { service: 'billing', host: '127.0.0.1', port: 7001, protocol: 'rpc-server' };
  const put = await http('PUT', `${c.url}/v1/providers/m-1`, {
    ...body,
    check: { type: 'zmq', endpoint, intervalMs: 200 },
  });
  assert.equal(put.status, 201);
  const state = async (): Promise<string> =>
    ((await http('GET', `${c.url}/v1/providers/m-1`)).body as { state: string }).state;
  await waitFor(async () => (await state()) === 'up', { what: 'm-1 up' });
  // The provider's process goes away: its connection drops, the worker decides down at once.
  beats.close();
  await waitFor(async () => (await state()) === 'down', { what: 'm-1 down' });

  const res = await http('GET', `${c.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = res.body as string;
  assertWellFormed(text);

  assert.match(text, /^# TYPE switchboard_http_request_duration_seconds histogram$/m);
  assert.equal(
    sample(
      text,
      'switchboard_http_request_duration_seconds_count{method="PUT",route="/v1/providers/:id",status_code="201"}',
    ),
    1,
    'the registration, under its route pattern',
  );
  assert.ok((sample(text, 'switchboard_propagation_seconds_count') ?? 0) >= 3, 'registered, up, down applied');
  assert.match(text, /^# TYPE switchboard_leader_store_commits_total counter$/m);
  assert.ok((sample(text, 'switchboard_leader_store_commits_total') ?? 0) >= 3);
  assert.equal(
    sample(text, 'switchboard_leader_store_commit_duration_seconds_count'),
    sample(text, 'switchboard_leader_store_commits_total'),
    'one observation per commit',
  );
  assert.match(text, /^switchboard_leader_providers\{state="down"\} 1$/m);
  assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0, "the gateway's process");
  assert.ok((sample(text, 'switchboard_leader_process_resident_memory_bytes') ?? 0) > 0, "the leader's process");
  assert.doesNotMatch(text, /^switchboard_leader_switchboard_/m);

  const check = await promtool(text);
  assert.equal(check.code, 0, `promtool check metrics:\n${check.output}`);

  // The worker has no HTTP endpoint; its registry is what an embedding process exposes.
  const worker = c.workers[0].metrics;
  assert.equal(await worker.get('switchboard_down_detection_seconds', { type: 'zmq', cause: 'disconnect' }), 1);
  const workerText = await worker.render();
  assertWellFormed(workerText);
  assert.match(workerText, /^nodejs_eventloop_lag_seconds /m);
  const workerCheck = await promtool(workerText);
  assert.equal(workerCheck.code, 0, `promtool check metrics (worker):\n${workerCheck.output}`);
});

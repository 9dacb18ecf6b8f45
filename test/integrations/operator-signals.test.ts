/**
 * What an operator sees: a worker or gateway without its leader warns at once and keeps warning until the leader
 * answers; a worker's metrics can be scraped (`--metrics-port`); every role reports its build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, VERSION, warnWhileLeaderUnreachable } from '../../src/bridge/index.ts';
import { startCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { fixedLeaderEndpoints, spawnRole, startLeaderProcess, type Child } from '../../harness/process.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';

test('the unreachable warning repeats while it lasts and stops once the leader is back', async (t) => {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = createLogger({
    level: 'info',
    destination: { write: (s: string) => void lines.push(JSON.parse(s)) },
  });
  let reachable = false;
  const stop = warnWhileLeaderUnreachable({
    reachable: () => reachable,
    log,
    leader: 'tcp://127.0.0.1:1',
    checkMs: 10,
    repeatMs: 100,
    startupGraceMs: 0,
  });
  t.after(stop);
  const warnings = (): number => lines.filter((l) => l.level === 40).length;
  await waitFor(() => warnings() >= 3, { what: 'three warnings, one per repeat period' });
  reachable = true;
  await waitFor(() => lines.some((l) => l.msg === 'leader reachable again'), { what: 'back line' });
  const after = warnings();
  reachable = true;
  await new Promise((r) => setTimeout(r, 250)); // a window for warnings that must not come (checked below)
  assert.equal(warnings(), after);
});

test('worker and gateway processes warn at once without a leader, and say when it is back', async (t) => {
  const dir = tempDir();
  const children: Child[] = [];
  t.after(async () => {
    for (const c of children.reverse()) await c.stop();
    dir.remove();
  });
  const { bind, publish } = await fixedLeaderEndpoints();
  const env = { SWITCHBOARD_LOG_LEVEL: 'info' };
  const worker = spawnRole('worker', ['--leader', bind, '--metrics-port', '0'], env);
  children.push(worker);
  const gateway = spawnRole(
    'gateway',
    ['--leader', bind, '--http-port', '0', '--zmq-pub', 'off', '--zmq-snapshot', 'off'],
    env,
  );
  children.push(gateway);
  const metricsUrl = (await worker.waitForLine(/^switchboard worker metrics: url=(\S+)/, 60_000))[1];
  await gateway.waitForLine(/^switchboard gateway: url=/, 60_000);
  for (const c of [worker, gateway])
    await waitFor(() => /"level":40[^\n]*leader unreachable/.test(c.stderrTail()), {
      timeoutMs: 8000,
      what: 'leader unreachable warning',
    });

  const metrics = await http('GET', metricsUrl);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, new RegExp(`switchboard_build_info\\{[^}]*role="worker"[^}]*\\} 1`));
  assert.match(metrics.body, /switchboard_worker_tasks 0/);

  const leader = await startLeaderProcess(dir.path, bind, publish);
  children.push(leader.child);
  for (const c of [worker, gateway])
    await waitFor(() => c.stderrTail().includes('leader reachable again'), { timeoutMs: 10_000, what: 'back line' });
});

test('every role reports switchboard_build_info', async (t) => {
  const cluster = await startCluster();
  t.after(() => cluster.close());
  const text = (await http('GET', `${cluster.url}/metrics`)).body as string;
  assert.ok(text.includes(`switchboard_build_info{node="${process.version}",role="gateway",version="${VERSION}"} 1`));
  assert.match(await cluster.leader.metrics.render(), /switchboard_build_info\{[^}]*role="leader"[^}]*\} 1/);
  assert.match(await cluster.workers[0].metrics.render(), /switchboard_build_info\{[^}]*role="worker"[^}]*\} 1/);
});

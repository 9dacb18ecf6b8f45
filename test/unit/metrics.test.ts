/** The prom-client registry of a role, and how the gateway merges the leader's exposition into its own. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../src/bridge/index.ts';
import { mergeMetrics } from '../../src/gateway/leader-metrics.ts';

test('each Metrics is its own registry; process metrics appear in each, once', async () => {
  const a = new Metrics();
  const b = new Metrics();
  a.counter('switchboard_things_total', 'Things');
  a.inc('switchboard_things_total');
  const textA = await a.render();
  const textB = await b.render();
  assert.match(textA, /^switchboard_things_total 1$/m);
  assert.doesNotMatch(textB, /switchboard_things_total/);
  for (const text of [textA, textB]) {
    assert.equal(text.match(/^# TYPE process_resident_memory_bytes gauge$/gm)?.length, 1);
    assert.doesNotMatch(text, /^# TYPE \S+_total (gauge|untyped)$/m, 'no gauge named like a counter');
  }
  assert.doesNotMatch(await new Metrics({ process: false }).render(), /process_/);
});

test('counters start at 0, histograms count observations, collected families are read at scrape time', async () => {
  const m = new Metrics({ process: false });
  m.counter('switchboard_drops_total', 'Drops', { socket: 's', reason: 'queue-full' });
  assert.equal(await m.get('switchboard_drops_total', { socket: 's', reason: 'queue-full' }), 0);
  m.inc('switchboard_drops_total', { socket: 's', reason: 'queue-full' }, 2);
  m.inc('switchboard_drops_total', { socket: 's', reason: 'EAGAIN' });
  assert.equal(await m.get('switchboard_drops_total', { socket: 's', reason: 'queue-full' }), 2);
  assert.equal(await m.get('switchboard_drops_total', { socket: 's', reason: 'EAGAIN' }), 1);

  let total = 5;
  m.collectedCounter('switchboard_commits_total', 'Commits', () => total);
  let up = 1;
  m.gauge('switchboard_providers', 'Providers by state', () => [[{ state: 'up' }, up]], ['state']);
  total = 7;
  up = 3;
  assert.equal(await m.get('switchboard_commits_total'), 7);
  assert.equal(await m.get('switchboard_providers', { state: 'up' }), 3);

  m.histogram('switchboard_latency_seconds', 'Latency', ['type']);
  m.observe('switchboard_latency_seconds', { type: 'zmq' }, 0.003);
  m.observe('switchboard_latency_seconds', { type: 'zmq' }, -0.001);
  assert.equal(await m.get('switchboard_latency_seconds', { type: 'zmq' }), 2);
  const text = await m.render();
  assert.match(text, /^# TYPE switchboard_commits_total counter$/m);
  assert.match(text, /^switchboard_latency_seconds_bucket\{le="0\.001",type="zmq"\} 1$/m, 'a negative span is 0');
  assert.match(text, /^switchboard_latency_seconds_bucket\{le="0\.005",type="zmq"\} 2$/m);
  assert.throws(() => m.observe('switchboard_nope_seconds', undefined, 1), /not declared/);
});

test("mergeMetrics: the leader's families renamed under switchboard_leader_, process metrics too, none twice", () => {
  const local = [
    '# HELP switchboard_replica_rev Revision',
    '# TYPE switchboard_replica_rev gauge',
    'switchboard_replica_rev 3',
    '# HELP switchboard_leader_mass_down_held Held (as the gateway last heard)',
    '# TYPE switchboard_leader_mass_down_held gauge',
    'switchboard_leader_mass_down_held 0',
    '# HELP process_resident_memory_bytes Resident memory size in bytes.',
    '# TYPE process_resident_memory_bytes gauge',
    'process_resident_memory_bytes 100',
    '',
  ].join('\n');
  const leader = [
    '# HELP switchboard_store_commit_duration_seconds Commit',
    '# TYPE switchboard_store_commit_duration_seconds histogram',
    'switchboard_store_commit_duration_seconds_bucket{le="0.001"} 1',
    'switchboard_store_commit_duration_seconds_sum 0.0004',
    'switchboard_store_commit_duration_seconds_count 1',
    '',
    '# HELP switchboard_mass_down_held Held',
    '# TYPE switchboard_mass_down_held gauge',
    'switchboard_mass_down_held 6',
    '',
    '# HELP process_resident_memory_bytes Resident memory size in bytes.',
    '# TYPE process_resident_memory_bytes gauge',
    'process_resident_memory_bytes 200',
    '',
  ].join('\n');
  const merged = mergeMetrics(local, leader);
  assert.match(merged, /^switchboard_leader_store_commit_duration_seconds_bucket\{le="0\.001"\} 1$/m);
  assert.match(merged, /^# TYPE switchboard_leader_store_commit_duration_seconds histogram$/m);
  assert.match(merged, /^switchboard_leader_process_resident_memory_bytes 200$/m);
  assert.match(merged, /^process_resident_memory_bytes 100$/m);
  assert.match(merged, /^switchboard_leader_mass_down_held 0$/m, "the gateway's own family wins");
  assert.doesNotMatch(merged, /switchboard_leader_mass_down_held 6/);
  const families = [...merged.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(families, [...new Set(families)]);
  assert.equal(mergeMetrics(local, ''), local);
});

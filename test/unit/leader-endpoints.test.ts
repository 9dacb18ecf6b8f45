/** A list of leader endpoints: parsing the option, and finding the active leader's entry from its pong. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Compile } from 'typebox/compile';
import {
  LeaderEndpointsSchema,
  leaderEndpoints,
  matchLeaderEndpoint,
  MAX_LEADER_ENDPOINTS,
} from '../../src/bridge/index.ts';
import { gatewayConfig } from '../../src/gateway/index.ts';
import { workerConfig } from '../../src/worker/index.ts';

const A = 'tcp://10.0.0.1:7710';
const B = 'tcp://10.0.0.2:7710';
const C = 'tcp://10.0.0.3:7720';

test('one endpoint, a comma-separated list or an array; blanks and repeats dropped, order kept', () => {
  assert.deepEqual(leaderEndpoints(A), [A]);
  assert.deepEqual(leaderEndpoints(`${A},${B}, ${C}`), [A, B, C]);
  assert.deepEqual(leaderEndpoints([C, A, C]), [C, A]);
  assert.throws(() => leaderEndpoints(' , '), /no leader endpoint/);
  const many = Array.from({ length: MAX_LEADER_ENDPOINTS + 1 }, (_, i) => `tcp://127.0.0.1:${7000 + i}`);
  assert.throws(() => leaderEndpoints(many), /more than/);
});

test('the schema takes a string list or an array of endpoints and refuses anything else', () => {
  const check = Compile(LeaderEndpointsSchema);
  for (const ok of [A, `${A},${B}`, [A], [A, B, C], 'ipc:///tmp/leader', 'inproc://x'])
    assert.equal(check.Check(ok), true, JSON.stringify(ok));
  for (const bad of ['', 'http://x:1', `${A},`, `${A} ,${B}`, [], [`${A},${B}`], [42], 7710])
    assert.equal(check.Check(bad), false, JSON.stringify(bad));
});

test('worker and gateway configs accept a leader list (CLI: comma-separated; start(config): an array)', () => {
  assert.deepEqual(workerConfig({ leader: `${A},${B}` }).leader, `${A},${B}`);
  assert.deepEqual(gatewayConfig({ leader: [A, B, C], httpPort: 0 }).leader, [A, B, C]);
  assert.equal(workerConfig({ leader: A }).leader, A, 'one endpoint stays valid');
  assert.throws(() => gatewayConfig({ leader: 'tcp://a:1,nope' }), /leader/);
  assert.throws(() => workerConfig({ leader: [] }), /leader/);
});

test('the active leader: its advertised control endpoint, exactly or by port when it bound a wildcard host', () => {
  assert.equal(matchLeaderEndpoint([A, B, C], B), B);
  assert.equal(matchLeaderEndpoint([A, C], 'tcp://*:7720'), C, 'wildcard host: the only entry on that port');
  assert.equal(matchLeaderEndpoint([A, C], 'tcp://0.0.0.0:7720'), C);
  assert.equal(matchLeaderEndpoint([A, B, C], 'tcp://*:7710'), undefined, 'two entries on port 7710: ambiguous');
  assert.equal(matchLeaderEndpoint([A, B], 'tcp://10.9.9.9:7710'), undefined, 'another host: not ours');
  assert.equal(matchLeaderEndpoint([A, B], undefined), undefined, 'an older leader without `control`');
});

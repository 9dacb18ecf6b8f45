/**
 * Operator commands of the `switchboard` binary (ls, get, register, --version, errors), run as subprocesses against a real gateway: their output
 * (table and --json) and its exit code, as a script would see them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VERSION } from '../../src/bridge/index.ts';
import { startCluster } from '../../harness/cluster.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { tempDir } from '../../harness/tmp.ts';

const sb = (args: string[], env: Record<string, string> = {}): Promise<CliRun> => runCli(args, { env });

test('ls, get, register, deregister, maint, watch: output and exit codes', { timeout: 600_000 }, async (t) => {
  // Twelve CLI processes start at once below: on a loaded machine the in-process leader may answer pings late.
  const cluster = await startCluster({ gateway: { staleAfterMs: 30_000 } });
  const dir = tempDir();
  t.after(async () => {
    await cluster.close();
    dir.remove();
  });
  const gw = ['--gateway', cluster.url];

  // Independent commands run side by side: each is its own process, and this machine is slow to start them.
  // --version on its own and on every command; usage errors exit 2.
  const versions = await Promise.all(
    [['--version'], ['ls', '--version'], ['watch', '--version'], ['gateway', '--version']].map((a) => sb(a)),
  );
  for (const v of versions) assert.deepEqual(v, { code: 0, stdout: `switchboard ${VERSION}\n`, stderr: '' });

  // register from flags (PUT with --id) and from a JSON file (POST, server-chosen id).
  const file = join(dir.path, 'provider.json');
  writeFileSync(file, JSON.stringify({ service: 'billing', host: '10.0.0.22', port: 9002, protocol: 'http' }));
  const [r1, r2] = await Promise.all([
    sb([
      'register',
      ...gw,
      '--id',
      'billing-1',
      '--service',
      'billing',
      '--host',
      '10.0.0.1',
      '--port',
      '9001',
      '--protocol',
      'rpc-server',
      '--tag',
      'blue',
      '--tag',
      'v1',
      '--meta',
      'version=1.4.2',
    ]),
    sb(['register', ...gw, '--file', file, '--json']),
  ]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.match(r1.stdout, /^registered billing-1 \(billing at 10\.0\.0\.1:9001, state up, rev \d+\)\n$/);
  assert.equal(r2.code, 0, r2.stderr);
  const second = JSON.parse(r2.stdout);
  assert.equal(second.service, 'billing');
  assert.equal(second.host, '10.0.0.22');

  const [bad, again, invalid, noPort, services, providers, tagged, fromEnv, got, gotJson, missing, down] =
    await Promise.all([
      sb(['ls', '--bogus', ...gw]),
      // Registering the same again is an update (200), same id.
      sb(['register', ...gw, '--file', file]),
      sb(['register', ...gw, '--service', 'billing', '--host', '10.0.0.1', '--port', '70000']),
      sb(['register', ...gw, '--service', 'billing']),
      sb(['ls', ...gw]),
      sb(['ls', 'billing', ...gw]),
      sb(['ls', 'billing', '--tag', 'blue', '--json', ...gw]),
      // The gateway from the environment, as scripts set it once.
      sb(['ls', '--json'], { SWITCHBOARD_GATEWAY: cluster.url }),
      sb(['get', 'billing-1', ...gw]),
      sb(['get', 'billing-1', '--json', ...gw]),
      sb(['get', 'nope', ...gw]),
      sb(['ls', '--gateway', 'http://127.0.0.1:9', '--timeout', '2000']),
    ]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Unknown option '--bogus'/);
  assert.match(again.stdout, new RegExp(`^updated ${second.id} `), again.stderr);
  // Bad input: the gateway's 400 becomes exit 4 with its message; a missing field is a usage error.
  assert.equal(invalid.code, 4);
  assert.match(invalid.stderr, /400 FST_ERR_VALIDATION body\/port must be <= 65535/);
  assert.equal(noPort.code, 2);

  // ls: services, then providers, aligned; --json.
  assert.equal(services.code, 0);
  assert.equal(services.stdout, 'SERVICE  PROVIDERS  UP\nbilling  2          2\n');
  const lines = providers.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^ID\s+STATE\s+ADDRESS\s+PROTOCOL\s+CHECK\s+TAGS\s+SINCE$/);
  assert.equal(lines.length, 3);
  // Aligned: every row's STATE column starts where the header's does.
  const col = lines[0].indexOf('STATE');
  for (const line of lines.slice(1)) assert.match(line.slice(col), /^up\s/);
  assert.match(providers.stdout, /billing-1\s+up\s+10\.0\.0\.1:9001\s+rpc-server\s+-\s+blue,v1\s+\d+s ago/);
  assert.deepEqual(
    JSON.parse(tagged.stdout).providers.map((p: any) => p.id),
    ['billing-1'],
  );
  assert.equal(JSON.parse(fromEnv.stdout).services[0].name, 'billing');

  // get: fields, --json, and exit 3 for an unknown id.
  assert.equal(got.code, 0);
  assert.match(got.stdout, /^id:\s+billing-1\n/m);
  assert.match(got.stdout, /^meta:\s+version=1\.4\.2$/m);
  assert.equal(JSON.parse(gotJson.stdout).port, 9001);
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /404 SB_PROVIDER_NOT_FOUND/);

  // An unreachable gateway: exit 1, named.
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach the gateway at http:\/\/127\.0\.0\.1:9/);
});

/**
 * `watch`, `maint` and `deregister`, run as subprocesses against a real gateway: their output
 * (table and --json) and its exit code, as a script would see them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { startCluster } from '../../harness/cluster.ts';
import { CLI, nodeArgs, ROOT } from '../../harness/process.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { http } from '../../harness/http.ts';
import { waitFor } from '../../harness/wait.ts';

const sb = (args: string[], env: Record<string, string> = {}): Promise<CliRun> => runCli(args, { env });

test('watch follows maint and deregister live; exit codes of maint and deregister', { timeout: 600_000 }, async (t) => {
  const cluster = await startCluster();
  t.after(() => cluster.close());
  const gw = ['--gateway', cluster.url];
  const put = await http('PUT', `${cluster.url}/v1/providers/billing-1`, {
    service: 'billing',
    host: '10.0.0.1',
    port: 9001,
    protocol: 'rpc-server',
    tags: ['blue'],
  });
  assert.equal(put.status, 201);

  // watch (live): a snapshot table, then one line per change; SIGINT ends it with 0.
  const watch = spawn(process.execPath, [...nodeArgs(CLI), 'watch', 'billing', ...gw], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  let err = '';
  createInterface({ input: watch.stdout }).on('line', (l) => out.push(l));
  watch.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => watch.once('exit', (code) => resolve(code)));
  t.after(() => watch.kill('SIGKILL'));
  await waitFor(() => err.includes('watching billing from rev'), { timeoutMs: 60_000, what: 'watch started' });
  assert.ok(out.some((l) => /^billing-1\s+up\s/.test(l)));

  // maint on/off, seen by the watch.
  const on = await sb(['maint', 'billing-1', 'on', '--reason', 'upgrade', ...gw]);
  assert.equal(on.code, 0, on.stderr);
  assert.equal(on.stdout, 'billing-1: maintenance on (state maintenance)\n');
  await waitFor(
    () => out.some((l) => /\smaintenance\s+billing\s+billing-1\s+10\.0\.0\.1:9001\s+maintenance\s+rev/.test(l)),
    {
      what: 'watch line for maintenance',
    },
  );
  const [off, sideways] = await Promise.all([
    sb(['maint', 'billing-1', 'off', ...gw]),
    sb(['maint', 'billing-1', 'sideways', ...gw]),
  ]);
  assert.equal(off.code, 0);
  assert.equal(sideways.code, 2);

  // deregister: 0, then 3 for the same id again; the watch saw it.
  const dereg = await sb(['deregister', 'billing-1', ...gw]);
  assert.deepEqual([dereg.code, dereg.stdout], [0, 'deregistered billing-1\n']);
  assert.equal((await sb(['deregister', 'billing-1', ...gw])).code, 3);
  await waitFor(() => out.some((l) => /\sderegistered\s+billing\s+billing-1\s/.test(l)), {
    what: 'watch line for deregistration',
  });
  watch.kill('SIGINT');
  assert.equal(await exited, 0);
});

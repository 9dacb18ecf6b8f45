/** The CLI process itself: how it fails at startup and when something inside goes wrong. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { CLI, nodeArgs, loopbackStartArgs, ROOT } from '../../harness/process.ts';
import { tempDir } from '../../harness/tmp.ts';

const REJECT_LATER = fileURLToPath(new URL('../fixtures/reject-later.mjs', import.meta.url));

function run(
  args: string[],
  preload: string[] = [],
  timeoutMs = 20_000,
): Promise<{ code: number | null; signal: string | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...preload.flatMap((p) => ['--import', p]), ...nodeArgs(CLI), ...args], {
      cwd: ROOT,
      env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'silent' },
    });
    let stderr = '';
    let stdout = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`switchboard ${args.join(' ')} still running after ${timeoutMs} ms`));
    }, timeoutMs);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, stdout });
    });
  });
}

test('an invalid --log-level is one line naming the flag, exit 2', async () => {
  const r = await run(['start', '--log-level', 'loud']);
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /--log-level .*got 'loud'/);
});

test('an unhandled rejection is logged and ends the process non-zero instead of limping on', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const r = await run(['start', ...loopbackStartArgs(dir.path)], [REJECT_LATER]);
  assert.equal(r.code, 70, r.stderr.slice(-2000));
  assert.match(r.stderr, /unhandled rejection: Error: nobody handles this/);
});

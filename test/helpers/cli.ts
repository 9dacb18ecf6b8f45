/** The `switchboard` binary run as a script would run it: a subprocess, its output and its exit code. */
import { execFile } from 'node:child_process';
import { CLI, nodeArgs, ROOT } from '../../harness/process.ts';

export interface CliRun {
  /** Exit code (-1 when it was killed at the deadline or by a signal). */
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; preload?: string[]; timeoutMs?: number } = {},
): Promise<CliRun> {
  const preload = (opts.preload ?? []).flatMap((p) => ['--import', p]);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...preload, ...nodeArgs(CLI), ...args],
      {
        cwd: ROOT,
        env: { ...process.env, SWITCHBOARD_GATEWAY: '', SWITCHBOARD_TIMEOUT_MS: '60000', ...opts.env },
        timeout: opts.timeoutMs ?? 240_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Switchboard's own CLI and the fixture processes, run through tsx for tests: spawn, read lines, kill for real. */
import { fileURLToPath } from 'node:url';
import { spawnChild, type Child } from './child.ts';

export { ROOT, type Child } from './child.ts';
export { fixedLeaderEndpoints, freePort } from './ports.ts';
/**
 * The CLI the tests run. scripts/run-tests.mjs builds `dist/` first and names its entry in SWITCHBOARD_TEST_CLI: a
 * process then starts from JavaScript instead of compiling every module through tsx (about a second of CPU each,
 * and the fault tests start hundreds). A test file run on its own without it runs the TypeScript source.
 */
export const CLI = process.env.SWITCHBOARD_TEST_CLI || fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** The `node` arguments that run `script`: TypeScript through tsx, JavaScript as it is. */
export function nodeArgs(script: string): string[] {
  return script.endsWith('.ts') ? ['--import', 'tsx', script] : [script];
}

/** A script as its own process (TypeScript through tsx), logging at TEST_LOG_LEVEL (default warn). */
export function spawnTs(script: string, args: string[], env: Record<string, string> = {}): Child {
  return spawnChild(script.split('/').pop() ?? script, process.execPath, [...nodeArgs(script), ...args], {
    env: { SWITCHBOARD_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn', ...env },
    echoStderr: Boolean(process.env.TEST_SHOW_STDERR),
  });
}

/** `switchboard start` flags for a test: its store in `dataDir`, every port ephemeral on loopback, no native feed. */
export function loopbackStartArgs(dataDir: string): string[] {
  return [
    ...['--data-dir', dataDir, '--bind', 'tcp://127.0.0.1:*', '--publish', 'tcp://127.0.0.1:*'],
    ...['--http-port', '0', '--zmq-pub', 'off', '--zmq-snapshot', 'off'],
  ];
}

/** Starts `switchboard <role> ...` as its own process, exactly as the CLI runs it. */
export function spawnRole(
  role: 'leader' | 'worker' | 'gateway' | 'start',
  args: string[],
  env: Record<string, string> = {},
): Child {
  return spawnTs(CLI, [role, ...args], env);
}

/**
 * A leader process. With a fixed `bind` port, give `publish` too: the default event port (bind port + 1) may be
 * taken by anything else on a busy machine, and a restarted leader must get both ports back.
 */
export async function startLeaderProcess(
  dataDir: string,
  bind = 'tcp://127.0.0.1:*',
  publish?: string,
  extra: string[] = [],
): Promise<{ child: Child; control: string; events: string }> {
  const child = spawnRole('leader', [
    '--data-dir',
    dataDir,
    '--bind',
    bind,
    ...(publish ? ['--publish', publish] : []),
    ...extra,
  ]);
  const m = await child.waitForLine(/^switchboard leader: control=(\S+) events=(\S+)/);
  return { child, control: m[1], events: m[2] };
}

export async function startWorkerProcess(leader: string, extra: string[] = []): Promise<{ child: Child; id: string }> {
  const child = spawnRole('worker', ['--leader', leader, ...extra]);
  const m = await child.waitForLine(/^switchboard worker: id=(\S+)/);
  return { child, id: m[1] };
}

export async function startGatewayProcess(
  leader: string,
  extra: string[] = [],
): Promise<{ child: Child; url: string }> {
  const child = spawnRole('gateway', ['--leader', leader, '--http-port', '0', ...extra]);
  const m = await child.waitForLine(/^switchboard gateway: url=(\S+)/);
  return { child, url: m[1] };
}

export const PROVIDER_FIXTURE = fileURLToPath(new URL('./fixtures/provider.ts', import.meta.url));

/** A heartbeating provider process; `ids` are the provider ids it beats for. */
export async function startProviderProcess(
  ids: string[],
  opts: { bind?: string; intervalMs?: number } = {},
): Promise<{ child: Child; endpoint: string }> {
  const child = spawnTs(PROVIDER_FIXTURE, [
    '--bind',
    opts.bind ?? 'tcp://127.0.0.1:*',
    '--interval',
    String(opts.intervalMs ?? 100),
    ...ids,
  ]);
  const m = await child.waitForLine(/^ENDPOINT (\S+)/);
  return { child, endpoint: m[1] };
}

#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test through tsx. Node 20 does not expand globs itself.
// Usage: node scripts/run-tests.mjs [path-filter ...]  (builds dist/ first; see SWITCHBOARD_TEST_CLI below)
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (entry.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect('test')
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// The processes tests start (leaders, workers, gateways, the CLI) run the built JavaScript: through tsx each one
// compiled every module again, about a second of CPU per process. SWITCHBOARD_TEST_CLI= (empty) keeps the source.
const env = { SWITCHBOARD_LOG_LEVEL: 'warn', ...process.env };
if (env.SWITCHBOARD_TEST_CLI === undefined) {
  const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  if (build.status !== 0) {
    console.error('npm run build failed: the tests run the built CLI (SWITCHBOARD_TEST_CLI= runs the source instead)');
    process.exit(build.status ?? 1);
  }
  env.SWITCHBOARD_TEST_CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// A file whose tests are over ends even if something (a child process a failed test could not stop) would keep
// it alive: Node 20 cancels such a file at the timeout, Node 24 would wait for it forever.
const [major, minor] = process.versions.node.split('.').map(Number);
const forceExit = major > 20 || minor >= 14 ? ['--test-force-exit'] : [];
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=180000', ...forceExit, ...files],
  { stdio: 'inherit', env },
);
process.exit(result.status ?? 1);

/**
 * Packaging as an operator and a library user meet it: the license matches package.json, the npm tarball is
 * small and carries no tests or benchmarks, the client entry loads no server-only dependency, the compose file
 * has the documented roles, the Dockerfile runs node (not npm) as a non-root user, and the systemd unit passes
 * `systemd-analyze verify` where that tool exists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../../harness/process.ts';
import { tempDir } from '../../harness/tmp.ts';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

test('LICENSE is the MIT license package.json names', () => {
  assert.equal(pkg.license, 'MIT');
  assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n/);
});

test('npm pack: small, and no tests, benchmarks or sources of tests', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  const [info] = JSON.parse(out) as Array<{ size: number; files: Array<{ path: string }> }>;
  const paths = info.files.map((f) => f.path);
  assert.deepEqual(
    // The dashboard's static files are served as they are (no build step), so they ship from src/gateway/ui/static.
    paths.filter(
      (p) =>
        (/^(test|bench|scripts|examples|src|harness)\//.test(p) && !p.startsWith('src/gateway/ui/static/')) ||
        p.includes('.test.'),
    ),
    [],
  );
  assert.ok(paths.includes('LICENSE') && paths.includes('package.json'));
  assert.ok(info.size < 1024 * 1024, `tarball is ${info.size} bytes`);
});

/** Imports `entry` in a fresh process and lists the packages it loaded (a resolve hook records every URL). */
function packagesLoadedBy(entry: string, withTsx: boolean): string[] {
  const dir = tempDir();
  try {
    const record = join(dir.path, 'loaded.txt');
    const hooks = join(dir.path, 'hooks.mjs');
    writeFileSync(
      hooks,
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(record)}, r.url + '\\n');
  return r;
}
`,
    );
    const register = join(dir.path, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify('file://' + hooks)});\n`,
    );
    const args = [
      ...(withTsx ? ['--import', 'tsx'] : []),
      '--import',
      register,
      '-e',
      `await import(${JSON.stringify(entry)})`,
    ];
    const r = spawnSync(process.execPath, [...args.slice(0, -2), '--input-type=module', ...args.slice(-2)], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const urls = existsSync(record) ? readFileSync(record, 'utf8').split('\n') : [];
    const packages = new Set<string>();
    for (const u of urls) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
      if (m && m[1] !== 'tsx') packages.add(m[1]);
    }
    return [...packages].sort();
  } finally {
    dir.remove();
  }
}

const SERVER_ONLY = [
  'fastify',
  '@fastify/swagger',
  '@fastify/websocket',
  'better-sqlite3',
  'pino',
  'typebox',
  'dns-packet',
  'ajv',
];

test('the client entry loads no server-only dependency', () => {
  const entries: Array<[string, boolean]> = [[join(ROOT, 'src/client/index.ts'), true]];
  // The built entry too, when a build is there (npm run build).
  if (existsSync(join(ROOT, 'dist/src/client/index.js'))) entries.push([join(ROOT, 'dist/src/client/index.js'), false]);
  for (const [entry, tsx] of entries) {
    const loaded = packagesLoadedBy(entry, tsx);
    assert.ok(loaded.includes('zeromq'), `the probe sees packages (${loaded.join(', ')})`);
    assert.deepEqual(
      loaded.filter((p) => SERVER_ONLY.includes(p)),
      [],
      `${entry} loaded ${loaded.join(', ')}`,
    );
  }
});

test('compose.yaml: a leader, two workers and two gateways on the SQLite store', () => {
  const compose = parse(readFileSync(join(ROOT, 'compose.yaml'), 'utf8'), { merge: true });
  const roles = Object.entries(compose.services as Record<string, { command: string[] }>).map(
    ([name, s]) => [name, s.command[0]] as const,
  );
  assert.deepEqual(roles.map(([, role]) => role).sort(), ['gateway', 'gateway', 'leader', 'worker', 'worker']);
  for (const [name] of roles) assert.equal(compose.services[name].image, 'switchboard:local');
  assert.ok(compose.services.leader.volumes.some((v: string) => v.endsWith(':/var/lib/switchboard')));
});

test('Dockerfile: multi-stage, non-root, node under an init (not npm)', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  assert.ok((text.match(/^FROM /gm) ?? []).length >= 2);
  assert.match(text, /^USER node$/m);
  assert.match(text, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "dist\/src\/cli\/main\.js"\]$/m);
  assert.doesNotMatch(text, /^(?:CMD|ENTRYPOINT).*npm/m);
  const hadolint = spawnSync('hadolint', [join(ROOT, 'Dockerfile')], { encoding: 'utf8' });
  if (hadolint.error === undefined) assert.equal(hadolint.status, 0, hadolint.stdout);
});

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

test('the systemd unit passes systemd-analyze verify', { skip: !hasSystemdAnalyze && 'no systemd-analyze' }, () => {
  const dir = tempDir();
  try {
    copyFileSync(join(ROOT, 'deploy/switchboard@.service'), join(dir.path, 'switchboard@.service'));
    symlinkSync('switchboard@.service', join(dir.path, 'switchboard@gateway.service'));
    const r = spawnSync('systemd-analyze', ['verify', join(dir.path, 'switchboard@gateway.service')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', r.stderr);
  } finally {
    dir.remove();
  }
});

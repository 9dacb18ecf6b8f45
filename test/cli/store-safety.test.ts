/**
 * A leader refuses a store it cannot use, at once and in one line naming the file (and the row): a record that is
 * not a provider, a revision that is not a number, no epoch, an empty file, a file that is not SQLite, a store in
 * use by another leader. Run through the CLI process, as an operator meets them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'libsql';
import { createLogger } from '../../src/bridge/index.ts';
import { start as startGateway } from '../../src/gateway/index.ts';
import { Store, STORE_FILE } from '../../src/leader/store.ts';
import { freePort, startLeaderProcess } from '../../harness/process.ts';
import { http } from '../../harness/http.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';
import { runCli } from '../helpers/cli.ts';
import { providerRecord } from '../helpers/provider-record.ts';

const log = createLogger({ level: 'silent' });
const LEADER = ['--bind', 'tcp://127.0.0.1:*', '--publish', 'tcp://127.0.0.1:*'];

/** A store with providers a and b of billing at revisions 1 and 2, then `damage` applied with plain SQL. */
function damagedStore(dir: string, damage?: string): string {
  const store = new Store(dir, log);
  store.commit(2, [providerRecord('a', 'billing', 1), providerRecord('b', 'billing', 2)], [], [['billing', 2]]);
  store.close();
  const path = join(dir, STORE_FILE);
  if (damage) {
    const db = new Database(path);
    db.exec(damage);
    db.close();
  }
  return path;
}

/** The leader's whole stderr is one line matching `re`, and it exited 1. */
function assertOneLine(r: { code: number; stderr: string }, re: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], re);
}

test('a leader refuses an invalid store in one line naming the file and the row, and writes nothing to it', async (t) => {
  const dirs = Array.from({ length: 6 }, () => tempDir());
  t.after(() => dirs.forEach((d) => d.remove()));
  const esc = (p: string): string => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const cases: Array<{ path: string; re: (path: string) => RegExp }> = [
    {
      path: damagedStore(dirs[0].path, `UPDATE providers SET body = json_remove(body, '$.tags') WHERE id = 'b'`),
      re: (p) => new RegExp(`^switchboard leader: store ${esc(p)}: provider row 'b' is invalid: .*tags`),
    },
    {
      path: damagedStore(dirs[1].path, `UPDATE providers SET body = '{"id":' WHERE id = 'a'`),
      re: (p) => new RegExp(`store ${esc(p)}: provider row 'a' is invalid: its body is not JSON`),
    },
    {
      path: damagedStore(dirs[2].path, `UPDATE meta SET value = 'NaN' WHERE key = 'rev'`),
      re: (p) => new RegExp(`store ${esc(p)}: meta 'rev' is not a revision: 'NaN'`),
    },
    {
      path: damagedStore(dirs[3].path, `DELETE FROM meta WHERE key = 'epoch'`),
      re: (p) => new RegExp(`store ${esc(p)}: has providers but no epoch`),
    },
    {
      path: join(dirs[4].path, STORE_FILE),
      re: (p) => new RegExp(`store ${esc(p)}: the file is empty \\(0 bytes\\)`),
    },
    {
      path: join(dirs[5].path, STORE_FILE),
      re: (p) => new RegExp(`store ${esc(p)}: not a SQLite database`),
    },
  ];
  writeFileSync(cases[4].path, '');
  writeFileSync(cases[5].path, 'these are not the rows you are looking for\n'.repeat(100));
  const runs = await Promise.all(
    dirs.map((d) => runCli(['leader', '--data-dir', d.path, ...LEADER], { timeoutMs: 60_000 })),
  );
  runs.forEach((r, i) => assertOneLine(r, cases[i].re(cases[i].path)));

  // Refused, not repaired: the empty file is still empty and the damaged row still damaged.
  assert.throws(() => new Store(dirs[4].path, log), /the file is empty/);
  assert.throws(() => new Store(dirs[0].path, log), /provider row 'b' is invalid/);
});

test('one leader per store from the moment it opens: a second leader is refused at once, the first keeps working', async (t) => {
  const dir = tempDir();
  damagedStore(dir.path); // an existing store: the first leader opens it without writing anything
  const first = await startLeaderProcess(dir.path);
  t.after(async () => {
    await first.child.stop();
    dir.remove();
  });

  const second = await runCli(['leader', '--data-dir', dir.path, ...LEADER], { timeoutMs: 60_000 });
  assertOneLine(
    second,
    new RegExp(`store ${join(dir.path, STORE_FILE).replace(/[.]/g, '\\.')}: in use by another process`),
  );

  // The first still commits writes.
  const gateway = await startGateway(
    { leader: first.control, leaderEvents: first.events, httpPort: 0, zmqPub: 'off', zmqSnapshot: 'off' },
    { log },
  );
  t.after(() => gateway.close());
  await waitFor(async () => (await http('GET', `${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
  const put = await http('PUT', `${gateway.url}/v1/providers/c`, {
    service: 'billing',
    host: '127.0.0.1',
    port: 9100,
    protocol: 'http',
  });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  assert.equal(put.body.rev, 3);
  await gateway.close();

  // Once the first has stopped cleanly, a new leader starts on the store and has all three.
  assert.equal(await first.child.stop(), 0);
  const third = await startLeaderProcess(dir.path);
  assert.equal(await third.child.stop(), 0);
  const store = new Store(dir.path, log);
  try {
    assert.deepEqual(
      store
        .load()
        .providers.map((p) => p.id)
        .sort(),
      ['a', 'b', 'c'],
    );
  } finally {
    store.close();
  }
});

/** Holds a TCP port on 127.0.0.1 (port 0: any) until `close()`. */
async function holdPort(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, resolve);
  });
  return {
    port: (srv.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

test('startup errors name what is at fault in one line: a port in use (and whether it was derived), an unusable data dir', async (t) => {
  // A bind port p whose derived event port p + 1 is taken.
  let derived: { port: number; close: () => Promise<void> } | undefined;
  let bindPort = 0;
  for (let i = 0; i < 20 && !derived; i++) {
    bindPort = await freePort();
    derived = await holdPort(bindPort + 1).catch(() => undefined);
  }
  assert.ok(derived, 'found a port whose successor was free');
  const held = await holdPort();
  const dirs = [tempDir(), tempDir()];
  const notADir = join(dirs[1].path, 'file');
  writeFileSync(notADir, 'a file where the data dir should be\n');
  t.after(async () => {
    await derived?.close();
    await held.close();
    dirs.forEach((d) => d.remove());
  });
  const opts = { timeoutMs: 60_000 };
  const [derivedRun, bindRun, httpRun, dirRun] = await Promise.all([
    runCli(['leader', '--data-dir', dirs[0].path, '--bind', `tcp://127.0.0.1:${bindPort}`], opts),
    runCli(['leader', '--data-dir', dirs[0].path, '--bind', `tcp://127.0.0.1:${held.port}`], opts),
    runCli(
      [
        'gateway',
        '--leader',
        'tcp://127.0.0.1:1',
        '--http-port',
        String(held.port),
        '--zmq-pub',
        'off',
        '--zmq-snapshot',
        'off',
      ],
      opts,
    ),
    runCli(['leader', '--data-dir', notADir, ...LEADER], opts),
  ]);
  assertOneLine(
    derivedRun,
    new RegExp(
      `cannot bind tcp://127\\.0\\.0\\.1:${bindPort + 1}: address already in use \\(the event port, derived as the --bind port \\+ 1`,
    ),
  );
  assertOneLine(
    bindRun,
    new RegExp(`cannot bind tcp://127\\.0\\.0\\.1:${held.port}: address already in use \\(--bind`),
  );
  assertOneLine(
    httpRun,
    new RegExp(`^switchboard gateway: cannot listen on 127\\.0\\.0\\.1:${held.port}: address already in use`),
  );
  assertOneLine(
    dirRun,
    new RegExp(`store ${notADir.replace(/[.]/g, '\\.')}/switchboard\\.db: cannot create its data directory`),
  );
});

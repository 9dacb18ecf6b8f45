/**
 * Tokens and policies on the internal plane, with a real leader (SQLite store) and real followers over ZeroMQ: the
 * bootstrap token is made once per store and its secret logged once; an `acl.write` is durable across a restart,
 * visible on the writing follower once `refreshAcl` resolves and on another follower within a beacon; the leader's
 * checks (404/409) and the per-token provider quota.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createLogger,
  Follower,
  hashAclSecret,
  LeaderLink,
  Metrics,
  newAclAccessor,
  newAclSecret,
  toFollower,
  type AclIndex,
  type AclOp,
  type ToFollower,
  type Reply,
} from '../../src/bridge/index.ts';
import { start as startLeader, type LeaderHandle } from '../../src/leader/index.ts';
import { BOOTSTRAP_MESSAGE } from '../../src/leader/acl-bootstrap.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';

const quiet = createLogger({ level: 'silent' });

/** A leader on `dir` whose log lines at warn and above are kept in `lines`. */
async function leaderOn(dir: string, lines: string[], extra: { bootstrapTokenFile?: string } = {}) {
  const log = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
  return startLeader(
    { dataDir: dir, bind: 'tcp://127.0.0.1:*', publish: 'tcp://127.0.0.1:*', beaconIntervalMs: 100, ...extra },
    { log },
  );
}

function follower(leader: LeaderHandle, name: string): Follower {
  return new Follower({ leader: leader.control, log: quiet, metrics: new Metrics(), name, pingIntervalMs: 100 });
}

function link(leader: LeaderHandle): LeaderLink<typeof ToFollower> {
  return new LeaderLink({
    endpoints: leader.control,
    validator: toFollower,
    name: 'test',
    log: quiet,
    metrics: new Metrics(),
  });
}

const bootstrapLines = (lines: string[]) =>
  lines
    .map((l) => JSON.parse(l) as { msg: string; accessor?: string; secret?: string })
    .filter((l) => l.msg === BOOTSTRAP_MESSAGE);

function expectNack(reply: Reply, code: string): void {
  assert.equal(reply.type, 'nack', JSON.stringify(reply));
  assert.equal(reply.type === 'nack' && reply.code, code, JSON.stringify(reply));
}

test('the bootstrap token is made once per store and logged once; ACL writes survive a restart and reach every follower', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const lines: string[] = [];
  let leader = await leaderOn(dir.path, lines);
  t.after(() => leader.close());
  const made = bootstrapLines(lines);
  assert.equal(made.length, 1, 'one bootstrap line');
  const { accessor, secret } = made[0];
  assert.ok(accessor && secret && secret.length >= 40);

  const a = follower(leader, 'gw-a');
  const b = follower(leader, 'gw-b');
  const l = link(leader);
  t.after(async () => {
    await l.close();
    await a.close();
    await b.close();
  });
  await waitFor(() => a.aclLoaded && b.aclLoaded, { what: 'both followers fetched the ACL state' });
  const admin = a.acl.resolve(secret);
  assert.equal(admin?.accessor, accessor);
  assert.equal(admin?.admin, true, 'the bootstrap token is admin');
  assert.equal(a.acl.token(accessor)?.secretHash, hashAclSecret(secret), 'only the hash travels');

  // A policy and a token, written through the leader; the writer sees it as soon as its refresh resolves.
  const write = (op: AclOp) => l.request({ type: 'acl.write', op });
  const put = await write({
    op: 'policy.put',
    policy: { name: 'billing-rw', rules: [{ service: 'billing', access: 'write' }] },
  });
  assert.equal(put.type, 'ack', JSON.stringify(put));
  const tokenSecret = newAclSecret();
  const token = {
    accessor: newAclAccessor(),
    secretHash: hashAclSecret(tokenSecret),
    policies: ['billing-rw'],
    maxProviders: 1,
    createdAt: Date.now(),
  };
  const created = await write({ op: 'token.create', token });
  assert.ok(created.type === 'ack' && created.aclVersion === 3, JSON.stringify(created));
  await a.refreshAcl(created.aclVersion);
  assert.equal(a.acl.resolve(tokenSecret)?.allows({ access: 'write', service: 'billing' }), true);
  // The other follower learns it from the beacon sent at once after the commit (or the next periodic one).
  const seen: AclIndex[] = [];
  b.onAcl((acl) => seen.push(acl));
  await waitFor(() => b.acl.token(token.accessor), { timeoutMs: 2000, what: 'the second follower has the token' });

  // The leader's checks.
  expectNack(await write({ op: 'policy.delete', name: 'billing-rw' }), 'SB_ACL_CONFLICT');
  expectNack(await write({ op: 'policy.delete', name: 'global-management' }), 'SB_ACL_CONFLICT');
  expectNack(await write({ op: 'token.delete', accessor }), 'SB_ACL_CONFLICT');
  expectNack(await write({ op: 'token.update', accessor: 'nobody', policies: [] }), 'SB_ACL_NOT_FOUND');
  expectNack(
    await write({
      op: 'token.create',
      token: { ...token, accessor: newAclAccessor(), secretHash: hashAclSecret(newAclSecret()), policies: ['nope'] },
    }),
    'SB_ACL_CONFLICT',
  );

  // Quota: one provider for this token; re-registering the same one never counts twice.
  const input = (port: number) => ({ service: 'billing', host: '127.0.0.1', port, protocol: 'http' });
  const first = await l.request({ type: 'put', id: 'b1', input: input(9001), owner: token.accessor });
  assert.ok(first.type === 'ack' && first.provider?.owner === token.accessor, JSON.stringify(first));
  const again = await l.request({ type: 'put', id: 'b1', input: input(9001), owner: token.accessor });
  assert.ok(again.type === 'ack' && again.status === 200, JSON.stringify(again));
  expectNack(
    await l.request({ type: 'put', id: 'b2', input: input(9002), owner: token.accessor }),
    'SB_QUOTA_EXCEEDED',
  );
  const raised = await write({ op: 'token.update', accessor: token.accessor, maxProviders: 2 });
  assert.equal(raised.type, 'ack');
  const second = await l.request({ type: 'put', id: 'b2', input: input(9002), owner: token.accessor });
  assert.equal(second.type, 'ack', JSON.stringify(second));

  // Restart on the same store: nothing is bootstrapped again, the writes are there, followers fetch them anew.
  await leader.close();
  lines.length = 0;
  leader = await leaderOn(dir.path, lines);
  assert.equal(bootstrapLines(lines).length, 0, 'no second bootstrap, no secret logged again');
  const c = follower(leader, 'gw-c');
  t.after(() => c.close());
  await waitFor(() => c.aclLoaded, { what: 'the new follower fetched the ACL state' });
  assert.equal(c.acl.version, 4);
  assert.equal(c.acl.token(token.accessor)?.maxProviders, 2);
  assert.equal(c.acl.resolve(secret)?.accessor, accessor, 'the bootstrap token still works');
  assert.ok(seen.length >= 1, 'onAcl told the second follower');
});

test('--bootstrap-token-file: its secret makes the bootstrap token (not logged); a short one is refused in one line', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const short = join(dir.path, 'short');
  writeFileSync(short, 'too-short\n');
  await assert.rejects(leaderOn(join(dir.path, 'a'), [], { bootstrapTokenFile: short }), (err: Error) => {
    assert.match(err.message, /^--bootstrap-token-file .*short: the token is 9 characters long; at least 16/);
    return true;
  });
  const file = join(dir.path, 'token');
  const secret = 'an-operator-chosen-secret-0123456789';
  writeFileSync(file, `  ${secret}\n`);
  const lines: string[] = [];
  const leader = await leaderOn(join(dir.path, 'b'), lines, { bootstrapTokenFile: file });
  t.after(() => leader.close());
  assert.ok(!lines.some((l) => l.includes(secret)), 'the secret from the file is never logged');
  const f = follower(leader, 'gw');
  t.after(() => f.close());
  await waitFor(() => f.aclLoaded, { what: 'ACL state fetched' });
  assert.equal(f.acl.resolve(secret)?.admin, true);
});

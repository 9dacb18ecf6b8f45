/**
 * Several `switchboard leader --store etcd://...` processes on one real 3-member etcd, started through the CLI as
 * users start them: only the active one binds its ZeroMQ plane; SIGKILL of the active → a standby binds within
 * seconds and continues the revision; SIGSTOP past the session TTL → the frozen one is fenced, steps down and
 * rejoins as a standby; `/v1/admin/cluster` through a gateway lists the candidates and the active one.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { Dealer } from 'zeromq';
import { pack, unpack } from '../../src/bridge/index.ts';
import { http } from '../../harness/http.ts';
import { freePort, spawnRole, startGatewayProcess, type Child } from '../../harness/process.ts';
import { waitFor } from '../../harness/wait.ts';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { freshPrefix, readStore } from './support.ts';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster();
});
after(() => cluster.close());

interface LeaderProc {
  child: Child;
  control: string;
  events: string;
  metricsUrl: string;
}

/** `n` leader processes sharing one prefix, each on its own fixed ports. */
async function startLeaders(t: TestContext, n: number, prefix: string): Promise<LeaderProc[]> {
  const out: LeaderProc[] = [];
  for (let i = 0; i < n; i++) {
    const control = `tcp://127.0.0.1:${await freePort()}`;
    const events = `tcp://127.0.0.1:${await freePort()}`;
    const child = spawnRole(
      'leader',
      ['--store', cluster.url, '--store-prefix', prefix, '--bind', control, '--publish', events, '--metrics-port', '0'],
      { SWITCHBOARD_LOG_LEVEL: 'info' },
    );
    await child.waitForLine(/^switchboard leader: control=/);
    const [, metricsUrl] = await child.waitForLine(/^switchboard leader metrics: url=(\S+)/);
    out.push({ child, control, events, metricsUrl });
  }
  t.after(() => Promise.all(out.map((l) => l.child.stop(2000))));
  return out;
}

/** One request as a gateway sends it; undefined when nothing answers (no peer completed a handshake) in time. */
async function ask(endpoint: string, body: Record<string, unknown>, timeoutMs = 500): Promise<any> {
  const dealer = new Dealer({
    linger: 0,
    immediate: true,
    sendTimeout: timeoutMs,
    receiveTimeout: timeoutMs,
    maxMessageSize: 64 * 1024 * 1024,
  });
  dealer.connect(endpoint);
  try {
    await dealer.send(pack({ reqId: 1, ...body }));
    const [frame] = await dealer.receive();
    return unpack(frame);
  } catch {
    return undefined;
  } finally {
    dealer.close();
  }
}

async function activeOf(leaders: LeaderProc[]): Promise<LeaderProc[]> {
  const answers = await Promise.all(
    leaders.map((l) => (l.child.alive() ? ask(l.control, { type: 'ping' }) : Promise.resolve(undefined))),
  );
  return leaders.filter((_, i) => answers[i]?.type === 'pong');
}

const put = (endpoint: string, id: string) =>
  ask(
    endpoint,
    {
      type: 'put',
      id,
      input: { service: 'ha', host: '127.0.0.1', port: 1000 + Number(id.replace(/\D/g, '')), protocol: 'http' },
    },
    5000,
  );

function logged(l: LeaderProc, msg: string): boolean {
  return l.child.stderrTail().includes(`"msg":"${msg}"`);
}

test('one active leader binds; SIGKILL of it → a standby binds and continues the revision', async (t) => {
  const prefix = freshPrefix();
  const leaders = await startLeaders(t, 3, prefix);
  const [first] = await waitFor(
    async () => {
      const a = await activeOf(leaders);
      return a.length === 1 ? a : undefined;
    },
    { timeoutMs: 15_000, what: 'exactly one leader answering' },
  );
  const pong = await ask(first.control, { type: 'ping' });
  assert.equal(pong.control, first.control, 'pong names the active control endpoint');
  assert.equal(pong.store?.healthy, true);
  for (const l of leaders.filter((x) => x !== first)) {
    assert.equal(await ask(l.control, { type: 'ping' }), undefined, 'a standby binds nothing');
    assert.ok(logged(l, 'standby'), 'a standby says so');
  }
  assert.ok(logged(first, 'elected'));
  for (const l of leaders) {
    const text = (await http('GET', l.metricsUrl)).body as string;
    const active = l === first ? 1 : 0;
    assert.match(text, new RegExp(`^switchboard_leader_active ${active}$`, 'm'), l.control);
    assert.match(text, new RegExp(`^switchboard_leader_elections_won_total ${active}$`, 'm'));
    if (active) assert.match(text, /^switchboard_leader_term [1-9]\d*$/m);
  }

  let lastRev = 0;
  for (let i = 1; i <= 20; i++) {
    const ack = await put(first.control, `p${i}`);
    assert.equal(ack?.type, 'ack');
    assert.equal(ack.rev, lastRev + 1);
    lastRev = ack.rev;
  }

  const killedAt = Date.now();
  first.child.signal('SIGKILL');
  const rest = leaders.filter((x) => x !== first);
  const [next] = await waitFor(
    async () => {
      const a = await activeOf(rest);
      return a.length === 1 ? a : undefined;
    },
    { timeoutMs: 15_000, what: 'a standby takes over' },
  );
  const boundMs = Date.now() - killedAt;
  const ack = await put(next.control, 'p21');
  const ackMs = Date.now() - killedAt;
  t.diagnostic(
    `SIGKILL of the active leader → standby bound after ${boundMs} ms, first write acknowledged after ${ackMs} ms`,
  );
  assert.ok(boundMs < 8000, `took over in ${boundMs} ms`);
  assert.equal(ack?.type, 'ack');
  assert.equal(ack.rev, lastRev + 1, 'the revision continues without a gap or a repeat');
  const nextPong = await ask(next.control, { type: 'ping' });
  assert.notEqual(nextPong.session, pong.session, 'a new session');
  assert.equal(nextPong.epoch, pong.epoch, 'the same store epoch');
  const stored = await readStore(cluster.url, prefix);
  assert.equal(stored.rev, lastRev + 1);
  assert.equal(stored.providers.length, 21, 'every acknowledged write is in etcd');
  const snapshot = await ask(next.control, { type: 'snapshot' }, 5000);
  assert.equal(snapshot.providers.length, 21, 'the new leader serves every acknowledged write');
});

test('SIGSTOP past the TTL: the frozen leader is fenced, steps down and rejoins as a standby', async (t) => {
  const prefix = freshPrefix();
  const leaders = await startLeaders(t, 2, prefix);
  const [first] = await waitFor(
    async () => {
      const a = await activeOf(leaders);
      return a.length === 1 ? a : undefined;
    },
    { timeoutMs: 15_000, what: 'one leader answering' },
  );
  const other = leaders.find((l) => l !== first)!;
  const ack = await put(first.control, 'p1');
  assert.equal(ack?.type, 'ack');

  first.child.signal('SIGSTOP');
  await waitFor(async () => (await ask(other.control, { type: 'ping' }))?.type === 'pong', {
    timeoutMs: 15_000,
    what: 'the standby takes over from the frozen leader',
  });
  const next = await put(other.control, 'p2');
  assert.equal(next?.rev, ack.rev + 1);
  first.child.signal('SIGCONT');
  await waitFor(() => logged(first, 'stepped down'), { timeoutMs: 10_000, what: 'the woken leader steps down' });
  await waitFor(() => first.child.stderrTail().split('"msg":"stepped down"')[1]?.includes('"msg":"standby"'), {
    what: 'it says it stands by again',
  });
  const metrics = (await http('GET', first.metricsUrl)).body as string;
  assert.match(metrics, /^switchboard_leader_active 0$/m);
  assert.match(metrics, /^switchboard_leader_step_downs_total\{reason="lease_lost"\} 1$/m);
  await waitFor(async () => (await ask(first.control, { type: 'ping' })) === undefined, {
    timeoutMs: 5000,
    what: 'its plane is closed',
  });
  const stored = await readStore(cluster.url, prefix);
  assert.equal(stored.rev, next.rev, 'the frozen leader wrote nothing after waking');
  const after = await put(other.control, 'p3');
  assert.equal(after?.rev, next.rev + 1, 'the active leader was never fenced by the woken one');
  // It stands by again: when the active one goes, it leads.
  other.child.signal('SIGKILL');
  await waitFor(async () => (await ask(first.control, { type: 'ping' }))?.type === 'pong', {
    timeoutMs: 15_000,
    what: 'the rejoined standby leads again',
  });
  const again = await put(first.control, 'p4');
  assert.equal(again?.rev, after.rev + 1);
});

test('/v1/admin/cluster through a gateway: the store, the candidates and the active one', async (t) => {
  const prefix = freshPrefix();
  const leaders = await startLeaders(t, 2, prefix);
  const [active] = await waitFor(
    async () => {
      const a = await activeOf(leaders);
      return a.length === 1 ? a : undefined;
    },
    { timeoutMs: 15_000, what: 'one leader answering' },
  );
  const gw = await startGatewayProcess(active.control, ['--zmq-pub', 'off', '--zmq-snapshot', 'off']);
  t.after(() => gw.child.stop(2000));
  const res = await waitFor(
    async () => {
      const r = await http('GET', `${gw.url}/v1/admin/cluster`);
      return r.status === 200 ? r : undefined;
    },
    { what: 'cluster view' },
  );
  assert.equal(res.body.store.kind, 'etcd');
  assert.ok(res.body.store.path.endsWith(prefix), res.body.store.path);
  assert.equal(res.body.active.endpoint, active.control);
  assert.ok(res.body.active.term > 0);
  assert.deepEqual(
    res.body.candidates.map((c: { endpoint: string; active: boolean }) => [c.endpoint, c.active]),
    [
      [active.control, true],
      [leaders.find((l) => l !== active)!.control, false],
    ],
  );
  assert.equal(res.body.candidates[0].term, res.body.active.term);
});

test('an unreachable etcd: the leader refuses to start with one line naming the store', async () => {
  const url = `etcd://127.0.0.1:${await freePort()}`;
  const bind = `tcp://127.0.0.1:${await freePort()}`;
  const child = spawnRole('leader', ['--store', url, '--bind', bind, '--log-level', 'silent']);
  assert.equal(await child.exited, 1);
  const lines = child.stderrTail().trim().split('\n');
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0], new RegExp(`^switchboard leader: cannot use the etcd store at ${url} `));
});

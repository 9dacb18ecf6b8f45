/**
 * CURVE on the internal plane and the public feed, tried as an attacker would: a process with an unknown key (or
 * none) cannot pose as a worker, a process that binds the leader's port without the leader's key is not trusted,
 * a feed subscriber without a listed key gets nothing, and spreading connections over 127.0.0.x does not get
 * around the feed's per-client cap. In-process roles over real ZeroMQ on loopback; the CLI for keygen only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Dealer, Subscriber } from 'zeromq';
import {
  createLogger,
  generateKeyPair,
  curveClientOptions,
  pack,
  readServerKey,
  writeKeyPair,
  type CurveKeyPair,
  type Metrics,
} from '../../src/bridge/index.ts';
import { start as startGateway } from '../../src/gateway/index.ts';
import { start as startLeader } from '../../src/leader/index.ts';
import { HeartbeatPublisher } from '../../src/client/heartbeat.ts';
import { SwitchboardClient } from '../../src/client/index.ts';
import { startCluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';
import { runKeygen } from '../../src/cli/keygen.ts';

const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Key files in a temp dir: `name.key` (mode 0600) and `name.key.pub`. */
function keys(dir: string, name: string): CurveKeyPair & { file: string; pub: string } {
  const pair = generateKeyPair();
  const file = join(dir, `${name}.key`);
  writeKeyPair(file, pair, name);
  return { ...pair, file, pub: `${file}.pub` };
}

/** The sum of a counter's series whose labels include `labels` (e.g. `socket="leader"`). */
async function counter(metrics: Metrics, name: string, labels: string): Promise<number> {
  return (await metrics.render())
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

test('a worker with an unknown key or none is refused and changes nothing; listed keys work end to end', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const leaderKeys = keys(dir.path, 'leader');
  const workerKeys = keys(dir.path, 'worker');
  const gatewayKeys = keys(dir.path, 'gateway');
  const rogue = generateKeyPair();
  const allow = join(dir.path, 'allow');
  writeFileSync(allow, `# workers and gateways\n${workerKeys.publicKey} worker\n${gatewayKeys.publicKey} gateway\n`);
  const client = (k: { file: string }) => ({ curveSecretKey: k.file, curveServerKey: leaderKeys.pub });
  const c = await startCluster({
    leader: { curveSecretKey: leaderKeys.file, curveAllow: allow },
    worker: client(workerKeys),
    gateway: client(gatewayKeys),
  });
  t.after(() => c.close());

  // Register, check, event: a provider beating over ZeroMQ goes up, then down when its process stops.
  const beats = new HeartbeatPublisher({ bind: 'tcp://127.0.0.1:*', intervalMs: 50, ids: ['pay-1'] });
  const endpoint = await beats.start();
  t.after(() => beats.close());
  const put = await http('PUT', `${c.url}/v1/providers/pay-1`, {
    service: 'pay',
    host: '127.0.0.1',
    port: 9001,
    protocol: 'rpc-server',
    check: { type: 'zmq', endpoint, intervalMs: 200, misses: 3 },
  });
  assert.equal(put.status, 201);
  await waitFor(async () => (await http('GET', `${c.url}/v1/providers/pay-1`)).body.state === 'up', {
    what: 'pay-1 up through the CURVE plane',
  });

  // A rogue worker: it knows the real worker's id and forges a report that pay-1's connection dropped (which would
  // bypass the mass-down guard), once with a key of its own and once with no CURVE at all.
  const workerId = c.workers[0].id;
  const forged = [
    pack({ type: 'worker.hello', workerId, observations: [] }),
    pack({
      type: 'presence',
      workerId,
      full: false,
      observations: [{ id: 'pay-1', alive: false, cause: 'disconnect', at: Date.now() }],
    }),
  ];
  const withKey = new Dealer({ linger: 0, ...curveClientOptions({ ...rogue, serverKey: leaderKeys.publicKey }) });
  const plain = new Dealer({ linger: 0 });
  t.after(() => {
    withKey.close();
    plain.close();
  });
  for (const dealer of [withKey, plain]) {
    dealer.connect(c.leader.control);
    for (const frame of forged) void dealer.send(frame).catch(() => {});
  }
  const refused = (reason: string) =>
    counter(c.leader.metrics, 'switchboard_curve_refused_total', `socket="leader",reason="${reason}"`);
  await waitFor(async () => (await refused('key-not-allowed')) >= 1 && (await refused('no-curve')) >= 1, {
    what: 'both rogue handshakes refused',
  });
  const stillUp = await http('GET', `${c.url}/v1/providers/pay-1`);
  assert.equal(stillUp.body.state, 'up', 'the forged down never reached the leader');
  assert.equal(c.leader.status().workers, 1, 'no worker joined');

  // The operator lists the key and reloads (what SIGHUP does): its next connection is admitted.
  writeFileSync(allow, `${rogue.publicKey} now-listed\n`, { flag: 'a' });
  c.leader.reloadCurveAllow();
  const listed = new Dealer({ linger: 0, ...curveClientOptions({ ...rogue, serverKey: leaderKeys.publicKey }) });
  t.after(() => listed.close());
  let admitted = false;
  void (async () => {
    for await (const e of listed.events) if (e.type === 'handshake') admitted = true;
  })();
  listed.connect(c.leader.control);
  await waitFor(() => admitted, { what: 'a newly listed key admitted after the reload' });

  // The provider really stopping is still seen by the real worker, and its event reaches watchers.
  const since = stillUp.body.rev as number;
  beats.close();
  await waitFor(async () => (await http('GET', `${c.url}/v1/providers/pay-1`)).body.state === 'down', {
    what: 'pay-1 down',
  });
  const events = await http('GET', `${c.url}/v1/services/pay?index=${since}&wait=1s`);
  assert.equal(events.body.providers[0].state, 'down');
});

test('a gateway expecting the leader key ignores a "leader" bound with another key and serves no fake registry', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const real = keys(dir.path, 'leader');
  const fake = keys(dir.path, 'impostor');
  const gatewayKeys = keys(dir.path, 'gateway');
  // The impostor even admits the gateway's key (public keys are public) and holds a registry of its own.
  const impostor = await startLeader(
    {
      dataDir: join(dir.path, 'fake'),
      bind: 'tcp://127.0.0.1:*',
      curveSecretKey: fake.file,
      curveAllowKeys: [gatewayKeys.publicKey],
    },
    { log },
  );
  t.after(() => impostor.close());
  const helper = await startGateway(
    { leader: impostor.control, httpPort: 0, curveSecretKey: gatewayKeys.file, curveServerKey: fake.publicKey },
    { log },
  );
  t.after(() => helper.close());
  await waitFor(async () => (await http('GET', `${helper.url}/readyz`)).status === 200, { what: 'helper ready' });
  const planted = await http('PUT', `${helper.url}/v1/providers/billing-1`, {
    service: 'billing',
    host: '203.0.113.66',
    port: 443,
    protocol: 'http',
  });
  assert.equal(planted.status, 201, 'the impostor serves whoever trusts its key');

  const gateway = await startGateway(
    { leader: impostor.control, httpPort: 0, curveSecretKey: gatewayKeys.file, curveServerKey: real.pub },
    { log },
  );
  t.after(() => gateway.close());
  // Long enough for a dozen reconnects and handshakes (ZeroMQ retries every 100–250 ms).
  const deadline = Date.now() + 1500;
  while (Date.now() < deadline) {
    assert.equal((await http('GET', `${gateway.url}/readyz`)).status, 503, 'never ready');
    const read = await http('GET', `${gateway.url}/v1/services/billing`);
    assert.notEqual(read.body?.providers?.[0]?.host, '203.0.113.66', 'the fake registry is never served');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(gateway.follower.replica.loaded, false);
});

test('feed with CURVE: a SUB without a listed key gets nothing, one with a key gets events', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const feedKeys = keys(dir.path, 'feed');
  const subscriber = keys(dir.path, 'subscriber');
  const c = await startCluster({
    gateway: { feedCurveSecretKey: feedKeys.file, feedCurveAllow: subscriber.pub },
  });
  t.after(() => c.close());
  const pubEndpoint = c.gateway.feed.pub!;
  const keyed = new Subscriber({
    linger: 0,
    receiveTimeout: 5000,
    curveServerKey: feedKeys.publicKey,
    curvePublicKey: subscriber.publicKey,
    curveSecretKey: subscriber.secretKey,
  });
  const stranger = generateKeyPair();
  const unlisted = new Subscriber({
    linger: 0,
    receiveTimeout: 300,
    curveServerKey: feedKeys.publicKey,
    curvePublicKey: stranger.publicKey,
    curveSecretKey: stranger.secretKey,
  });
  const plain = new Subscriber({ linger: 0, receiveTimeout: 300 });
  t.after(() => [keyed, unlisted, plain].forEach((s) => s.close()));
  const handshakes = (s: Subscriber) => {
    let done = false;
    void (async () => {
      for await (const e of s.events) if (e.type === 'handshake') done = true;
    })();
    return () => done;
  };
  const keyedUp = handshakes(keyed);
  for (const s of [keyed, unlisted, plain]) {
    s.subscribe('svc/');
    s.connect(pubEndpoint);
  }
  await waitFor(keyedUp, { what: 'keyed SUB handshake' });
  await waitFor(
    async () => (await counter(c.gateway.metrics, 'switchboard_curve_refused_total', 'socket="feed-pub"')) >= 2,
    { what: 'unlisted and plain SUBs refused' },
  );
  const put = await http('POST', `${c.url}/v1/providers`, {
    service: 'orders',
    host: '10.0.0.1',
    port: 80,
    protocol: 'http',
  });
  assert.equal(put.status, 201);
  const [topic] = await keyed.receive();
  assert.equal(topic.toString(), 'svc/orders/');
  for (const s of [unlisted, plain])
    await assert.rejects(s.receive(), (err: { code?: string }) => err.code === 'EAGAIN', 'nothing for a stranger');

  // The Node client's ZeroMQ watch (SUB + snapshot DEALER) with the subscriber's keys: snapshot, then events.
  const client = new SwitchboardClient({
    gateways: [{ url: c.url, pub: pubEndpoint, snapshot: c.gateway.feed.snapshot! }],
  });
  t.after(() => client.close());
  const watch = client.watch({
    transport: 'zmq',
    feedCurve: { ...subscriber, serverKey: feedKeys.publicKey },
  });
  await watch.ready;
  assert.equal(watch.providers('orders').length, 1, 'the snapshot came over CURVE');
  await http('POST', `${c.url}/v1/providers`, { service: 'orders', host: '10.0.0.2', port: 80, protocol: 'http' });
  await waitFor(() => watch.providers('orders').length === 2, { what: 'event through the CURVE feed' });
});

test('feed per-client cap: several loopback source addresses count as one client', async (t) => {
  const c = await startCluster({ gateway: { maxFeedConnectionsPerClient: 2 } });
  t.after(() => c.close());
  const port = c.gateway.feed.pub!.split(':').pop();
  // One after the other, as a client opening connections over time would (see feed-admission.ts on bursts).
  const subs: Array<{ s: Subscriber; seen: { handshake: boolean; refused: boolean } }> = [];
  t.after(() => subs.forEach(({ s }) => s.close()));
  for (const source of ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4']) {
    const s = new Subscriber({ linger: 0, reconnectInterval: 5000 });
    const seen = { handshake: false, refused: false };
    subs.push({ s, seen });
    void (async () => {
      for await (const e of s.events) {
        if (e.type === 'handshake') seen.handshake = true;
        if (e.type === 'handshake:error:auth') seen.refused = true;
      }
    })();
    s.subscribe('svc/');
    // libzmq's `source;destination` form: connect from this loopback address.
    s.connect(`tcp://${source}:0;127.0.0.1:${port}`);
    await waitFor(() => seen.handshake || seen.refused, { what: `SUB from ${source} answered` });
  }
  assert.equal(subs.filter(({ seen }) => seen.handshake).length, 2, 'two connections admitted');
  assert.equal(subs.filter(({ seen }) => seen.refused).length, 2, 'the others refused');
  assert.ok(
    (await counter(c.gateway.metrics, 'switchboard_feed_refused_total', 'socket="feed-pub",reason="per-client-cap"')) >=
      2,
  );
});

test('keygen writes a 0600 pair and a .pub; a role refuses a key file others may read, naming it', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const out = join(dir.path, 'leader.key');
  let stdout = '';
  let stderr = '';
  const io = { out: (text: string) => (stdout += text), err: (text: string) => (stderr += text) };
  assert.equal(runKeygen(['--out', out], io), 0, stderr);
  assert.match(stdout, /^\S{40}\n$/);
  assert.equal(statSync(out).mode & 0o777, 0o600);
  assert.equal(readServerKey('--curve-server-key', `${out}.pub`), stdout.trim(), 'FILE.pub holds the printed key');
  assert.equal(runKeygen(['--out', out], io), 1, 'an existing key is never overwritten');
  assert.match(stderr, /exists already/);

  chmodSync(out, 0o644);
  await assert.rejects(
    startLeader(
      { dataDir: dir.path, bind: 'tcp://127.0.0.1:*', curveSecretKey: out, curveAllow: `${out}.pub` },
      { log },
    ),
    {
      name: 'StartupError',
      message: `--curve-secret-key ${out} is readable by others (mode 0644); run chmod 600 ${out}`,
    },
  );
  chmodSync(out, 0o600);
  await assert.rejects(
    startLeader({ dataDir: dir.path, bind: 'tcp://127.0.0.1:*', curveSecretKey: out, curveAllow: out }, { log }),
    {
      name: 'StartupError',
      message: `--curve-allow ${out} is a key pair file; give its public key (${out}.pub) instead`,
    },
  );
});

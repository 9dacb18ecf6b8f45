/**
 * The native ZeroMQ feed: a subscriber in another process decodes plain msgpack and its snapshot-then-updates state
 * equals the REST view; the snapshot endpoint answers DEALER and REQ clients and drops garbage; CLI flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Dealer, Request } from 'zeromq';
import { Unpackr } from 'msgpackr';
import { startCluster, type Cluster } from '../../harness/cluster.ts';
import { http } from '../../harness/http.ts';
import { spawnRole, spawnTs, startLeaderProcess, type Child } from '../../harness/process.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';
import { register } from '../../harness/clients.ts';

const SUBSCRIBER = fileURLToPath(new URL('../fixtures/zmq-subscriber.ts', import.meta.url));
const plain = new Unpackr({ useRecords: false, mapsAsObjects: true });

export async function startSubscriber(c: Cluster, service?: string): Promise<Child> {
  const child = spawnTs(SUBSCRIBER, [
    '--pub',
    c.gateway.feed.pub!,
    '--snapshot',
    c.gateway.feed.snapshot!,
    ...(service ? ['--service', service] : []),
  ]);
  await child.waitForLine(/^READY (\d+)/);
  return child;
}

async function dump(child: Child): Promise<any> {
  const before = child.lines.length;
  child.proc.stdin!.write('dump\n');
  await waitFor(() => child.lines.slice(before).some((l) => l.startsWith('STATE ')), { what: 'STATE line' });
  return JSON.parse(
    child.lines
      .slice(before)
      .find((l) => l.startsWith('STATE '))!
      .slice(6),
  );
}

async function restView(url: string, only?: string): Promise<any[]> {
  const names = only ? [only] : (await http('GET', `${url}/v1/services`)).body.services.map((s: any) => s.name);
  const out = [];
  for (const name of names) out.push(...(await http('GET', `${url}/v1/services/${name}`)).body.providers);
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

test('a separate-process SUB rebuilds the registry from snapshot + updates, equal to the REST view', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  await register(c.url, 'b1', 'billing', 9001, { tags: ['blue'] });
  await register(c.url, 'o1', 'orders', 9101);
  const all = await startSubscriber(c);
  const billing = await startSubscriber(c, 'billing');
  t.after(() => all.stop());
  t.after(() => billing.stop());

  await register(c.url, 'b2', 'billing', 9002, { meta: { zone: 'eu' } });
  await register(c.url, 'b1', 'billing', 9001, { tags: ['green'] });
  await http('PUT', `${c.url}/v1/providers/o1/maintenance`, { enabled: true, reason: 'upgrade' });
  await register(c.url, 'o2', 'orders', 9102);
  await http('DELETE', `${c.url}/v1/providers/b2`);
  const last = await register(c.url, 'b3', 'billing', 9003);

  await all.waitForLine(new RegExp(`^EVENT ${last}$`));
  const state = await dump(all);
  assert.equal(state.epoch, c.leader.epoch);
  assert.equal(state.rev, last);
  assert.deepEqual(state.providers, await restView(c.url));
  assert.ok(state.providers.find((p: any) => p.id === 'b1').tags.includes('green'));

  await billing.waitForLine(new RegExp(`^EVENT ${last}$`));
  const bstate = await dump(billing);
  assert.deepEqual(bstate.providers, await restView(c.url, 'billing'));
  assert.ok(
    !billing.lines.some((l) => l.startsWith('RAW ') && Number(l.slice(4)) === last - 2),
    'orders events are not on the billing topic',
  );
  assert.ok(
    !all.lines.some((l) => l.startsWith('RESYNC')) && !billing.lines.some((l) => l.startsWith('RESYNC')),
    'no resync needed',
  );
});

test('snapshot endpoint: DEALER and REQ get plain msgpack; garbage is dropped, counted, and the socket goes on', async (t) => {
  const c = await startCluster({ workers: 0 });
  t.after(() => c.close());
  const rev = await register(c.url, 'b1', 'billing', 9001);
  await register(c.url, 'o1', 'orders', 9101);

  const dealer = new Dealer({ linger: 0, receiveTimeout: 3000 });
  const req = new Request({ linger: 0, receiveTimeout: 3000 });
  t.after(() => dealer.close());
  t.after(() => req.close());
  dealer.connect(c.gateway.feed.snapshot!);
  req.connect(c.gateway.feed.snapshot!);

  const droppedCount = async (): Promise<number> =>
    [
      ...(await c.gateway.metrics.render()).matchAll(
        /^switchboard_frames_dropped_total\{[^}]*socket="gateway-feed-snapshot"[^}]*\} (\d+)$/gm,
      ),
    ].reduce((n, m) => n + Number(m[1]), 0);
  for (const garbage of [
    ['nonsense'],
    ['snapshot', 'Bad Name'],
    ['delete', 'billing'],
    ['snapshot', 'billing', 'extra'],
  ])
    await dealer.send(garbage);
  await waitFor(async () => (await droppedCount()) === 4, { what: 'four dropped requests' });

  await dealer.send(['snapshot', 'billing']);
  const frames = await dealer.receive();
  assert.equal(frames.length, 1);
  const snap = plain.unpack(frames[0]);
  assert.equal(snap.epoch, c.leader.epoch);
  assert.equal(snap.rev, rev + 1);
  assert.deepEqual(
    snap.providers.map((p: any) => p.id),
    ['b1'],
  );
  assert.equal(snap.stale, false);

  await req.send(['snapshot', '']);
  const [body] = await req.receive();
  assert.deepEqual(
    plain
      .unpack(body)
      .providers.map((p: any) => p.id)
      .sort(),
    ['b1', 'o1'],
  );
});

test('CLI: --zmq-pub / SWITCHBOARD_ZMQ_SNAPSHOT choose the endpoints, off switches one off; the url line is unchanged', async (t) => {
  const dir = tempDir();
  const leader = await startLeaderProcess(dir.path);
  const gw = spawnRole(
    'gateway',
    ['--leader', leader.control, '--http-port', '0', '--zmq-pub', 'off', '--history-size', '50'],
    {
      SWITCHBOARD_ZMQ_SNAPSHOT: 'tcp://127.0.0.1:*',
    },
  );
  t.after(async () => {
    await gw.stop();
    await leader.child.stop();
    dir.remove();
  });
  const url = await gw.waitForLine(/^switchboard gateway: url=(\S+)$/);
  const feed = await gw.waitForLine(/^switchboard gateway feed: pub=(\S+) snapshot=(\S+)$/);
  assert.match(url[1], /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(feed[1], 'off');
  assert.match(feed[2], /^tcp:\/\/127\.0\.0\.1:\d+$/);
  const bad = spawnRole('gateway', ['--leader', leader.control, '--http-port', '0', '--zmq-pub', 'nonsense']);
  assert.equal(await bad.exited, 1);
  assert.match(bad.stderrTail(), /zmqPub/);
});

/**
 * The Node client against `npm start` (or several gateways):
 *
 *   npx tsx examples/node_client.ts http://127.0.0.1:7700 [http://127.0.0.1:7800 ...]
 *
 * Announces itself as a `billing` provider (a ZeroMQ heartbeat socket is bound for it), looks the service up, and
 * prints every change it sees; Ctrl-C deregisters and exits. Kill a gateway meanwhile: the watch moves to the next.
 */
import { SwitchboardClient } from '../src/client/index.ts';

const gateways = process.argv.slice(2);
const client = new SwitchboardClient({ gateways: gateways.length ? gateways : ['http://127.0.0.1:7700'] });

const me = await client.announce({
  service: 'billing',
  host: '127.0.0.1',
  port: 9001,
  protocol: 'rpc-server',
  tags: ['example'],
});
console.log(`registered ${me.id}, beating on ${me.heartbeat.endpoint}`);

const watch = client.watch({ services: ['billing'] });
await watch.ready;
console.log(
  'billing up:',
  (await client.lookup('billing')).map((p) => `${p.id} ${p.host}:${p.port}`),
);

process.once('SIGINT', () => {
  void client
    .deregister(me.id)
    .catch(() => {})
    .finally(() => client.close());
});

for await (const update of watch) {
  if (update.type === 'event')
    console.log(
      `rev ${update.event.rev} ${update.event.change} ${update.event.provider.id} → ${update.event.provider.state}`,
    );
  else if (update.type === 'snapshot')
    console.log(`snapshot at rev ${update.rev}: ${update.providers.length} providers`);
  else console.log(`now watching through ${update.gateway}`);
}

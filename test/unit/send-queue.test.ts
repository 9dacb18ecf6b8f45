/** SendQueue against a real ZeroMQ socket: what it holds after draining. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Publisher } from 'zeromq';
import { createLogger, SendQueue } from '../../src/bridge/index.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('a drained SendQueue keeps none of the messages it sent alive', async (t) => {
  const pub = new Publisher({ linger: 0 });
  await pub.bind('tcp://127.0.0.1:*');
  const queue = new SendQueue(pub, { log: createLogger({ level: 'silent' }), limit: 10_000 });
  t.after(() => {
    queue.close();
    pub.close();
  });
  gc();
  const before = process.memoryUsage().arrayBuffers;
  // 1,000 messages of 256 KiB: 250 MiB that must be collectable once sent (a PUB with no subscriber drops them).
  for (let i = 0; i < 1000; i++) queue.push(['topic', Buffer.alloc(256 * 1024, i % 256)]);
  await queue.idle();
  // zeromq.js releases a sent buffer from libzmq's I/O thread asynchronously: give it a few turns.
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 20));
    gc();
  }
  const held = process.memoryUsage().arrayBuffers - before;
  assert.ok(held < 32 * 1024 * 1024, `${(held / 1048576).toFixed(1)} MiB still held after draining`);
});

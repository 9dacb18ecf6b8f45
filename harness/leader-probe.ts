/**
 * A test's own questions to a leader over its control socket, asked as a gateway would (a fresh DEALER per question,
 * with the cluster's CURVE keys when it has them: harness/curve.ts).
 */
import { Dealer, type Socket, type SocketOptions } from 'zeromq';
import { pack, unpack, type Provider } from '../src/bridge/index.ts';

export interface LeaderSnapshot {
  epoch: string;
  rev: number;
  providers: Provider[];
}

/** One request on a fresh DEALER; rejects when nothing answers within `timeoutMs` (a refused handshake included). */
export async function askLeader(
  endpoint: string,
  body: object,
  opts: { timeoutMs: number; socketOptions?: SocketOptions<Socket> },
): Promise<unknown> {
  const dealer = new Dealer({
    linger: 0,
    immediate: true,
    sendTimeout: opts.timeoutMs,
    receiveTimeout: opts.timeoutMs,
    maxMessageSize: -1,
    ...opts.socketOptions,
  });
  dealer.connect(endpoint);
  try {
    await dealer.send(pack(body));
    const [frame] = await dealer.receive();
    return unpack(frame);
  } finally {
    dealer.close();
  }
}

/** The leader's own snapshot, asked over its control socket. */
export async function leaderSnapshot(
  endpoint: string,
  socketOptions: SocketOptions<Socket>,
  timeoutMs = 10_000,
): Promise<LeaderSnapshot> {
  return (await askLeader(endpoint, { type: 'snapshot', reqId: 1 }, { timeoutMs, socketOptions })) as LeaderSnapshot;
}

/** Does a leader answer a ping on this control endpoint within `timeoutMs`? */
export async function pingLeader(
  endpoint: string,
  socketOptions: SocketOptions<Socket>,
  timeoutMs = 300,
): Promise<boolean> {
  try {
    const reply = (await askLeader(endpoint, { type: 'ping', reqId: 1 }, { timeoutMs, socketOptions })) as {
      type?: string;
    };
    return reply.type === 'pong';
  } catch {
    return false;
  }
}

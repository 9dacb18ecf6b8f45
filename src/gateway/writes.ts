/**
 * Writes go to the leader and are answered only once durable. The gateway refuses at once while the leader is
 * unreachable, and after an acknowledgement waits (briefly) for its own replica so the client reads its write.
 */
import { LinkError, type Provider, type Replica, type Reply, type RequestBody } from '../bridge/index.ts';
import type { LeaderChannel } from './leader-channel.ts';
import { errorFromLeader, httpError } from './errors.ts';

export interface Acknowledged {
  status: number;
  rev: number;
  provider?: Provider;
}

export class WriteForwarder {
  readonly #leader: LeaderChannel;
  readonly #replica: Replica;
  readonly #timeoutMs: number;
  readonly #readYourWritesMs: number;

  constructor(leader: LeaderChannel, replica: Replica, opts: { timeoutMs: number; readYourWritesMs: number }) {
    this.#leader = leader;
    this.#replica = replica;
    this.#timeoutMs = opts.timeoutMs;
    this.#readYourWritesMs = opts.readYourWritesMs;
  }

  async write(body: RequestBody): Promise<Acknowledged> {
    const reply = await this.ask(body);
    if (reply.type !== 'ack') throw httpError('SB_LEADER_FAILED', `unexpected reply '${reply.type}' from the leader`);
    if (this.#readYourWritesMs > 0) await this.#replica.waitForRev(reply.rev, this.#readYourWritesMs);
    return reply.provider
      ? { status: reply.status, rev: reply.rev, provider: reply.provider }
      : { status: reply.status, rev: reply.rev };
  }

  /** Any request to the leader; a refusal (`nack`) becomes the matching HTTP error. */
  async ask(body: RequestBody): Promise<Exclude<Reply, { type: 'nack' }>> {
    if (!this.#leader.reachable) throw httpError('SB_LEADER_UNAVAILABLE');
    let reply;
    try {
      reply = await this.#leader.request(body, this.#timeoutMs);
    } catch (err) {
      if (err instanceof LinkError) {
        if (err.code === 'LINK_TIMEOUT') throw httpError('SB_LEADER_TIMEOUT', this.#timeoutMs);
        if (err.code === 'LINK_BUSY') throw httpError('SB_BUSY', err.message);
        if (err.code === 'LINK_LOST')
          throw httpError(
            'SB_LEADER_FAILED',
            'the connection to the leader dropped before it answered; the request may or may not have been applied',
          );
        throw httpError('SB_LEADER_UNAVAILABLE');
      }
      throw err;
    }
    if (reply.type === 'nack') throw errorFromLeader(reply.statusCode, reply.code, reply.message);
    return reply;
  }

  /** A write whose answer is the stored provider (register, update, maintenance). */
  async writeProvider(body: RequestBody): Promise<{ status: 200 | 201; provider: Provider }> {
    const ack = await this.write(body);
    if (!ack.provider) throw httpError('SB_LEADER_FAILED', 'the leader did not return the stored provider');
    return { status: ack.status === 201 ? 201 : 200, provider: ack.provider };
  }
}

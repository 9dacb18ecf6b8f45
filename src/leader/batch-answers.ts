/**
 * The answers to one `batch` frame, sent back together: the writes of a batch normally commit in one group commit
 * and are answered in the same turn, so they leave in one `batch.reply` the moment the last is in. An answer whose
 * siblings take longer (a later commit, a slow request) does not wait for them: what is in goes at the end of the
 * turn it came in.
 */
import { packBatches, type ToFollower } from '../bridge/index.ts';

export type WriteAnswer = Extract<ToFollower, { type: 'ack' | 'nack' }>;

export class BatchAnswers {
  readonly #send: (frame: Buffer) => void;
  #expected: number;
  #answers: WriteAnswer[] = [];
  #flushing: NodeJS.Immediate | undefined;

  /** `send` writes one encoded `batch.reply` frame to the batch's sender; `expected` answers will come. */
  constructor(send: (frame: Buffer) => void, expected: number) {
    this.#send = send;
    this.#expected = expected;
  }

  /** One request's answer. */
  readonly answer = (reply: WriteAnswer): void => {
    this.#answers.push(reply);
    this.#expected--;
    if (this.#expected <= 0) this.#flush();
    else this.#flushing ??= setImmediate(() => this.#flush());
  };

  #flush(): void {
    clearImmediate(this.#flushing);
    this.#flushing = undefined;
    const answers = this.#answers;
    this.#answers = [];
    if (answers.length === 0) return;
    for (const { frame } of packBatches(answers, (replies) => ({ type: 'batch.reply', replies }))) this.#send(frame);
  }
}

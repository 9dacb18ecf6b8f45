/**
 * A check runner watches every task of one check type. The worker routes tasks to runners by `check.type` and
 * forwards their observations to the leader. Runners report transitions only (alive changed), at once.
 */
import type { Observation, Task } from '../bridge/index.ts';

export type ObservationSink = (observation: Observation) => void;

export interface CheckRunner {
  /** Starts watching, or replaces the definition of a task already watched (its presence is kept). */
  add(task: Task): void;
  remove(id: string): void;
  has(id: string): boolean;
  /** Current presence of every task (for hello and the periodic full report). */
  observations(): Observation[];
  close(): Promise<void>;
}

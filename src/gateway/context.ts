import type { Follower, Metrics } from '../bridge/index.ts';
import type { ChangeSignal } from './change-signal.ts';
import type { WriteForwarder } from './writes.ts';

/** What the routes need from the running gateway; tests build it the same way. */
export interface GatewayContext {
  follower: Follower;
  writes: WriteForwarder;
  changes: ChangeSignal;
  metrics: Metrics;
}

export const DEFAULT_WAIT_MS = 60_000;
export const MAX_WAIT_MS = 600_000;

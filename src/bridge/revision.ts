/** Epochs and revisions: how a follower decides whether an incoming change applies to its copy. */
import { randomBytes } from 'node:crypto';

export function newEpoch(): string {
  return randomBytes(8).toString('hex');
}

export type Position = { epoch: string | null; rev: number };

/**
 * - `next`: the change directly after ours; apply it.
 * - `duplicate`: already applied (same epoch, rev at or below ours); ignore it.
 * - `gap`: at least one change is missing; fetch what was missed.
 * - `reset`: another epoch (the store was replaced); throw the copy away and take a snapshot.
 */
export type Ordering = 'next' | 'duplicate' | 'gap' | 'reset';

export function orderEvent(local: Position, incoming: { epoch: string; rev: number }): Ordering {
  if (local.epoch !== incoming.epoch) return 'reset';
  if (incoming.rev <= local.rev) return 'duplicate';
  if (incoming.rev === local.rev + 1) return 'next';
  return 'gap';
}

/**
 * For a leader's position beacon (no payload): behind it means we missed changes; ahead of it means the leader's
 * revision went backwards (its store lost changes), which is handled like a new epoch.
 */
export function orderBeacon(local: Position, beacon: { epoch: string; rev: number }): 'in-sync' | 'behind' | 'reset' {
  if (local.epoch !== beacon.epoch || beacon.rev < local.rev) return 'reset';
  return beacon.rev > local.rev ? 'behind' : 'in-sync';
}

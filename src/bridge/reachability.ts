/**
 * Operators must hear at once when a worker or gateway has lost its leader, and keep hearing it: a warning when
 * contact is lost, the same warning again every `repeatMs` while it lasts, and one info line when it is back.
 * It only watches a probe; the owner (worker, gateway) decides what "reachable" means.
 */
import type { Logger } from './log.ts';

export const DEFAULT_REACHABILITY_CHECK_MS = 500;
export const DEFAULT_UNREACHABLE_REPEAT_MS = 10_000;
/** A role that has never reached its leader gets this long before the first warning (its first ping is in flight). */
export const DEFAULT_UNREACHABLE_STARTUP_GRACE_MS = 2_000;

export interface ReachabilityOptions {
  /** True while the leader answers. */
  reachable: () => boolean;
  log: Logger;
  /** Endpoint named in the log lines. */
  leader: string;
  checkMs?: number;
  repeatMs?: number;
  startupGraceMs?: number;
}

/** Starts watching; the returned function stops it (idempotent). */
export function warnWhileLeaderUnreachable(opts: ReachabilityOptions): () => void {
  const checkMs = opts.checkMs ?? DEFAULT_REACHABILITY_CHECK_MS;
  const repeatMs = opts.repeatMs ?? DEFAULT_UNREACHABLE_REPEAT_MS;
  const startedAt = Date.now();
  const graceUntil = startedAt + (opts.startupGraceMs ?? DEFAULT_UNREACHABLE_STARTUP_GRACE_MS);
  let everReached = false;
  /** When contact was lost (null while reachable), and when we last said so. */
  let lostAt: number | null = null;
  let lastWarned = 0;
  const tick = (): void => {
    const now = Date.now();
    if (opts.reachable()) {
      if (lostAt !== null && lastWarned > 0)
        opts.log.info({ leader: opts.leader, unreachableMs: now - lostAt }, 'leader reachable again');
      everReached = true;
      lostAt = null;
      lastWarned = 0;
      return;
    }
    if (!everReached && now < graceUntil) return;
    lostAt ??= everReached ? now : startedAt;
    if (lastWarned === 0 || now - lastWarned >= repeatMs) {
      lastWarned = now;
      opts.log.warn(
        { leader: opts.leader, unreachableMs: now - lostAt },
        everReached ? 'leader unreachable' : 'leader unreachable: never reached since start',
      );
    }
  };
  const timer = setInterval(tick, checkMs);
  timer.unref();
  return () => clearInterval(timer);
}

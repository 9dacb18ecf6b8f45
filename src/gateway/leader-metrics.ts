/**
 * The gateway's `/metrics` carries the leader's metrics too (the leader speaks only ZeroMQ): asked at scrape time,
 * renamed under `switchboard_leader_` so no family appears twice, skipped when the leader does not answer quickly.
 * The leader's process metrics come along as `switchboard_leader_process_*` and `switchboard_leader_nodejs_*`:
 * the leader often runs in a process of its own, and its memory and event-loop lag matter most.
 */
import type { LeaderChannel } from './leader-channel.ts';

export const LEADER_METRICS_TIMEOUT_MS = 500;
const PREFIX = 'switchboard_';
const LEADER_PREFIX = 'switchboard_leader_';

export async function leaderMetrics(leader: LeaderChannel): Promise<string> {
  if (!leader.reachable) return '';
  try {
    const reply = await leader.request({ type: 'metrics' }, LEADER_METRICS_TIMEOUT_MS);
    return reply.type === 'metrics.reply' ? reply.text : '';
  } catch {
    return '';
  }
}

function leaderName(name: string): string {
  if (name.startsWith(LEADER_PREFIX)) return name;
  return LEADER_PREFIX + (name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name);
}

/** Appends the leader's families, renamed, leaving out any the gateway already has. */
export function mergeMetrics(local: string, leader: string): string {
  if (!leader) return local;
  const present = new Set([...local.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
  const out: string[] = [];
  let keep = false;
  for (const line of leader.split('\n')) {
    if (!line) continue;
    const family = /^# (?:HELP|TYPE) (\S+)/.exec(line)?.[1];
    if (family !== undefined) keep = !present.has(leaderName(family));
    if (!keep) continue;
    out.push(
      line.replace(
        /^(# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)/,
        (_m, head: string | undefined, name: string) => (head ?? '') + leaderName(name),
      ),
    );
  }
  if (!out.length) return local;
  return `${local.endsWith('\n') ? local : `${local}\n`}${out.join('\n')}\n`;
}

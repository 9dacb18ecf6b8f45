/**
 * A list of leader control endpoints (`--leader tcp://h:C1,tcp://h:C2`): only the active leader binds its control
 * endpoint, so workers and gateways connect to all of them and learn from the answering leader's pong which one is
 * active. Pure: parsing, and matching the leader's advertised endpoint against the list.
 */
import { Type } from 'typebox';

/** Most leader candidates a follower connects to (a DEALER per endpoint pipe; 3 to 5 is the usual). */
export const MAX_LEADER_ENDPOINTS = 16;
const ENDPOINT = '(?:tcp|ipc|inproc)://[^\\s,]+';

/**
 * The `leader` option of workers and gateways: one endpoint, several separated by commas, or a list of endpoints.
 */
export const LeaderEndpointsSchema = Type.Union([
  Type.String({ pattern: `^${ENDPOINT}(?:,${ENDPOINT})*$` }),
  Type.Array(Type.String({ pattern: `^${ENDPOINT}$` }), { minItems: 1, maxItems: MAX_LEADER_ENDPOINTS }),
]);
export type LeaderEndpoints = string | readonly string[];

/** The endpoints of a `leader` option, in order, without blanks or repeats. */
export function leaderEndpoints(value: LeaderEndpoints): string[] {
  const parts = (typeof value === 'string' ? value.split(',') : value).map((s) => s.trim()).filter(Boolean);
  const list = [...new Set(parts)];
  if (list.length === 0) throw new Error('no leader endpoint given');
  if (list.length > MAX_LEADER_ENDPOINTS) throw new Error(`more than ${MAX_LEADER_ENDPOINTS} leader endpoints`);
  return list;
}

const TCP = /^tcp:\/\/(.+):(\d+)$/;
const WILDCARD_HOST = new Set(['*', '0.0.0.0', '[::]', '[::0]', '::']);

/**
 * Which listed endpoint is the leader that advertises `control` (its bound control endpoint, from its pong)?
 * An exact match first; then, for a leader bound on a wildcard host, the only listed endpoint with its port.
 * Undefined when the leader is not in the list or the answer is ambiguous.
 */
export function matchLeaderEndpoint(listed: readonly string[], control: string | undefined): string | undefined {
  if (!control) return undefined;
  if (listed.includes(control)) return control;
  const m = TCP.exec(control);
  if (!m || !WILDCARD_HOST.has(m[1])) return undefined;
  const samePort = listed.filter((e) => TCP.exec(e)?.[2] === m[2]);
  return samePort.length === 1 ? samePort[0] : undefined;
}

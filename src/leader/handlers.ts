/**
 * The handler table: one handler per message type the leader's ROUTER accepts, keyed by `type`. The table's type
 * is derived from the `ToLeader` union, so a message type added to bridge/messages.ts does not compile until it
 * has a handler, and each handler receives exactly its own message type. Handlers live with their concern:
 * worker-handlers.ts (hello, pings, presence), gateway-handlers.ts (requests that carry a `reqId`) and
 * acl-handlers.ts (tokens and policies).
 */
import type { Logger, Metrics, Provider, ToFollower, ToLeader } from '../bridge/index.ts';
import type { AclRegistry } from './acl-registry.ts';
import type { Assignment } from './assignment.ts';
import type { ControlSocket } from './control.ts';
import type { PresenceDecider } from './presence-decider.ts';
import type { EventPublisher } from './publisher.ts';
import type { Registry } from './registry.ts';
import type { RegistryStore } from './store-api.ts';

/** The HA part of `cluster.reply`. */
export type ClusterView = Pick<Extract<ToFollower, { type: 'cluster.reply' }>, 'store' | 'active' | 'candidates'>;

export type LeaderMessageType = ToLeader['type'];
/** Message type → its message. */
export type LeaderMessages = { [M in ToLeader as M['type']]: M };

export type Handler<K extends LeaderMessageType> = (routing: Buffer, message: LeaderMessages[K], now: number) => void;
/** A handler for each of `K` (all message types when `K` is not given). */
export type Handlers<K extends LeaderMessageType = LeaderMessageType> = { [T in K]: Handler<T> };

/** What the handlers work with: the leader's parts, wired by leader.ts. */
export interface LeaderParts {
  /** The leader's session id (new on each start): workers and gateways notice a restarted leader by it. */
  readonly session: string;
  readonly registry: Registry;
  /** Tokens and policies as committed. */
  readonly acl: AclRegistry;
  /** The store of this term (ACL changes are committed to it directly; provider changes through the registry). */
  readonly store: RegistryStore;
  readonly control: ControlSocket;
  readonly assignment: Assignment;
  readonly presence: PresenceDecider;
  readonly publisher: EventPublisher;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** The PUB endpoint as bound (told to gateways in `pong`). */
  eventsEndpoint(): string;
  /** The answering leader's own control endpoint (told in `pong`). */
  controlEndpoint(): string;
  /** The store, this leader's term and every candidate in line (for `cluster.reply`). */
  cluster(): Promise<ClusterView>;
  /** After a removal (by a client or the reaper): drop its watch task and everything kept about it. */
  forget(removed: Provider): void;
  /** A beacon now, out of turn: followers learn a new ACL version at once. */
  announceAcl(): void;
  /** The store says this process is no longer its writer: the term steps down. */
  fenced(err: Error): void;
}

export function dispatch(handlers: Handlers, routing: Buffer, message: ToLeader, now: number): void {
  run(handlers, message.type, routing, message, now);
}

// The type and its message travel as one `K`, so the compiler knows the handler fits the message.
function run<K extends LeaderMessageType>(
  handlers: Handlers,
  type: K,
  routing: Buffer,
  message: LeaderMessages[K],
  now: number,
): void {
  const handler: Handler<K> = handlers[type];
  handler(routing, message, now);
}

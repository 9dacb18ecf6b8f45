import type { CheckPolicy, Follower, Metrics } from '../bridge/index.ts';
import type { GatewayAcl } from './acl.ts';
import type { ChangeSignal } from './change-signal.ts';
import type { LeaderChannel } from './leader-channel.ts';
import type { EventHub } from './subscribers.ts';
import type { WriteForwarder } from './writes.ts';

/** What the routes need from the running gateway; tests build it the same way. */
export interface GatewayContext {
  follower: Follower;
  /** Requests to the leader (writes, admin, its metrics) and its mass-down guard. */
  leader: LeaderChannel;
  writes: WriteForwarder;
  changes: ChangeSignal;
  metrics: Metrics;
  /** Push subscribers (WebSocket, SSE) and the history they resume from. */
  hub: EventHub;
  push: PushSettings;
  /** Where checks may point (SSRF rules); registrations that break it answer 400 SB_CHECK_TARGET_REFUSED. */
  checkPolicy: CheckPolicy;
  /** The token check (acl.ts): on or off, and what each request's token may do. */
  acl: GatewayAcl;
  /** Budget of the lookup answer cache in bytes (default `DEFAULT_LOOKUP_CACHE_BYTES`). */
  lookupCacheBytes?: number;
}

/** How the push transports treat each subscriber. */
export interface PushSettings {
  /** SSE comment lines that keep proxies from closing an idle stream. */
  sseHeartbeatMs: number;
  /** WebSocket ping period; a client that has not answered the previous ping by then is dropped. */
  wsPingIntervalMs: number;
  /** Bytes a subscriber may have waiting to be sent before it is dropped as too slow. */
  clientBufferBytes: number;
}

export const DEFAULT_WAIT_MS = 60_000;
export const MAX_WAIT_MS = 600_000;

/**
 * The `zmq` check: each provider's PUB socket publishes `["heartbeat", "<provider id>"]` at least every
 * `intervalMs`. This file is per-provider liveness; the SUB sockets themselves (many endpoints per socket, so ten
 * thousand providers cost a handful of sockets) are heartbeat-sockets.ts.
 *
 * A provider is down when its connection drops (the socket's `disconnect` event: milliseconds after a crash),
 * when ZMTP heartbeats time out (a frozen process), or after `misses` intervals without a beat (a process whose
 * event loop is stuck still answers ZMTP pings). It is up on the first beat; a `connect` alone proves nothing.
 * A provider that was down must beat `successesBeforeUp` times in a row (default 2) before it is up again, so a
 * process that restarts in a loop, or thaws for a moment, does not flap its clients.
 */
import {
  HEARTBEAT_TOPIC,
  type Logger,
  type Metrics,
  type Observation,
  type ObservationCause,
  type Task,
  type ZmqCheck,
} from '../bridge/index.ts';
import { Damper, DEFAULT_ZMQ_SUCCESSES_BEFORE_UP } from './damping.ts';
import { HeartbeatSockets } from './heartbeat-sockets.ts';
import { declareDetection, observeDetection } from './detection.ts';
import type { CheckRunner, ObservationSink } from './runner.ts';

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;
export const DEFAULT_HEARTBEAT_MISSES = 3;
/** Moved to bridge/protocol.ts; re-exported for code that imports it from here. */
export { HEARTBEAT_TOPIC };

export interface ZmqRunnerOptions {
  endpointsPerSocket: number;
  /** ZMTP ping period and timeout on the worker's connections: how fast a frozen peer is found. */
  zmtpHeartbeatIntervalMs: number;
  zmtpHeartbeatTimeoutMs: number;
  log: Logger;
  metrics: Metrics;
}

interface Watch {
  id: string;
  endpoint: string;
  intervalMs: number;
  misses: number;
  startedAt: number;
  lastBeat: number;
  damper: Damper;
  alive: boolean | null;
  at: number;
  cause: ObservationCause;
  /** Why it is down, kept for the periodic full report. */
  output?: string;
}

export class ZmqHeartbeatRunner implements CheckRunner {
  readonly #opts: ZmqRunnerOptions;
  readonly #emit: ObservationSink;
  readonly #watches = new Map<string, Watch>();
  /** Endpoint → the providers watched through it (one PUB socket may beat for several ids). */
  readonly #providersAt = new Map<string, Set<string>>();
  readonly #sockets: HeartbeatSockets;
  /** Endpoints libzmq refused to connect to, with its reason (shown as the providers' check output). */
  readonly #unreachable = new Map<string, string>();
  readonly #log: Logger;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweepEveryMs = 250;
  #closed = false;

  constructor(opts: ZmqRunnerOptions, emit: ObservationSink) {
    this.#opts = opts;
    this.#emit = emit;
    this.#log = opts.log.child({ check: 'zmq' });
    this.#sockets = new HeartbeatSockets({
      endpointsPerSocket: opts.endpointsPerSocket,
      zmtpHeartbeatIntervalMs: opts.zmtpHeartbeatIntervalMs,
      zmtpHeartbeatTimeoutMs: opts.zmtpHeartbeatTimeoutMs,
      log: this.#log,
      metrics: opts.metrics,
      endpointOf: (id) => this.#watches.get(id)?.endpoint,
      onBeat: (id) => this.#onBeat(id),
      onDisconnect: (endpoint) => this.#onDisconnect(endpoint),
    });
    declareDetection(opts.metrics);
  }

  has(id: string): boolean {
    return this.#watches.has(id);
  }

  add(task: Task): void {
    const check = task.check as ZmqCheck;
    const intervalMs = check.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const misses = check.misses ?? DEFAULT_HEARTBEAT_MISSES;
    const successesBeforeUp = check.successesBeforeUp ?? DEFAULT_ZMQ_SUCCESSES_BEFORE_UP;
    const existing = this.#watches.get(task.id);
    if (existing && existing.endpoint === check.endpoint) {
      existing.intervalMs = intervalMs;
      existing.misses = misses;
      existing.damper.successesBeforeUp = successesBeforeUp;
      this.#tuneSweep(intervalMs);
      return;
    }
    if (existing) this.remove(task.id);
    const now = Date.now();
    this.#watches.set(task.id, {
      id: task.id,
      endpoint: check.endpoint,
      intervalMs,
      misses,
      startedAt: now,
      lastBeat: 0,
      // `misses` is the way down, so one failure (a miss or a disconnect) is enough there.
      damper: new Damper(1, successesBeforeUp),
      alive: null,
      at: now,
      cause: 'assigned',
    });
    this.#attach(task.id, check.endpoint);
    this.#tuneSweep(intervalMs);
  }

  remove(id: string): void {
    const watch = this.#watches.get(id);
    if (!watch) return;
    this.#watches.delete(id);
    const providers = this.#providersAt.get(watch.endpoint);
    if (!providers) return;
    providers.delete(id);
    if (providers.size === 0) {
      this.#providersAt.delete(watch.endpoint);
      this.#unreachable.delete(watch.endpoint);
      this.#sockets.disconnect(watch.endpoint);
    }
  }

  observations(): Observation[] {
    const list: Observation[] = [];
    for (const w of this.#watches.values()) {
      // The failure text travels with every report, so whichever one the leader acts on says why.
      list.push({
        id: w.id,
        alive: w.alive,
        cause: w.cause,
        at: w.at,
        ...(w.alive === false && w.output ? { output: w.output } : {}),
      });
    }
    return list;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    await this.#sockets.close();
  }

  #attach(id: string, address: string): void {
    let providers = this.#providersAt.get(address);
    if (!providers) {
      providers = new Set();
      this.#providersAt.set(address, providers);
      try {
        this.#sockets.connect(address);
      } catch (err) {
        this.#log.warn({ err, endpoint: address }, 'cannot connect to heartbeat endpoint');
        this.#unreachable.set(address, `cannot connect: ${(err as Error).message}`);
      }
    }
    providers.add(id);
    const reason = this.#unreachable.get(address);
    if (reason !== undefined) {
      // A malformed or unresolvable endpoint: the provider can never be seen alive; say so.
      const watch = this.#watches.get(id)!;
      watch.damper.down();
      this.#transition(watch, false, 'unreachable', 0, reason);
    }
  }

  #onBeat(id: string): void {
    const watch = this.#watches.get(id);
    if (!watch) return; // another provider on a shared PUB socket, or not ours
    watch.lastBeat = Date.now();
    if (watch.damper.record(true)) this.#transition(watch, true, 'beat');
  }

  #onDisconnect(address: string): void {
    const providers = this.#providersAt.get(address);
    if (!providers) return;
    const now = Date.now();
    for (const id of providers) {
      const watch = this.#watches.get(id);
      if (!watch) continue;
      // libzmq says `disconnect` both when the peer closed (a dead process: beats were flowing until now) and when
      // our ZMTP heartbeat timed out (silence at least that long: a frozen process or a network cut). Only the
      // first is the provider's own connection closing; the second is `unresponsive`, which the leader's
      // mass-down guard may hold.
      const silentMs = now - Math.max(watch.lastBeat, watch.startedAt);
      const cause: ObservationCause = silentMs >= this.#opts.zmtpHeartbeatTimeoutMs ? 'unresponsive' : 'disconnect';
      // The fast path: a dropped connection is down at once, whatever the damping says.
      if (watch.damper.down()) this.#transition(watch, false, cause, silentMs);
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const watch of this.#watches.values()) {
      const since = Math.max(watch.lastBeat, watch.startedAt);
      if (watch.alive === false) {
        // Beats of a recovering provider count only while they keep coming (a gap of two intervals breaks them).
        if (now - since > watch.intervalMs * 2) watch.damper.breakStreak();
        continue;
      }
      if (now - since > watch.intervalMs * watch.misses && watch.damper.down())
        this.#transition(watch, false, 'missed');
    }
  }

  /** Sweeps often enough to catch a miss within a quarter interval of the shortest interval watched. */
  #tuneSweep(intervalMs: number): void {
    const wanted = Math.min(250, Math.max(10, Math.floor(intervalMs / 4)));
    if (this.#sweepTimer && wanted >= this.#sweepEveryMs) return;
    this.#sweepEveryMs = wanted;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = setInterval(() => this.#sweep(), wanted);
  }

  #transition(watch: Watch, alive: boolean, cause: ObservationCause, silentMs = 0, output?: string): void {
    watch.alive = alive;
    watch.at = Date.now();
    watch.cause = cause;
    if (alive) delete watch.output;
    else {
      watch.output = output ?? describe(cause, watch, silentMs);
      observeDetection(this.#opts.metrics, 'zmq', cause, watch.lastBeat, watch.at);
    }
    this.#emit({ id: watch.id, alive, cause, at: watch.at, ...(watch.output ? { output: watch.output } : {}) });
  }
}

function describe(cause: ObservationCause, watch: Watch, silentMs: number): string {
  if (cause === 'disconnect') return `connection to ${watch.endpoint} dropped`;
  if (cause === 'unresponsive')
    return `no traffic from ${watch.endpoint} for ${silentMs} ms (ZMTP heartbeat timeout): frozen process or network cut`;
  if (cause === 'missed') return `no heartbeat on ${watch.endpoint} for ${watch.intervalMs * watch.misses} ms`;
  return cause;
}

/**
 * The worker's half of the SSRF rules (bridge/check-policy.ts): the gateway refused bad targets at
 * registration, and the worker checks again right before it sends, on the addresses a name resolves to now (a
 * name may point at 169.254.169.254, or be re-pointed after registration). It also caps check requests per
 * target host, so many registrations aimed at one victim cannot make the worker flood it.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import {
  checkTargets,
  describeRefusal,
  type CheckPolicy,
  type CheckTarget,
  type Logger,
  type Metrics,
  type Observation,
  type Task,
} from '../bridge/index.ts';
import type { CheckRunner, ObservationSink } from './runner.ts';

/** Hosts tracked at once by the per-host cap; idle ones are forgotten first. */
const MAX_TRACKED_HOSTS = 100_000;

/** Why `target` may not be reached now (resolving a name), or null. */
export async function vetTarget(policy: CheckPolicy, target: CheckTarget): Promise<string | null> {
  const refused = policy.refuseTargets([target]);
  if (refused) return describeRefusal({ target: refused.target, reason: refused.reason });
  if (target.scheme !== undefined && target.scheme !== 'tcp') return null;
  const host = target.host.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) return null;
  let addresses: LookupAddress[];
  try {
    addresses = await new Promise((resolve, reject) =>
      dnsLookup(host, { all: true }, (err, list) => (err ? reject(err) : resolve(list))),
    );
  } catch {
    return null; // unresolvable: the probe itself fails and says so
  }
  for (const a of addresses) {
    const why = policy.refusal(a.address, target.port);
    if (why)
      return `${target.host} resolves to ${a.address}, ${why}; checks may not reach it (an operator can allow a range with --check-allow-cidr)`;
  }
  return null;
}

/**
 * A `lookup` for net.connect that refuses addresses the policy refuses: the check connects to exactly the address
 * that was vetted (no window between the check and the connect).
 */
export function guardedLookup(policy: CheckPolicy, port: number): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, list) => {
      if (err) return callback(err, '', 0);
      const addresses = list;
      for (const a of addresses) {
        const why = policy.refusal(a.address, port);
        if (why) {
          const refused = Object.assign(new Error(`${hostname} resolves to ${a.address}, ${why}`), {
            code: 'EREFUSEDTARGET',
          });
          return callback(refused, '', 0);
        }
      }
      if ((options as { all?: boolean }).all)
        return (callback as unknown as (e: null, l: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      callback(null, first.address, first.family);
    });
  };
}

/** Token buckets per target host: at most `perSecond` check requests per host per second (bursts of that size). */
export class HostRateLimiter {
  readonly #perSecond: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perSecond: number) {
    this.#perSecond = perSecond;
  }

  /** True when a request to `host` may go now (and counts it). */
  take(host: string, now = Date.now()): boolean {
    const key = host.toLowerCase();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= MAX_TRACKED_HOSTS) this.#buckets.delete(this.#buckets.keys().next().value!);
      b = { tokens: this.#perSecond, at: now };
    } else {
      b.tokens = Math.min(this.#perSecond, b.tokens + ((now - b.at) / 1000) * this.#perSecond);
      b.at = now;
      this.#buckets.delete(key);
    }
    // Re-inserted: the Map's order is least recently used first, for the eviction above.
    this.#buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/** The host a polled check's request goes to, for the per-host cap. */
export function targetHost(task: Task): string {
  return checkTargets(task)[0]?.host ?? task.host;
}

/**
 * Wraps a runner so that a task whose target the policy refuses is never started: it is reported down at once
 * with the reason as its output (the operator sees why in the provider's check output), and watched by nobody.
 */
export class GuardedRunner implements CheckRunner {
  readonly #inner: CheckRunner;
  readonly #policy: CheckPolicy;
  readonly #emit: ObservationSink;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  /** Tasks being vetted (resolution in flight): the latest definition of each. */
  readonly #pending = new Map<string, Task>();
  readonly #refused = new Map<string, Observation>();

  constructor(inner: CheckRunner, deps: { policy: CheckPolicy; log: Logger; metrics: Metrics }, emit: ObservationSink) {
    this.#inner = inner;
    this.#policy = deps.policy;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#emit = emit;
    deps.metrics.counter('switchboard_checks_refused_total', 'Check tasks refused by the SSRF rules (check-policy)');
  }

  add(task: Task): void {
    const first = !this.#pending.has(task.id);
    this.#pending.set(task.id, task);
    if (first) void this.#vet(task.id);
  }

  async #vet(id: string): Promise<void> {
    let why: string | null = null;
    for (;;) {
      const task = this.#pending.get(id);
      if (!task) return;
      why = null;
      for (const target of checkTargets(task)) {
        why = await vetTarget(this.#policy, target);
        if (why) break;
      }
      // A newer definition arrived while resolving: vet that one instead.
      if (this.#pending.get(id) !== task) continue;
      this.#pending.delete(id);
      if (why) {
        this.#inner.remove(id);
        const o: Observation = { id, alive: false, cause: 'check', at: Date.now(), output: why.slice(0, 1024) };
        this.#refused.set(id, o);
        this.#metrics.inc('switchboard_checks_refused_total');
        this.#log.warn({ id, reason: why }, 'check target refused');
        this.#emit(o);
      } else {
        this.#refused.delete(id);
        this.#inner.add(task);
      }
      return;
    }
  }

  remove(id: string): void {
    this.#pending.delete(id);
    this.#refused.delete(id);
    this.#inner.remove(id);
  }

  has(id: string): boolean {
    return this.#pending.has(id) || this.#refused.has(id) || this.#inner.has(id);
  }

  observations(): Observation[] {
    return [...this.#inner.observations(), ...this.#refused.values()];
  }

  close(): Promise<void> {
    this.#pending.clear();
    this.#refused.clear();
    return this.#inner.close();
  }
}

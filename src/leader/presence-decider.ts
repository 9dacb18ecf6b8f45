/**
 * Presence decisions: what the leader makes of workers' observations (rules in presence.ts), through the
 * mass-down guard (mass-down.ts), and maintenance, which outranks both. It keeps, per provider, the last thing
 * observed and the last check result even while the provider is in maintenance, so leaving maintenance returns
 * it to what is true now.
 */
import type { CheckResult, Logger, Metrics, Observation, Provider } from '../bridge/index.ts';
import { MassDownGuard, type GuardStatus } from './mass-down.ts';
import { decide, stateAfterMaintenance } from './presence.ts';
import type { Registry } from './registry.ts';

export interface PresenceDeciderOptions {
  registry: Registry;
  /** Which worker watches a provider now: only its owner is heard. */
  ownerOf: (id: string) => string | undefined;
  guard: { percent: number; minProviders: number; windowMs: number; settleMs: number };
  log: Logger;
  metrics: Metrics;
}

export class PresenceDecider {
  readonly #registry: Registry;
  readonly #ownerOf: (id: string) => string | undefined;
  readonly #log: Logger;
  /** Last observation per provider, kept even while in maintenance. */
  readonly #observed = new Map<string, boolean | null>();
  /** Last check result per provider, restored as `lastCheck` when maintenance ends. */
  readonly #lastResult = new Map<string, CheckResult>();
  readonly #guard: MassDownGuard;

  constructor(opts: PresenceDeciderOptions) {
    this.#registry = opts.registry;
    this.#ownerOf = opts.ownerOf;
    this.#log = opts.log;
    this.#guard = new MassDownGuard({
      ...opts.guard,
      log: opts.log,
      metrics: opts.metrics,
      checkedCount: () => {
        let n = 0;
        for (const p of this.#registry.all()) if (p.check && p.state !== 'maintenance') n++;
        return n;
      },
      apply: (o) => this.#applyDown(o),
    });
  }

  /** What a worker reports (a hello's current presence, or a presence report). */
  observe(workerId: string, observations: Observation[]): void {
    for (const o of observations) {
      if (this.#ownerOf(o.id) !== workerId) continue; // a worker that no longer owns the task is not heard
      const provider = this.#registry.get(o.id);
      if (!provider) continue;
      if (o.alive !== null) {
        this.#observed.set(o.id, o.alive);
        const result: CheckResult = { ok: o.alive, at: o.at };
        if (o.output !== undefined) result.output = o.output;
        this.#lastResult.set(o.id, result);
      }
      // Alive again, or really gone (its own connection closed): whatever the guard held is moot.
      if (o.alive === true || o.cause === 'disconnect') this.#guard.forget(o.id);
      const decision = decide(provider, o);
      if (!decision) continue;
      // A down that is not a closed connection may be part of a mass event: the guard decides when it is published.
      if (decision.state === 'down' && o.cause !== 'disconnect') {
        this.#guard.offer(o);
        continue;
      }
      this.#registry.setState(o.id, decision.state, decision.change, decision.lastCheck, Date.now());
    }
  }

  /** An operator takes the provider out of `up` lookups. Returns the new record, or undefined if unchanged. */
  enterMaintenance(provider: Provider, reason: string | undefined, now: number): Provider | undefined {
    // An operator's decision: a held down no longer matters, and maintenance outranks it anyway.
    this.#guard.forget(provider.id);
    return this.#registry.setState(
      provider.id,
      'maintenance',
      'maintenance',
      { ok: false, at: now, output: reason ?? 'maintenance' },
      now,
    );
  }

  /** Maintenance ends: back to what was last observed. Undefined if it was not in maintenance. */
  leaveMaintenance(provider: Provider, now: number): Provider | undefined {
    if (provider.state !== 'maintenance') return undefined;
    const state = stateAfterMaintenance(provider, this.#observed.get(provider.id));
    const change = state === 'up' ? 'up' : state === 'down' ? 'down' : 'updated';
    // lastCheck carried the maintenance reason; show the real last check result again.
    return this.#registry.setState(provider.id, state, change, this.#lastResult.get(provider.id), now);
  }

  /** The provider was removed: forget everything kept about it. */
  forget(id: string): void {
    this.#observed.delete(id);
    this.#lastResult.delete(id);
    this.#guard.forget(id);
  }

  guardStatus(): GuardStatus {
    return this.#guard.status();
  }

  /** An operator's override: publish every held down now. Returns how many were released. */
  releaseGuard(): number {
    const released = this.#guard.release();
    this.#log.warn({ released }, 'mass-down guard released by an operator');
    return released;
  }

  close(): void {
    this.#guard.close();
  }

  /** A down released by the mass-down guard: published only if it still holds. */
  #applyDown(o: Observation): void {
    const provider = this.#registry.get(o.id);
    if (!provider || this.#observed.get(o.id) !== false) return;
    const decision = decide(provider, o);
    if (decision?.state === 'down')
      this.#registry.setState(o.id, decision.state, decision.change, decision.lastCheck, Date.now());
  }
}

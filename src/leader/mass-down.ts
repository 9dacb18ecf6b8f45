/**
 * The mass-down guard (Eureka's self-preservation, narrowed): when more than `percent` of all checked providers
 * would go down within one window, the likelier story is that a worker or a network was cut off from them, not
 * that they all died at once. Those transitions are held (providers keep their state), a loud warning is logged,
 * and the hold is exposed (metrics, the `pong` to gateways, so `/readyz` and `/metrics` show it).
 *
 * Only downs whose cause is not a closed connection come here: a `disconnect` means the provider's own socket
 * closed (a dead process) and is always published at once. To judge a burst as a whole, such downs wait
 * `settleMs` before they are counted and published.
 *
 * The hold ends when the condition clears (held providers beat again; once what is still held no longer exceeds
 * the threshold for a whole window, the rest is published as down) or when an operator releases it.
 */
import type { Logger, Metrics, Observation } from '../bridge/index.ts';

export interface GuardStatus {
  active: boolean;
  held: number;
  /** Epoch milliseconds the guard tripped. */
  since?: number;
}

export interface MassDownGuardOptions {
  percent: number;
  minProviders: number;
  windowMs: number;
  settleMs: number;
  log: Logger;
  metrics: Metrics;
  /** Providers that count: those with a check, not in maintenance. */
  checkedCount: () => number;
  /** Publishes a down now; the leader re-checks that it still applies. */
  apply: (observation: Observation) => void;
}

export class MassDownGuard {
  readonly #opts: MassDownGuardOptions;
  /** Downs waiting to be judged together. */
  readonly #pending = new Map<string, Observation>();
  /** Downs held while the guard is active. */
  readonly #held = new Map<string, Observation>();
  /** Downs published in the current window (provider id → when). */
  readonly #recent = new Map<string, number>();
  #settleTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #since = 0;
  #closed = false;

  constructor(opts: MassDownGuardOptions) {
    this.#opts = opts;
    opts.metrics.gauge(
      'switchboard_mass_down_guard_active',
      '1 while the mass-down guard holds down transitions',
      () => (this.active ? 1 : 0),
    );
    opts.metrics.gauge(
      'switchboard_mass_down_held',
      'Down transitions held by the mass-down guard',
      () => this.#held.size,
    );
    opts.metrics.counter('switchboard_mass_down_trips_total', 'Times the mass-down guard tripped');
    // The gauge above is only what is held now; a benchmark's "0 false downs" must also say how many were held.
    opts.metrics.counter('switchboard_mass_down_held_total', 'Down transitions the mass-down guard held, ever');
  }

  get active(): boolean {
    return this.#since > 0;
  }

  status(): GuardStatus {
    return this.active ? { active: true, held: this.#held.size, since: this.#since } : { active: false, held: 0 };
  }

  isHeld(id: string): boolean {
    return this.#held.has(id) || this.#pending.has(id);
  }

  /** A down that is not a closed connection. */
  offer(o: Observation): void {
    if (this.#closed) return;
    if (this.#opts.percent >= 100) return this.#opts.apply(o);
    if (this.active) {
      this.#hold(o);
      return;
    }
    this.#pending.set(o.id, o);
    if (this.#opts.settleMs === 0) this.#evaluate();
    else this.#settleTimer ??= setTimeout(() => this.#evaluate(), this.#opts.settleMs);
  }

  /** The provider is alive again, deregistered, in maintenance, or went down for real: nothing to hold. */
  forget(id: string): void {
    this.#pending.delete(id);
    if (this.#held.delete(id) && this.#held.size === 0 && this.active)
      this.#deactivate('every held provider is alive again');
  }

  /** Operator override: publish every held down now. Returns how many were released. */
  release(): number {
    const held = [...this.#held.values()];
    this.#held.clear();
    this.#recent.clear();
    if (this.active) this.#deactivate('released by an operator');
    for (const o of held) this.#opts.apply(o);
    return held.length;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#settleTimer);
    clearInterval(this.#checkTimer);
  }

  #exceeds(count: number): boolean {
    return count >= this.#opts.minProviders && count * 100 > this.#opts.percent * this.#opts.checkedCount();
  }

  #evaluate(): void {
    this.#settleTimer = undefined;
    if (this.#closed || this.#pending.size === 0) return;
    const now = Date.now();
    for (const [id, at] of this.#recent) if (now - at > this.#opts.windowMs) this.#recent.delete(id);
    const ids = new Set([...this.#recent.keys(), ...this.#pending.keys()]);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    if (this.#exceeds(ids.size)) {
      for (const o of pending) this.#hold(o);
      this.#activate(ids.size, now);
      return;
    }
    for (const o of pending) {
      this.#recent.set(o.id, now);
      this.#opts.apply(o);
    }
  }

  #hold(o: Observation): void {
    if (!this.#held.has(o.id)) this.#opts.metrics.inc('switchboard_mass_down_held_total');
    this.#held.set(o.id, o);
  }

  #activate(count: number, now: number): void {
    this.#since = now;
    this.#opts.metrics.inc('switchboard_mass_down_trips_total');
    this.#opts.log.error(
      {
        wouldGoDown: count,
        checked: this.#opts.checkedCount(),
        held: this.#held.size,
        percent: this.#opts.percent,
        windowMs: this.#opts.windowMs,
      },
      'MASS-DOWN GUARD TRIPPED: too many providers would go down at once without their connections closing; ' +
        'holding these transitions (likely a worker or network cut off, not dead providers). ' +
        'Release with POST /v1/admin/release-guard if they are really gone.',
    );
    // Once what is still held no longer looks like a mass event for a whole window, the rest is really down.
    this.#checkTimer = setInterval(() => {
      if (this.#exceeds(this.#held.size)) return;
      const rest = [...this.#held.values()];
      this.#held.clear();
      this.#deactivate(`condition cleared; publishing ${rest.length} remaining down`);
      for (const o of rest) this.#opts.apply(o);
    }, this.#opts.windowMs);
  }

  #deactivate(reason: string): void {
    clearInterval(this.#checkTimer);
    this.#checkTimer = undefined;
    this.#opts.log.warn({ reason, heldForMs: Date.now() - this.#since }, 'mass-down guard released');
    this.#since = 0;
    this.#recent.clear();
  }
}

/**
 * Auto-deregistration: a provider that has been `down` for `deregisterAfterMs` (its check's value, else the
 * leader's default; off when neither is set) is removed, which publishes a `deregistered` event. Providers in
 * maintenance, or whose down is held by the mass-down guard, are not down and so are never reaped.
 */
import type { Logger, Metrics, Provider } from '../bridge/index.ts';

export interface ReaperOptions {
  defaultAfterMs: number | undefined;
  intervalMs: number;
  providers: () => Iterable<Provider>;
  /** Removes the provider (the leader stages the `deregistered` event and drops its watch task). */
  remove: (provider: Provider) => void;
  log: Logger;
  metrics: Metrics;
}

export class Reaper {
  readonly #opts: ReaperOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: ReaperOptions) {
    this.#opts = opts;
    opts.metrics.counter(
      'switchboard_providers_deregistered_auto_total',
      'Providers removed after being down for deregisterAfterMs',
    );
  }

  start(): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.sweep(), this.#opts.intervalMs);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Removes what is due now; returns how many. */
  sweep(now = Date.now()): number {
    const due: Provider[] = [];
    for (const p of this.#opts.providers()) {
      if (p.state !== 'down' || !p.check) continue;
      const after = p.check.deregisterAfterMs ?? this.#opts.defaultAfterMs;
      if (after !== undefined && now - p.stateSince >= after) due.push(p);
    }
    for (const p of due) {
      this.#opts.log.info(
        { id: p.id, service: p.service, downForMs: now - p.stateSince },
        'deregistering a provider down for too long',
      );
      this.#opts.metrics.inc('switchboard_providers_deregistered_auto_total');
      this.#opts.remove(p);
    }
    return due.length;
  }
}

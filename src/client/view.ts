/** The client's copy of what it watches: providers by id, the position (epoch, rev), applied in revision order. */
import type { Provider, RegistryEvent } from '../bridge/index.ts';

export class View {
  epoch: string | null = null;
  rev = 0;
  readonly providers = new Map<string, Provider>();

  reset(snapshot: { epoch: string; rev: number; providers: Provider[] }): void {
    this.providers.clear();
    for (const p of snapshot.providers) this.providers.set(p.id, p);
    this.epoch = snapshot.epoch;
    this.rev = snapshot.rev;
  }

  /** Applies an event newer than the view; false for one already seen (never applied twice). */
  apply(event: RegistryEvent): boolean {
    if (event.epoch !== this.epoch || event.rev <= this.rev) return false;
    if (event.change === 'deregistered') this.providers.delete(event.provider.id);
    else this.providers.set(event.provider.id, event.provider);
    this.rev = event.rev;
    return true;
  }

  service(name: string): Provider[] {
    return [...this.providers.values()].filter((p) => p.service === name);
  }
}

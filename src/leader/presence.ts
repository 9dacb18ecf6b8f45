/**
 * Presence rules: how a worker's observation turns into a provider state. Workers only say what they saw; the
 * leader decides here.
 */
import type { Change, CheckResult, Observation, Provider, ProviderState } from '../bridge/index.ts';

export interface Decision {
  state: ProviderState;
  change: Change;
  lastCheck: CheckResult;
}

export function decide(provider: Provider, observation: Observation): Decision | undefined {
  if (observation.alive === null) return undefined;
  // An operator's maintenance hold outranks what the checks say; the observation is kept for when it ends.
  if (provider.state === 'maintenance') return undefined;
  const lastCheck: CheckResult = { ok: observation.alive, at: observation.at };
  const output = observation.output ?? (observation.alive ? undefined : observation.cause);
  if (output) lastCheck.output = output;
  // The error text of the last failure stays visible after recovery: "up, but last failed because ..." is useful.
  const previous = provider.lastCheck;
  if (!observation.alive) {
    lastCheck.lastFailure = lastCheck.output ?? 'down';
    lastCheck.lastFailureAt = observation.at;
  } else if (previous && !previous.ok && previous.output !== undefined) {
    lastCheck.lastFailure = previous.output;
    lastCheck.lastFailureAt = previous.at;
  } else if (previous?.lastFailure !== undefined) {
    lastCheck.lastFailure = previous.lastFailure;
    if (previous.lastFailureAt !== undefined) lastCheck.lastFailureAt = previous.lastFailureAt;
  }
  if (observation.alive && provider.state !== 'up') return { state: 'up', change: 'up', lastCheck };
  if (!observation.alive && provider.state !== 'down') return { state: 'down', change: 'down', lastCheck };
  return undefined;
}

/** The state a provider returns to when maintenance ends: what was last observed, or pending if nothing was. */
export function stateAfterMaintenance(provider: Provider, observed: boolean | null | undefined): ProviderState {
  if (!provider.check) return 'up';
  if (observed === true) return 'up';
  if (observed === false) return 'down';
  return 'pending';
}

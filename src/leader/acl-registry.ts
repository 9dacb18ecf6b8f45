/**
 * The leader's tokens and policies: the ACL state as last committed, the checks an `acl.write` op must pass against
 * it, and the change it makes. It writes nothing itself (acl-handlers.ts commits a change, then `apply`s it), so
 * the state held here is always the durable one.
 *
 * Invariants kept across every op (so nobody locks the cluster out by accident):
 * - a token names only policies that exist; a policy named by a token cannot be deleted;
 * - `global-management` is never deleted, and keeps its rules and `admin` (only its description may change);
 * - once some token holds an `admin` policy, some token always does.
 */
import {
  GLOBAL_MANAGEMENT_POLICY,
  globalManagementPolicy,
  hashAclSecret,
  LeaderError,
  newAclAccessor,
  sameJson,
  type AclOp,
  type AclPolicy,
  type AclState,
  type AclToken,
} from '../bridge/index.ts';
import { DEFAULT_ACL_MAX_PROVIDERS } from './config.ts';
import type { AclChange } from './store-api.ts';

const notFound = (what: string): LeaderError => new LeaderError(404, 'SB_ACL_NOT_FOUND', what);
const conflict = (what: string): LeaderError => new LeaderError(409, 'SB_ACL_CONFLICT', what);

/** A change that writes nothing yet: the next version. */
function emptyChange(version: number): AclChange {
  return { version, putPolicies: [], deletePolicies: [], putTokens: [], deleteTokens: [] };
}

export class AclRegistry {
  readonly #defaultMaxProviders: number;
  #version: number;
  readonly #policies = new Map<string, AclPolicy>();
  readonly #tokens = new Map<string, AclToken>();
  readonly #secretHashes = new Set<string>();
  /** The state as one value, built once per version (every follower fetches it after each change). */
  #state: AclState | undefined;

  constructor(state: AclState, opts: { defaultMaxProviders?: number } = {}) {
    this.#defaultMaxProviders = opts.defaultMaxProviders ?? DEFAULT_ACL_MAX_PROVIDERS;
    this.#version = state.version;
    this.replace(state);
  }

  get version(): number {
    return this.#version;
  }

  /** Every token and policy at the current version. */
  state(): AclState {
    this.#state ??= {
      version: this.#version,
      tokens: [...this.#tokens.values()],
      policies: [...this.#policies.values()],
    };
    return this.#state;
  }

  token(accessor: string): AclToken | undefined {
    return this.#tokens.get(accessor);
  }

  /** How many providers the token may own at once: its own `maxProviders`, else the leader's default. */
  maxProviders(accessor: string): number {
    return this.#tokens.get(accessor)?.maxProviders ?? this.#defaultMaxProviders;
  }

  /** Takes a whole state (as read back from the store after a commit of unknown outcome). */
  replace(state: AclState): void {
    this.#version = state.version;
    this.#policies.clear();
    this.#tokens.clear();
    this.#secretHashes.clear();
    for (const p of state.policies) this.#policies.set(p.name, p);
    for (const t of state.tokens) {
      this.#tokens.set(t.accessor, t);
      this.#secretHashes.add(t.secretHash);
    }
    this.#state = undefined;
  }

  /** Checks `op` against the current state; answers the change it makes (the next version), or throws a 404/409. */
  plan(op: AclOp): AclChange {
    const change = emptyChange(this.#version + 1);
    switch (op.op) {
      case 'policy.put': {
        const { policy } = op;
        if (policy.name === GLOBAL_MANAGEMENT_POLICY) {
          const fixed = globalManagementPolicy();
          if (!sameJson(policy.rules, fixed.rules) || policy.admin !== true)
            throw conflict(
              `policy '${GLOBAL_MANAGEMENT_POLICY}' keeps its rules and admin; only its description changes`,
            );
        }
        change.putPolicies.push(policy);
        break;
      }
      case 'policy.delete': {
        if (!this.#policies.has(op.name)) throw notFound(`no policy '${op.name}'`);
        if (op.name === GLOBAL_MANAGEMENT_POLICY)
          throw conflict(`policy '${GLOBAL_MANAGEMENT_POLICY}' cannot be deleted`);
        for (const t of this.#tokens.values())
          if (t.policies.includes(op.name))
            throw conflict(`policy '${op.name}' is still named by token '${t.accessor}' (and maybe others)`);
        change.deletePolicies.push(op.name);
        break;
      }
      case 'token.create': {
        const { token } = op;
        if (this.#tokens.has(token.accessor)) throw conflict(`a token with accessor '${token.accessor}' exists`);
        if (this.#secretHashes.has(token.secretHash)) throw conflict('a token with this secret exists');
        this.#assertPoliciesExist(token.policies);
        change.putTokens.push(token);
        break;
      }
      case 'token.update': {
        const current = this.#tokens.get(op.accessor);
        if (!current) throw notFound(`no token with accessor '${op.accessor}'`);
        const next: AclToken = { ...current };
        if (op.description !== undefined) next.description = op.description;
        if (op.policies !== undefined) {
          this.#assertPoliciesExist(op.policies);
          next.policies = op.policies;
        }
        if (op.maxProviders === null) delete next.maxProviders;
        else if (op.maxProviders !== undefined) next.maxProviders = op.maxProviders;
        change.putTokens.push(next);
        break;
      }
      case 'token.delete': {
        if (!this.#tokens.has(op.accessor)) throw notFound(`no token with accessor '${op.accessor}'`);
        change.deleteTokens.push(op.accessor);
        break;
      }
    }
    if (this.#hasAdmin(emptyChange(0)) && !this.#hasAdmin(change))
      throw conflict('the change would leave no token holding an admin policy');
    return change;
  }

  /** Adopts a change once it is durable. */
  apply(change: AclChange): void {
    for (const name of change.deletePolicies) this.#policies.delete(name);
    for (const p of change.putPolicies) this.#policies.set(p.name, p);
    for (const accessor of change.deleteTokens) {
      const old = this.#tokens.get(accessor);
      if (old) this.#secretHashes.delete(old.secretHash);
      this.#tokens.delete(accessor);
    }
    for (const t of change.putTokens) {
      const old = this.#tokens.get(t.accessor);
      if (old) this.#secretHashes.delete(old.secretHash);
      this.#tokens.set(t.accessor, t);
      this.#secretHashes.add(t.secretHash);
    }
    this.#version = change.version;
    this.#state = undefined;
  }

  #assertPoliciesExist(names: readonly string[]): void {
    for (const name of names) if (!this.#policies.has(name)) throw conflict(`no policy '${name}'`);
  }

  /** Would some token hold an admin policy once `change` is applied? Stops at the first one found. */
  #hasAdmin(change: AclChange): boolean {
    const policies = new Map(this.#policies);
    for (const name of change.deletePolicies) policies.delete(name);
    for (const p of change.putPolicies) policies.set(p.name, p);
    const adminOf = (t: AclToken): boolean => t.policies.some((name) => policies.get(name)?.admin === true);
    const changed = new Set([...change.deleteTokens, ...change.putTokens.map((t) => t.accessor)]);
    if (change.putTokens.some(adminOf)) return true;
    for (const t of this.#tokens.values()) if (!changed.has(t.accessor) && adminOf(t)) return true;
    return false;
  }
}

/**
 * The first ACL state of a store: the `global-management` policy and one token holding it, at version 1.
 * `accessor` is given when a bootstrap whose outcome was unknown is tried again (the same token, not a second).
 */
export function bootstrapChange(secret: string, now: number, accessor = newAclAccessor()): AclChange {
  return {
    version: 1,
    putPolicies: [globalManagementPolicy()],
    deletePolicies: [],
    putTokens: [
      {
        accessor,
        secretHash: hashAclSecret(secret),
        description: 'Bootstrap token (global-management)',
        policies: [GLOBAL_MANAGEMENT_POLICY],
        createdAt: now,
      },
    ],
    deleteTokens: [],
  };
}

/**
 * Tokens and policies (Consul's ACL model, reduced to what Switchboard guards): the records the leader stores and
 * replicates, and the one decision every gateway route asks — may this token do this to this service?
 *
 * - A **policy** names rules: per service name or name prefix, `read`, `write` or `deny`; and whether it grants
 *   `admin` (tokens and policies, guard release, cluster view, snapshots).
 * - A **token** has a public accessor id (logged, shown, used to manage it) and a secret that only its holder
 *   knows. Stores and replicas keep the secret's SHA-256, never the secret: secrets are 256 random bits, so an
 *   unsalted hash is as strong as the secret and lets a gateway find the token in one map lookup.
 * - Rule precedence follows Consul: an exact service rule beats any prefix rule, a longer prefix beats a shorter
 *   one, and among a token's policies `deny` beats `write` beats `read` for rules of the same specificity.
 *   Nothing matching means no access (default deny).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';

export const ACL_POLICY_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
/** The largest per-token provider quota (finite, so JSON's `1e400` — Infinity — is refused at the edge). */
export const MAX_ACL_PROVIDER_QUOTA = 100_000_000;
/** The policy every store is created with: `write` on every service, and `admin`. The bootstrap token holds it. */
export const GLOBAL_MANAGEMENT_POLICY = 'global-management';

export const AclAccess = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('deny')]);
export type AclAccess = Static<typeof AclAccess>;

/** One rule: exactly one of `service` (an exact name) or `prefix` (`""` matches every service). */
export const AclRule = Type.Union([
  Type.Object(
    { service: Type.String({ minLength: 1, maxLength: 63 }), access: AclAccess },
    { additionalProperties: false },
  ),
  Type.Object({ prefix: Type.String({ maxLength: 63 }), access: AclAccess }, { additionalProperties: false }),
]);
export type AclRule = Static<typeof AclRule>;

export const AclPolicy = Type.Object(
  {
    name: Type.String({ pattern: ACL_POLICY_NAME_PATTERN, description: 'Policy name, unique' }),
    description: Type.Optional(Type.String({ maxLength: 512 })),
    rules: Type.Array(AclRule, { maxItems: 1000 }),
    /** Tokens and policies, guard release, cluster view, snapshots. */
    admin: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type AclPolicy = Static<typeof AclPolicy>;

/** A token as stored and replicated: the secret only as its SHA-256 (hex). */
export const AclToken = Type.Object({
  accessor: Type.String({ minLength: 1, maxLength: 64, description: 'Public id of the token (a UUID)' }),
  secretHash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  description: Type.Optional(Type.String({ maxLength: 512 })),
  policies: Type.Array(Type.String({ pattern: ACL_POLICY_NAME_PATTERN }), { maxItems: 64 }),
  /** Providers this token may have registered at once (absent: the leader's default). */
  maxProviders: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_ACL_PROVIDER_QUOTA })),
  createdAt: Type.Number({ description: 'Epoch milliseconds' }),
});
export type AclToken = Static<typeof AclToken>;

/** Every token and policy of a store, at one ACL version (which grows by one per change). */
export const AclState = Type.Object({
  version: Type.Integer({ minimum: 0 }),
  tokens: Type.Array(AclToken, { maxItems: 100_000 }),
  policies: Type.Array(AclPolicy, { maxItems: 10_000 }),
});
export type AclState = Static<typeof AclState>;
export const aclState = Compile(AclState);

export const EMPTY_ACL_STATE: AclState = { version: 0, tokens: [], policies: [] };

export const globalManagementPolicy = (): AclPolicy => ({
  name: GLOBAL_MANAGEMENT_POLICY,
  description: 'Everything: write on every service, and admin',
  rules: [{ prefix: '', access: 'write' }],
  admin: true,
});

/** A new secret: 256 random bits, base64url (43 characters). */
export function newAclSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function newAclAccessor(): string {
  return randomUUID();
}

export function hashAclSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** What a request needs: read or write on one service, or admin. */
export type AclNeed = { access: 'read' | 'write'; service: string } | { access: 'admin' };

/** A token with its policies looked up: what a gateway holds for the request it authenticates. */
export class ResolvedToken {
  readonly accessor: string;
  readonly maxProviders: number | undefined;
  readonly #exact = new Map<string, AclAccess>();
  /** Longest prefix first. */
  readonly #prefixes: Array<[string, AclAccess]>;
  readonly #admin: boolean;

  constructor(token: AclToken, policies: ReadonlyMap<string, AclPolicy>) {
    this.accessor = token.accessor;
    this.maxProviders = token.maxProviders;
    const prefixes = new Map<string, AclAccess>();
    let admin = false;
    for (const name of token.policies) {
      const policy = policies.get(name);
      if (!policy) continue; // a deleted policy grants nothing
      if (policy.admin) admin = true;
      for (const rule of policy.rules) {
        if ('service' in rule) this.#exact.set(rule.service, strongest(this.#exact.get(rule.service), rule.access));
        else prefixes.set(rule.prefix, strongest(prefixes.get(rule.prefix), rule.access));
      }
    }
    this.#prefixes = [...prefixes].sort((a, b) => b[0].length - a[0].length);
    this.#admin = admin;
  }

  /** The access this token has to `service`: the most specific matching rule, or `deny`. */
  accessTo(service: string): AclAccess {
    const exact = this.#exact.get(service);
    if (exact) return exact;
    for (const [prefix, access] of this.#prefixes) if (service.startsWith(prefix)) return access;
    return 'deny';
  }

  get admin(): boolean {
    return this.#admin;
  }

  /**
   * Does any rule grant read (or write)? False for a token with no policy left, or only deny rules: a stream of
   * every service it opened then carries nothing and ends. (A granting prefix counts even if longer deny prefixes
   * might cover all names under it: service names are too many for that to be meant.)
   */
  readsAny(): boolean {
    for (const access of this.#exact.values()) if (access !== 'deny') return true;
    return this.#prefixes.some(([, access]) => access !== 'deny');
  }

  allows(need: AclNeed): boolean {
    if (need.access === 'admin') return this.#admin;
    const have = this.accessTo(need.service);
    return need.access === 'read' ? have === 'read' || have === 'write' : have === 'write';
  }
}

/** deny > write > read: among rules of the same specificity, the most restrictive deny wins, else the widest grant. */
function strongest(a: AclAccess | undefined, b: AclAccess): AclAccess {
  if (a === 'deny' || b === 'deny') return 'deny';
  if (a === 'write' || b === 'write') return 'write';
  return 'read';
}

/** One ACL version indexed for lookups: secret → resolved token. Rebuilt whole on every version (they are rare). */
export class AclIndex {
  readonly version: number;
  readonly #bySecretHash = new Map<string, ResolvedToken>();
  /**
   * Secrets already resolved at this version: a request then costs one map lookup instead of a SHA-256 (the hash was
   * the ACL's main per-request cost). Only known secrets enter, so it holds at most one entry per token.
   */
  readonly #bySecret = new Map<string, ResolvedToken>();
  readonly #byAccessor = new Map<string, AclToken>();
  readonly #policies: Map<string, AclPolicy>;

  constructor(state: AclState) {
    this.version = state.version;
    this.#policies = new Map(state.policies.map((p) => [p.name, p]));
    for (const token of state.tokens) {
      this.#byAccessor.set(token.accessor, token);
      this.#bySecretHash.set(token.secretHash, new ResolvedToken(token, this.#policies));
    }
  }

  /** The token whose secret this is, or undefined. */
  resolve(secret: string): ResolvedToken | undefined {
    const known = this.#bySecret.get(secret);
    if (known) return known;
    const token = this.#bySecretHash.get(hashAclSecret(secret));
    if (token && this.#bySecret.size < this.#bySecretHash.size) this.#bySecret.set(secret, token);
    return token;
  }

  token(accessor: string): AclToken | undefined {
    return this.#byAccessor.get(accessor);
  }

  policy(name: string): AclPolicy | undefined {
    return this.#policies.get(name);
  }

  tokens(): IterableIterator<AclToken> {
    return this.#byAccessor.values();
  }

  policies(): IterableIterator<AclPolicy> {
    return this.#policies.values();
  }
}

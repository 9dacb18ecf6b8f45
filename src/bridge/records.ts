/**
 * Checks of stored records, shared by every place that reads providers back from a store or a snapshot file, and
 * a key-order-insensitive comparison of JSON values.
 */
import { Compile } from 'typebox/compile';
import { AclPolicy, AclToken } from './acl.ts';
import { Provider } from './schemas.ts';

const provider = Compile(Provider);
const aclPolicy = Compile(AclPolicy);
const aclToken = Compile(AclToken);

/** Undefined when `value` passes `validator`, else the first problem as `<json pointer> <message>`. */
function problem(validator: typeof provider | typeof aclPolicy | typeof aclToken, value: unknown, what: string) {
  if (validator.Check(value)) return undefined;
  const [first] = validator.Errors(value);
  if (!first) return `is not a valid ${what}`;
  return `${first.instancePath || '/'} ${first.message}`;
}

/** Undefined when `value` is a valid provider record, else the first problem as `<json pointer> <message>`. */
export function providerProblem(value: unknown): string | undefined {
  return problem(provider, value, 'provider');
}

/** The same for a stored ACL policy. */
export function aclPolicyProblem(value: unknown): string | undefined {
  return problem(aclPolicy, value, 'ACL policy');
}

/** The same for a stored ACL token. */
export function aclTokenProblem(value: unknown): string | undefined {
  return problem(aclToken, value, 'ACL token');
}

/**
 * JSON with object keys sorted at every depth: two values that differ only in key order (a client in another
 * language, a map that was rebuilt) give the same text. Arrays keep their order: it means something.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** True when `a` and `b` are the same JSON value, whatever the order of their object keys. */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}

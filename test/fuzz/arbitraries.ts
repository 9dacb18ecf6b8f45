/**
 * What the fuzz tests share: how many cases to run (`FUZZ_RUNS`), valid values drawn from a JSON schema (the
 * OpenAPI document's, so new routes are fuzzed without touching the tests), mutations of valid values (dropped,
 * retyped and duplicated fields, huge strings, unicode, deep nesting, numbers at the edges, prototype keys) and the
 * heap measure the memory invariant uses.
 *
 * Replaying a failure: fast-check prints `seed` and `path` of the smallest counterexample; run the same file with
 * `FUZZ_SEED=<seed> FUZZ_PATH=<path>` to replay exactly that case.
 */
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Cases for one property: `base` × FUZZ_RUNS/1000 (FUZZ_RUNS defaults to 1000, the CI size). */
export function fuzzRuns(base: number): number {
  const scale = Number(process.env.FUZZ_RUNS ?? 1000) / 1000;
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** fast-check parameters: the run count, and the seed/path of a failure to replay (FUZZ_SEED, FUZZ_PATH). */
export function fuzzParameters(base: number): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED;
  const path = process.env.FUZZ_PATH;
  return {
    numRuns: fuzzRuns(base),
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    ...(path !== undefined ? { path } : {}),
    // Shrinking re-runs many cases against live servers; the first counterexample, with its seed, is what we need.
    endOnFailure: process.env.FUZZ_SHRINK === undefined,
    includeErrorInReport: true,
  };
}

/** A subset of JSON Schema, as TypeBox writes it into the OpenAPI document. */
export interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  examples?: unknown[];
  example?: unknown;
}

/**
 * Strings matching a pattern, drawn once per pattern with a fixed seed: `fc.stringMatching` costs milliseconds a
 * value, which made generation, not the server, the bulk of a run. The pool is the same on every run, so a seed
 * still replays its case.
 */
const pools = new Map<string, string[]>();
function matching(pattern: string, min: number, max: number): fc.Arbitrary<string> {
  const key = `${pattern}/${min}/${max}`;
  let pool = pools.get(key);
  if (!pool) {
    const arb = fc
      .stringMatching(new RegExp(pattern))
      .filter((s) => s.length >= min && s.length <= max && !/[\r\n]/.test(s));
    pool = [...new Set(fc.sample(arb, { seed: 42, numRuns: 64 }))];
    pools.set(key, pool);
  }
  return fc.constantFrom(...pool);
}

function stringFrom(schema: JsonSchema): fc.Arbitrary<string> {
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? 64;
  if (schema.pattern !== undefined) return matching(schema.pattern, min, max);
  return fc.string({ minLength: min, maxLength: Math.min(max, 64) });
}

/** Values that satisfy `schema` (as far as this subset tells): the seeds mutations start from. */
export function valid(schema: JsonSchema): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) return fc.oneof(...variants.map(valid));
  if (schema.allOf) return valid(Object.assign({}, ...schema.allOf) as JsonSchema);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string':
      return stringFrom(schema);
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -(2 ** 31), max: schema.maximum ?? 2 ** 31 });
    case 'number':
      return fc.double({ min: schema.minimum ?? -1e9, max: schema.maximum ?? 1e9, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(valid(schema.items ?? {}), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? 4, 4),
      });
    case 'object': {
      const props = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, sub] of Object.entries(props)) record[key] = valid(sub);
      if (Object.keys(props).length === 0 && schema.additionalProperties)
        return fc.dictionary(
          fc.stringMatching(/^[a-z][a-z0-9_.-]{0,15}$/),
          typeof schema.additionalProperties === 'object' ? valid(schema.additionalProperties) : fc.string(),
          { maxKeys: 4 },
        );
      return fc.record(record, { requiredKeys: [...required].filter((k) => k in props) });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** Numbers where parsers and range checks break. */
export const EDGE_NUMBERS = [
  0,
  -0,
  -1,
  1.5,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  -Number.MAX_SAFE_INTEGER - 2,
  1e308,
  -1e308,
  5e-324,
];

/** Strings that are hostile by length, encoding or meaning. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '\u0000',
      'a\u0000b',
      '\ud800',
      '\udfff\ud800',
      '\u202e\u2066',
      'e\u0301',
      '../../etc/passwd',
      '%00',
      '%2e%2e%2f',
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'hasOwnProperty',
      '${jndi:ldap://x}',
      "' OR 1=1 --",
      'x'.repeat(300),
      'x'.repeat(5000),
      '\u{1F4A9}'.repeat(200),
    ),
  },
  // Past the body limit (64 KiB) and any URL a proxy would pass: rare, they cost the most per case.
  { weight: 1, arbitrary: fc.integer({ min: 10_000, max: 80_000 }).map((n) => 'y'.repeat(n)) },
);

/** Any JSON value of any type, hostile strings and edge numbers included. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileString,
  fc.constantFrom(...EDGE_NUMBERS),
  fc.constantFrom(null, true, false, [], {}),
);

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];

/** An object with an own `__proto__` (or `constructor`) key, as JSON.parse makes one: a pollution attempt. */
function withOwnKey(target: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(target)) as Record<string, unknown>;
  Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

/** Every object/array position in `value`, as a path of keys. */
function containers(value: unknown, path: Array<string | number> = [], out: Array<Array<string | number>> = []) {
  if (value !== null && typeof value === 'object') {
    out.push(path);
    for (const [k, v] of Object.entries(value)) containers(v, [...path, Array.isArray(value) ? Number(k) : k], out);
  }
  return out;
}

function at(value: unknown, path: Array<string | number>): unknown {
  let cur = value;
  for (const k of path) cur = (cur as Record<string | number, unknown>)[k];
  return cur;
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function nest(value: unknown, depth: number, asArray: boolean): unknown {
  let cur = value;
  for (let i = 0; i < depth; i++) cur = asArray ? [cur] : { a: cur };
  return cur;
}

/** One mutation of a JSON value; `pick` chooses among positions and keys (from fast-check, so cases replay). */
type Mutation = (value: unknown, pick: (n: number) => number, extra: unknown) => unknown;

const MUTATIONS: Record<string, Mutation> = {
  dropField(value, pick) {
    const copy = clone(value);
    const spots = containers(copy);
    if (spots.length === 0) return undefined;
    const holder = at(copy, spots[pick(spots.length)]) as Record<string, unknown>;
    const keys = Object.keys(holder);
    if (keys.length > 0) delete holder[keys[pick(keys.length)]];
    return copy;
  },
  retypeField(value, pick, extra) {
    const copy = clone(value);
    const spots = containers(copy);
    if (spots.length === 0) return extra;
    const holder = at(copy, spots[pick(spots.length)]) as Record<string, unknown>;
    const keys = Object.keys(holder);
    if (keys.length === 0) return extra;
    holder[keys[pick(keys.length)]] = extra;
    return copy;
  },
  addField(value, pick, extra) {
    const copy = clone(value);
    const spots = containers(copy);
    if (spots.length === 0) return { [String(extra)]: extra };
    const holder = at(copy, spots[pick(spots.length)]) as Record<string, unknown>;
    holder[typeof extra === 'string' ? extra.slice(0, 64) : 'extra'] = extra;
    return copy;
  },
  protoKey(value, pick, extra) {
    const copy = clone(value);
    const spots = containers(copy).filter((p) => !Array.isArray(at(copy, p)));
    const polluted = { polluted: 'yes', isAdmin: true, ...(typeof extra === 'object' ? {} : { v: extra }) };
    if (spots.length === 0) return withOwnKey({}, PROTO_KEYS[pick(3)], polluted);
    const path = spots[pick(spots.length)];
    const holder = at(copy, path) as Record<string, unknown>;
    const replaced = withOwnKey(holder, PROTO_KEYS[pick(3)], polluted);
    if (path.length === 0) return replaced;
    (at(copy, path.slice(0, -1)) as Record<string | number, unknown>)[path[path.length - 1]] = replaced;
    return copy;
  },
  deepNesting(value, pick) {
    return nest(value, [10, 100, 500, 1000][pick(4)], pick(2) === 0);
  },
  wholeValue(_value, _pick, extra) {
    return extra;
  },
};

/** A mutated version of a value drawn from `seed`, with the name of the mutation (for failure messages). */
export function mutated(seed: fc.Arbitrary<unknown>): fc.Arbitrary<{ value: unknown; mutation: string }> {
  return fc
    .record({
      value: seed,
      mutation: fc.constantFrom(...Object.keys(MUTATIONS)),
      picks: fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
      extra: hostileValue,
    })
    .map(({ value, mutation, picks, extra }) => {
      let i = 0;
      const pick = (n: number) => picks[i++ % picks.length] % n;
      return { value: MUTATIONS[mutation](value, pick, extra), mutation };
    });
}

/**
 * JSON text that JSON.stringify never writes: duplicate keys (the last wins in JSON.parse), numbers beyond a
 * double, truncated documents.
 */
export function rawJsonText(seed: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc
    .record({ value: seed, how: fc.nat(6), cut: fc.nat(), key: hostileString })
    .map(({ value, how, cut, key }) => {
      const text = JSON.stringify(value) ?? 'null';
      switch (how) {
        case 0: {
          // The first key again, with another type.
          const m = /^\{"((?:[^"\\]|\\.)*)":/.exec(text);
          return m ? `{"${m[1]}":[1e999],${text.slice(1)}` : text;
        }
        case 1:
          return text.replace(/:(\d+)/, ':1e400');
        case 2:
          return text.slice(0, cut % (text.length + 1));
        case 3:
          return `${text},${text}`;
        case 4:
          return text.replace(/^\{/, `{${JSON.stringify(key)}:null,`);
        case 5:
          // Deeper than JSON.stringify could write: a recursive parser or validator would overflow its stack.
          return cut % 2 === 0
            ? `${'['.repeat(100_000)}${']'.repeat(100_000)}`
            : `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
        default:
          return `\ufeff${text}`;
      }
    });
}

let gc: (() => void) | undefined;
/** Heap in use after a full collection, in MiB (the flag is set here, so the test needs no --expose-gc). */
export function heapMiB(): number {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

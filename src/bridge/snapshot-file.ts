/**
 * The snapshot file of `switchboard snapshot save` / `restore`: the leader's committed state at one revision, as
 * JSON, the same for both stores.
 *
 *   { format: 'switchboard-snapshot', version: 1, epoch, rev, takenAt, providers: [...], acl?: { version, tokens, policies } }
 *
 * `epoch` and `rev` say where it was taken; a restore keeps `rev` (revisions go on from there) under a new epoch.
 * `acl` (tokens with their secrets as hashes only, and policies) is absent from files of stores without ACLs and
 * of older versions; a store restored without it bootstraps a new admin token at its next start.
 */
import { Type, type Static } from 'typebox';
import { AclState, aclState } from './acl.ts';
import { Provider } from './schemas.ts';
import { addressKey } from './ids.ts';
import { providerProblem } from './records.ts';

export const SNAPSHOT_FORMAT = 'switchboard-snapshot';
export const SNAPSHOT_VERSION = 1;

export const SnapshotFile = Type.Object({
  format: Type.Literal(SNAPSHOT_FORMAT),
  version: Type.Literal(SNAPSHOT_VERSION),
  epoch: Type.String({ description: 'Epoch of the store the snapshot was taken from' }),
  rev: Type.Integer({ minimum: 0, description: 'The committed revision the snapshot reflects' }),
  takenAt: Type.String({ description: 'When it was taken (ISO 8601)' }),
  providers: Type.Array(Provider),
  acl: Type.Optional(AclState),
});
export type SnapshotFile = Static<typeof SnapshotFile>;

export function snapshotFile(
  epoch: string,
  rev: number,
  providers: Provider[],
  opts: { takenAt?: Date; acl?: AclState } = {},
): SnapshotFile {
  const file: SnapshotFile = {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    epoch,
    rev,
    takenAt: (opts.takenAt ?? new Date()).toISOString(),
    providers,
  };
  if (opts.acl && opts.acl.version > 0) file.acl = opts.acl;
  return file;
}

/**
 * Parses and checks a snapshot file's text. Throws an Error whose message is one line naming the first entry at
 * fault (e.g. `providers[3] (id 'abc'): /tags must be array`); nothing of a bad file may reach a store.
 */
export function parseSnapshotFile(text: string): SnapshotFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  const v = value as Partial<Record<keyof SnapshotFile, unknown>>;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
  if (v.format !== SNAPSHOT_FORMAT)
    throw new Error(`'format' is not '${SNAPSHOT_FORMAT}': ${JSON.stringify(v.format)}`);
  if (v.version !== SNAPSHOT_VERSION)
    throw new Error(
      `'version' ${JSON.stringify(v.version)} is not supported (this switchboard reads ${SNAPSHOT_VERSION})`,
    );
  if (typeof v.epoch !== 'string' || v.epoch === '') throw new Error(`'epoch' is not a string`);
  if (!Number.isSafeInteger(v.rev) || (v.rev as number) < 0)
    throw new Error(`'rev' is not a revision: ${JSON.stringify(v.rev)}`);
  if (typeof v.takenAt !== 'string') throw new Error(`'takenAt' is not a string`);
  if (!Array.isArray(v.providers)) throw new Error(`'providers' is not an array`);
  const rev = v.rev as number;
  const ids = new Set<string>();
  const addresses = new Set<string>();
  v.providers.forEach((p: unknown, i) => {
    const id = (p as { id?: unknown } | null)?.id;
    const where = `providers[${i}]${typeof id === 'string' ? ` (id '${id}')` : ''}`;
    const problem = providerProblem(p);
    if (problem) throw new Error(`${where}: ${problem}`);
    const provider = p as Provider;
    if (ids.has(provider.id)) throw new Error(`${where}: the id appears twice`);
    ids.add(provider.id);
    const address = addressKey(provider);
    if (addresses.has(address))
      throw new Error(`${where}: another provider has the same service, host, port and protocol`);
    addresses.add(address);
    if (provider.rev > rev) throw new Error(`${where}: /rev ${provider.rev} is past the snapshot's rev ${rev}`);
  });
  if (v.acl !== undefined) aclProblem(v.acl);
  return value as SnapshotFile;
}

/** Throws naming the first problem of a snapshot's ACL state: a bad record, a name twice, an unknown policy. */
function aclProblem(acl: unknown): void {
  if (!aclState.Check(acl)) {
    const [first] = aclState.Errors(acl);
    throw new Error(`acl${first?.instancePath ?? ''}: ${first?.message ?? 'is not a valid ACL state'}`);
  }
  const policies = new Set<string>();
  acl.policies.forEach((p, i) => {
    if (policies.has(p.name)) throw new Error(`acl/policies/${i} (name '${p.name}'): the name appears twice`);
    policies.add(p.name);
  });
  const accessors = new Set<string>();
  acl.tokens.forEach((t, i) => {
    const where = `acl/tokens/${i} (accessor '${t.accessor}')`;
    if (accessors.has(t.accessor)) throw new Error(`${where}: the accessor appears twice`);
    accessors.add(t.accessor);
    const unknown = t.policies.find((name) => !policies.has(name));
    if (unknown !== undefined) throw new Error(`${where}: names policy '${unknown}', which the file does not have`);
  });
}

/**
 * Offline restore of a snapshot file (`switchboard snapshot restore`) into a store no leader is using, for either
 * backend. The file is checked whole before anything is written (one line naming the first bad entry). The
 * restored store gets a NEW epoch and keeps the snapshot's revision: followers that still hold the old epoch drop
 * their copies and take a snapshot, and revisions go on from where the snapshot was taken.
 */
import {
  newEpoch,
  parseSnapshotFile,
  StartupError,
  type Logger,
  type Provider,
  type SnapshotFile,
} from '../bridge/index.ts';
import { ELECTION_DIR } from './election.ts';
import { ACL_DIR, aclKeys, connectEtcd, DEFAULT_MAX_TXN_OPS } from './etcd-store.ts';
import { DEFAULT_STORE_PREFIX } from './store-api.ts';
import { Store } from './store.ts';

export interface Restored {
  /** Where it went: the SQLite file, or `etcd://hosts` + prefix. */
  path: string;
  epoch: string;
  rev: number;
  providers: number;
}

/** Parses a snapshot file's text; a bad file throws a StartupError naming the file and the entry at fault. */
export function readSnapshot(text: string, name: string): SnapshotFile {
  try {
    return parseSnapshotFile(text);
  } catch (err) {
    throw new StartupError(`snapshot ${name}: ${(err as Error).message}`);
  }
}

/**
 * Into the SQLite store of `dataDir` (created if absent). Opening the store takes its lock, so a running leader
 * makes this fail (the store is in use) before anything is written; the replacement is one transaction.
 */
export function restoreSqlite(snapshot: SnapshotFile, dataDir: string, log: Logger): Restored {
  const store = new Store(dataDir, log);
  try {
    const epoch = newEpoch();
    store.replaceAll(epoch, snapshot.rev, snapshot.providers, snapshot.acl);
    log.info({ path: store.path, epoch, rev: snapshot.rev, providers: snapshot.providers.length }, 'snapshot restored');
    return { path: store.path, epoch, rev: snapshot.rev, providers: snapshot.providers.length };
  } finally {
    store.close();
  }
}

/**
 * Into etcd under `prefix` (the key layout of `EtcdStore`). Refused while any election candidate key exists under
 * the prefix: a leader, active or standby, is using the store. Written as: one transaction that deletes the old
 * providers, services, ACL and meta keys; the providers, service revisions and ACL records (`acl/version` among
 * them) in transactions under etcd's op limit; and last `meta/epoch` +
 * `meta/rev`, so a store whose restore was cut short has no epoch (run the restore again).
 */
export async function restoreEtcd(
  snapshot: SnapshotFile,
  url: string,
  log: Logger,
  opts: { prefix?: string; maxTxnOps?: number } = {},
): Promise<Restored> {
  const prefix = opts.prefix ?? DEFAULT_STORE_PREFIX;
  const maxOps = opts.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
  const path = `${url}${prefix}`;
  const client = connectEtcd(url);
  try {
    const ns = client.namespace(prefix);
    let candidates: string[];
    try {
      candidates = await ns.getAll().prefix(ELECTION_DIR).keys();
    } catch (err) {
      throw new StartupError(`store ${path}: etcd unreachable: ${(err as Error).message}`, { cause: err });
    }
    if (candidates.length > 0)
      throw new StartupError(
        `store ${path}: in use by a leader (election key ${prefix}${candidates[0]} exists); stop every leader on this store first`,
      );
    const always = () => ns.if('meta/epoch', 'Version', '>', -1);
    await always()
      .then(
        ns.delete().prefix('providers/'),
        ns.delete().prefix('services/'),
        ns.delete().prefix('meta/'),
        ns.delete().prefix(ACL_DIR),
      )
      .commit();
    const services = new Map<string, number>();
    for (const p of snapshot.providers) services.set(p.service, Math.max(services.get(p.service) ?? 0, p.rev));
    const puts: Array<{ key: string; value: string }> = [
      ...snapshot.providers.map((p: Provider) => ({ key: `providers/${p.id}`, value: JSON.stringify(p) })),
      ...[...services].map(([name, rev]) => ({ key: `services/${name}`, value: String(rev) })),
      ...aclKeys(snapshot.acl),
    ];
    for (let i = 0; i < puts.length; i += maxOps) {
      const chunk = puts.slice(i, i + maxOps);
      await always()
        .then(...chunk.map((op) => ns.put(op.key).value(op.value)))
        .commit();
    }
    const epoch = newEpoch();
    await always()
      .then(ns.put('meta/epoch').value(epoch), ns.put('meta/rev').value(String(snapshot.rev)))
      .commit();
    log.info({ path, epoch, rev: snapshot.rev, providers: snapshot.providers.length }, 'snapshot restored');
    return { path, epoch, rev: snapshot.rev, providers: snapshot.providers.length };
  } finally {
    client.close();
  }
}

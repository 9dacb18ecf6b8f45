/**
 * The durable registry: one SQLite file (WAL). `commit` writes a batch in one transaction and returns only once
 * SQLite has committed it, which is when the leader may acknowledge. synchronous=FULL syncs the WAL on every
 * commit, so an acknowledged write survives SIGKILL of the process and power loss alike; group commit keeps
 * that affordable.
 *
 * The binding is libsql (SQLite behind Node-API, its binary shipped as an npm package): the same build loads on
 * Node 20 and Node 24, where better-sqlite3 12 aborts and 13 does not load on 20.
 */
import Database from 'libsql';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  aclPolicyProblem,
  aclTokenProblem,
  compactProvider,
  EMPTY_ACL_STATE,
  newEpoch,
  parseRecord,
  providerProblem,
  StartupError,
  type AclState,
  type Provider,
  type Logger,
} from '../bridge/index.ts';
import { StoreError, type AclChange } from './store-api.ts';

export const STORE_FILE = 'switchboard.db';

export interface Loaded {
  epoch: string;
  rev: number;
  providers: Provider[];
  /** The last revision that changed each service (removals included) that still has providers. */
  serviceRevs: Map<string, number>;
  /**
   * The highest last-change revision of the services that were emptied (their rows are removed), 0 if none: a
   * service missing from `serviceRevs` changed last at or before it. The registry takes it as the `prev` of
   * such a service's next event, so a follower that missed the removal still sees a gap, after a restart too.
   */
  emptiedRev?: number;
  /** Tokens and policies (version 0 and empty: never bootstrapped). */
  acl: AclState;
}

/** A row or meta value that fails the checks at open; becomes a StartupError naming the file. */
class StoreCheckError extends Error {}

/** A row's JSON body, parsed and checked; `bad` names the row in the error. */
function checkedRow<T>(
  text: string,
  problemOf: (value: unknown) => string | undefined,
  bad: (what: string) => StoreCheckError,
): T {
  try {
    return parseRecord<T>(text, problemOf);
  } catch (err) {
    throw bad((err as Error).message);
  }
}

export class Store {
  readonly path: string;
  readonly #log: Logger;
  readonly #db: Database.Database;
  readonly #put: Database.Statement<[string, string, string]>;
  readonly #delete: Database.Statement<[string]>;
  readonly #setMeta: Database.Statement<[string, string]>;
  readonly #getMeta: Database.Statement<[string]>;
  readonly #setServiceRev: Database.Statement<[string, number]>;
  readonly #deleteService: Database.Statement<[string]>;
  readonly #hasProvider: Database.Statement<[string]>;
  readonly #putPolicy: Database.Statement<[string, string]>;
  readonly #deletePolicy: Database.Statement<[string]>;
  readonly #putToken: Database.Statement<[string, string]>;
  readonly #deleteToken: Database.Statement<[string]>;

  /**
   * What the open read and checked, handed to the first `load()` (the leader's) so a big store is parsed once.
   * Any commit makes it stale.
   */
  #opened: Loaded | undefined;

  /**
   * Opens the store and takes its lock at once (one leader per store from the moment it opens, not from its first
   * write), then reads and checks every row. Throws a {@link StartupError} naming the file (and the row) when the
   * file is not a usable Switchboard store: in use by another process, empty, not SQLite, or holding a record
   * that is not valid. Nothing is written to a store that fails its checks.
   */
  constructor(dataDir: string, log: Logger) {
    this.path = join(dataDir, STORE_FILE);
    this.#log = log;
    const fail = (what: string, cause?: unknown): StartupError =>
      new StartupError(`store ${this.path}: ${what}`, { cause });
    try {
      mkdirSync(dataDir, { recursive: true });
    } catch (err) {
      throw fail(`cannot create its data directory: ${(err as Error).message}`, err);
    }
    let existed = false;
    try {
      const st = statSync(this.path);
      existed = true;
      // SQLite would take an empty file for a new database: a store whose contents were lost must not restart
      // silently as an empty registry (every gateway would then tell every client that everything is gone).
      if (st.isFile() && st.size === 0)
        throw fail('the file is empty (0 bytes), not a Switchboard store; move it away to start a new store');
    } catch (err) {
      if (err instanceof StartupError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fail((err as Error).message, err);
    }
    // timeout: how long to wait for a lock held by another process (milliseconds), then fail with SQLITE_BUSY.
    try {
      this.#db = new Database(this.path, { timeout: 1000 });
    } catch (err) {
      throw fail(`cannot open: ${(err as Error).message}`, err);
    }
    try {
      // Exclusive locking first: the lock is held from the first access until close (or death), and the WAL
      // index lives in this process's memory, so no other process can read or write behind our back.
      this.#db.exec('PRAGMA locking_mode = EXCLUSIVE');
      this.#db.exec('PRAGMA journal_mode = WAL');
      this.#db.exec('PRAGMA synchronous = FULL');
      // One leader per store from the moment it opens: an empty write transaction takes the exclusive lock now
      // (and exclusive locking mode keeps it), so a second leader is refused before either of them writes.
      this.#db.exec('BEGIN EXCLUSIVE');
      this.#db.exec('COMMIT');
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS providers (id TEXT PRIMARY KEY, service TEXT NOT NULL, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS services (name TEXT PRIMARY KEY, rev INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS providers_by_service ON providers (service);
        CREATE TABLE IF NOT EXISTS acl_policies (name TEXT PRIMARY KEY, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS acl_tokens (accessor TEXT PRIMARY KEY, body TEXT NOT NULL);
      `);
      this.#put = this.#db.prepare('INSERT OR REPLACE INTO providers (id, service, body) VALUES (?, ?, ?)');
      this.#delete = this.#db.prepare('DELETE FROM providers WHERE id = ?');
      this.#setMeta = this.#db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
      this.#getMeta = this.#db.prepare('SELECT value FROM meta WHERE key = ?');
      this.#setServiceRev = this.#db.prepare('INSERT OR REPLACE INTO services (name, rev) VALUES (?, ?)');
      this.#deleteService = this.#db.prepare('DELETE FROM services WHERE name = ?');
      this.#hasProvider = this.#db.prepare('SELECT 1 AS one FROM providers WHERE service = ? LIMIT 1');
      this.#putPolicy = this.#db.prepare('INSERT OR REPLACE INTO acl_policies (name, body) VALUES (?, ?)');
      this.#deletePolicy = this.#db.prepare('DELETE FROM acl_policies WHERE name = ?');
      this.#putToken = this.#db.prepare('INSERT OR REPLACE INTO acl_tokens (accessor, body) VALUES (?, ?)');
      this.#deleteToken = this.#db.prepare('DELETE FROM acl_tokens WHERE accessor = ?');
      if (!this.#meta('epoch')) {
        // A new file, or one whose creation was cut short before its first commit. A store with data and no
        // epoch is damaged: its followers could not tell it from another store.
        const rows = (this.#db.prepare('SELECT COUNT(*) AS n FROM providers').get() as { n: number }).n;
        if (existed && (rows > 0 || this.#meta('rev') !== undefined))
          throw new StoreCheckError('has providers but no epoch in its meta table');
        this.#transaction(() => {
          this.#setMeta.run('epoch', newEpoch());
          this.#setMeta.run('rev', '0');
        });
        log.info({ path: this.path }, 'created a new store');
      }
      this.#opened = this.#read();
    } catch (err) {
      // Let go of the file before the error reaches the caller.
      this.#db.close();
      if (err instanceof StoreCheckError) throw fail(err.message);
      const code = (err as { code?: string }).code ?? '';
      const message = (err as Error).message;
      if (code.startsWith('SQLITE_BUSY') || /database is locked/i.test(message))
        throw fail('in use by another process (another leader?): the database is locked', err);
      if (code.startsWith('SQLITE_NOTADB') || /not a database/i.test(message))
        throw fail('not a SQLite database (is this the right file?)', err);
      throw fail(message, err);
    }
  }

  /** Epoch, revision, providers and service revisions, as checked when the store opened. */
  load(): Loaded {
    const opened = this.#opened;
    this.#opened = undefined;
    return opened ?? this.#read();
  }

  /** Reads every row and checks it; throws a StoreCheckError naming the first bad one. */
  #read(): Loaded {
    const epoch = this.#meta('epoch');
    if (!epoch) throw new StoreCheckError('has no epoch in its meta table');
    const revText = this.#meta('rev') ?? '0';
    if (!/^\d{1,15}$/.test(revText)) throw new StoreCheckError(`meta 'rev' is not a revision: '${revText}'`);
    const rev = Number(revText);
    const emptiedText = this.#meta('emptied') ?? '0';
    if (!/^\d{1,15}$/.test(emptiedText) || Number(emptiedText) > rev)
      throw new StoreCheckError(`meta 'emptied' is not a revision up to ${rev}: '${emptiedText}'`);
    // Row by row, each record compacted as it is read: a big store is never held twice (rows and records).
    const rows = this.#db.prepare('SELECT id, service, body FROM providers').iterate() as IterableIterator<{
      id: string;
      service: string;
      body: string;
    }>;
    const providers: Provider[] = [];
    for (const row of rows) {
      const bad = (what: string): StoreCheckError =>
        new StoreCheckError(`provider row '${row.id}' is invalid: ${what}`);
      const p = checkedRow<Provider>(row.body, providerProblem, bad);
      if (p.id !== row.id) throw bad(`its body has id '${p.id}'`);
      if (p.service !== row.service) throw bad(`its body has service '${p.service}', the row '${row.service}'`);
      if (p.rev > rev) throw bad(`/rev ${p.rev} is past the store's revision ${rev}`);
      providers.push(compactProvider(p));
    }
    const services = this.#db.prepare('SELECT name, rev FROM services').all() as Array<{ name: string; rev: unknown }>;
    for (const s of services) {
      if (!Number.isSafeInteger(s.rev) || (s.rev as number) < 0 || (s.rev as number) > rev)
        throw new StoreCheckError(`service row '${s.name}' is invalid: rev '${String(s.rev)}'`);
    }
    return {
      epoch,
      rev,
      providers,
      serviceRevs: new Map(services.map((r) => [r.name, r.rev as number])),
      emptiedRev: Number(emptiedText),
      acl: this.#readAcl(),
    };
  }

  /** The ACL state as stored now, checked like the providers. */
  readAcl(): AclState {
    try {
      return this.#readAcl();
    } catch (err) {
      if (err instanceof StoreCheckError) throw new StartupError(`store ${this.path}: ${err.message}`);
      throw err;
    }
  }

  #readAcl(): AclState {
    const versionText = this.#meta('acl_version') ?? '0';
    if (!/^\d{1,15}$/.test(versionText))
      throw new StoreCheckError(`meta 'acl_version' is not a version: '${versionText}'`);
    const version = Number(versionText);
    const read = <T>(table: string, key: string, check: (v: unknown) => string | undefined, id: (v: T) => string) => {
      const rows = this.#db.prepare(`SELECT ${key} AS k, body FROM ${table}`).all() as Array<{
        k: string;
        body: string;
      }>;
      return rows.map((row) => {
        const bad = (what: string): StoreCheckError =>
          new StoreCheckError(`${table} row '${row.k}' is invalid: ${what}`);
        const body = checkedRow<T>(row.body, check, bad);
        if (id(body) !== row.k) throw bad(`its body names '${id(body)}'`);
        return body;
      });
    };
    const policies = read<AclState['policies'][number]>('acl_policies', 'name', aclPolicyProblem, (p) => p.name);
    const tokens = read<AclState['tokens'][number]>('acl_tokens', 'accessor', aclTokenProblem, (t) => t.accessor);
    if (version === 0 && (policies.length > 0 || tokens.length > 0))
      throw new StoreCheckError(`has ACL records but no ACL version in its meta table`);
    return version === 0 ? EMPTY_ACL_STATE : { version, tokens, policies };
  }

  /**
   * Writes one ACL change in one transaction; throws a StoreError STORE_CONFLICT (nothing written) when the stored
   * version is not the one the change follows.
   */
  commitAcl(change: AclChange): void {
    this.#opened = undefined;
    this.#transaction(() => {
      const stored = Number(this.#meta('acl_version') ?? '0');
      if (stored !== change.version - 1)
        throw new StoreError(
          'STORE_CONFLICT',
          `the stored ACL version is ${stored}; version ${change.version} does not follow it`,
        );
      this.#writeAcl(change);
    });
  }

  #writeAcl(change: AclChange): void {
    for (const name of change.deletePolicies) this.#deletePolicy.run(name);
    for (const p of change.putPolicies) this.#putPolicy.run(p.name, JSON.stringify(p));
    for (const accessor of change.deleteTokens) this.#deleteToken.run(accessor);
    for (const t of change.putTokens) this.#putToken.run(t.accessor, JSON.stringify(t));
    this.#setMeta.run('acl_version', String(change.version));
  }

  /** Writes a batch atomically; throws if SQLite could not commit it. */
  commit(
    rev: number,
    puts: Iterable<Provider>,
    deletes: Iterable<string>,
    services: Iterable<[string, number]> = [],
  ): void {
    this.#opened = undefined;
    this.#transaction(() => {
      for (const id of deletes) this.#delete.run(id);
      for (const p of puts) this.#put.run(p.id, p.service, JSON.stringify(p));
      let emptied = 0;
      for (const [name, serviceRev] of services) {
        // A service whose last provider left (removed, or moved to another service) keeps no row: names of
        // services long gone would pile up forever. One indexed lookup per service the batch touched.
        // Its revision is folded into one meta value: see `Loaded.emptiedRev`.
        if (this.#hasProvider.get(name) === undefined) {
          this.#deleteService.run(name);
          emptied = Math.max(emptied, serviceRev);
        } else this.#setServiceRev.run(name, serviceRev);
      }
      if (emptied > 0) this.#setMeta.run('emptied', String(emptied));
      this.#setMeta.run('rev', String(rev));
    });
  }

  /**
   * Replaces the whole content in one transaction (a snapshot restore): every provider, each service's revision
   * (its newest provider's), the revision, the ACL state (none: the next leader bootstraps a new one), and a new
   * epoch so every follower drops its copy and takes a snapshot.
   */
  replaceAll(epoch: string, rev: number, providers: readonly Provider[], acl: AclState = EMPTY_ACL_STATE): void {
    this.#opened = undefined;
    const services = new Map<string, number>();
    for (const p of providers) services.set(p.service, Math.max(services.get(p.service) ?? 0, p.rev));
    this.#transaction(() => {
      this.#db.exec("DELETE FROM providers; DELETE FROM services; DELETE FROM meta WHERE key = 'emptied'");
      for (const p of providers) this.#put.run(p.id, p.service, JSON.stringify(p));
      for (const [name, serviceRev] of services) this.#setServiceRev.run(name, serviceRev);
      this.#setMeta.run('epoch', epoch);
      this.#setMeta.run('rev', String(rev));
      this.#db.exec("DELETE FROM acl_policies; DELETE FROM acl_tokens; DELETE FROM meta WHERE key = 'acl_version'");
      if (acl.version > 0)
        this.#writeAcl({
          version: acl.version,
          putPolicies: acl.policies,
          deletePolicies: [],
          putTokens: acl.tokens,
          deleteTokens: [],
        });
    });
  }

  /** Idempotent. Leaves the file as SQLite's own last close does (WAL folded in and removed) and unlocked. */
  close(): void {
    if (!this.#db.open) return;
    try {
      // libsql closes the connection only when the last statement prepared on it is garbage-collected, so the
      // exclusive lock would outlive close() and a store reopened in this process would find it locked. Fold
      // the WAL into the file and leave WAL mode (rollback mode holds no lock between transactions), go back to
      // normal locking, and touch the file once: that read lets the lock go now.
      this.#db.exec('PRAGMA journal_mode = DELETE');
      this.#db.exec('PRAGMA locking_mode = NORMAL');
      this.#db.exec('SELECT 1 FROM meta LIMIT 1');
    } catch (err) {
      // Everything committed is in the WAL already; the lock then goes when the process does.
      this.#log.warn({ err, path: this.path }, 'store: could not release the file at close');
    } finally {
      this.#db.close();
    }
  }

  /**
   * Runs `fn` in one transaction: COMMIT returns once SQLite has synced it (synchronous=FULL). On any error the
   * transaction is rolled back, if SQLite has not done so itself, and the original error is thrown.
   */
  #transaction(fn: () => void): void {
    this.#db.exec('BEGIN');
    try {
      fn();
      this.#db.exec('COMMIT');
    } catch (err) {
      try {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      } catch (rollbackErr) {
        this.#log.error({ err: rollbackErr, path: this.path }, 'store: rollback failed');
      }
      throw err;
    }
  }

  #meta(key: string): string | undefined {
    const row = this.#getMeta.get(key) as { value: string } | undefined;
    return row?.value;
  }
}

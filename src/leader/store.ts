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
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { newEpoch, type Provider, type Logger } from '../bridge/index.ts';

export const STORE_FILE = 'switchboard.db';

export interface Loaded {
  epoch: string;
  rev: number;
  providers: Provider[];
  /** The last revision that changed each service (removals included). */
  serviceRevs: Map<string, number>;
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

  constructor(dataDir: string, log: Logger) {
    mkdirSync(dataDir, { recursive: true });
    this.path = join(dataDir, STORE_FILE);
    this.#log = log;
    // timeout: how long to wait for a lock held by another process (milliseconds), then fail with SQLITE_BUSY.
    this.#db = new Database(this.path, { timeout: 1000 });
    try {
      this.#db.exec('PRAGMA journal_mode = WAL');
      this.#db.exec('PRAGMA synchronous = FULL');
      // One leader per store: exclusive locking holds the file lock from the first write until close (or death).
      this.#db.exec('PRAGMA locking_mode = EXCLUSIVE');
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS providers (id TEXT PRIMARY KEY, service TEXT NOT NULL, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS services (name TEXT PRIMARY KEY, rev INTEGER NOT NULL);
      `);
      this.#put = this.#db.prepare('INSERT OR REPLACE INTO providers (id, service, body) VALUES (?, ?, ?)');
      this.#delete = this.#db.prepare('DELETE FROM providers WHERE id = ?');
      this.#setMeta = this.#db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
      this.#getMeta = this.#db.prepare('SELECT value FROM meta WHERE key = ?');
      this.#setServiceRev = this.#db.prepare('INSERT OR REPLACE INTO services (name, rev) VALUES (?, ?)');
      if (!this.#meta('epoch')) {
        this.#transaction(() => {
          this.#setMeta.run('epoch', newEpoch());
          this.#setMeta.run('rev', '0');
        });
        log.info({ path: this.path }, 'created a new store');
      }
    } catch (err) {
      // Locked by another leader, unreadable, …: let go of the file before the error reaches the caller.
      this.#db.close();
      throw err;
    }
  }

  load(): Loaded {
    const epoch = this.#meta('epoch')!;
    const rev = Number(this.#meta('rev') ?? '0');
    const rows = this.#db.prepare('SELECT body FROM providers').all() as Array<{ body: string }>;
    const services = this.#db.prepare('SELECT name, rev FROM services').all() as Array<{ name: string; rev: number }>;
    return {
      epoch,
      rev,
      providers: rows.map((r) => JSON.parse(r.body) as Provider),
      serviceRevs: new Map(services.map((r) => [r.name, r.rev])),
    };
  }

  /** Writes a batch atomically; throws if SQLite could not commit it. */
  commit(
    rev: number,
    puts: Iterable<Provider>,
    deletes: Iterable<string>,
    services: Iterable<[string, number]> = [],
  ): void {
    this.#transaction(() => {
      for (const id of deletes) this.#delete.run(id);
      for (const p of puts) this.#put.run(p.id, p.service, JSON.stringify(p));
      for (const [name, serviceRev] of services) this.#setServiceRev.run(name, serviceRev);
      this.#setMeta.run('rev', String(rev));
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

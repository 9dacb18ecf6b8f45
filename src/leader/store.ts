/**
 * The durable registry: one SQLite file (WAL). `commit` writes a batch in one transaction and returns only once
 * SQLite has committed it, which is when the leader may acknowledge. synchronous=FULL syncs the WAL on every
 * commit, so an acknowledged write survives SIGKILL of the process and power loss alike; group commit keeps
 * that affordable.
 */
import Database from 'better-sqlite3';
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
  readonly #db: Database.Database;
  readonly #put: Database.Statement<[string, string, string]>;
  readonly #delete: Database.Statement<[string]>;
  readonly #setMeta: Database.Statement<[string, string]>;
  readonly #setServiceRev: Database.Statement<[string, number]>;
  readonly #commitBatch: (
    rev: number,
    puts: Iterable<Provider>,
    deletes: Iterable<string>,
    services: Iterable<[string, number]>,
  ) => void;

  constructor(dataDir: string, log: Logger) {
    mkdirSync(dataDir, { recursive: true });
    this.path = join(dataDir, STORE_FILE);
    this.#db = new Database(this.path, { timeout: 1000 });
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    // One leader per store: exclusive locking holds the file lock from the first write until close (or death).
    this.#db.pragma('locking_mode = EXCLUSIVE');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS providers (id TEXT PRIMARY KEY, service TEXT NOT NULL, body TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS services (name TEXT PRIMARY KEY, rev INTEGER NOT NULL);
    `);
    this.#put = this.#db.prepare('INSERT OR REPLACE INTO providers (id, service, body) VALUES (?, ?, ?)');
    this.#delete = this.#db.prepare('DELETE FROM providers WHERE id = ?');
    this.#setMeta = this.#db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    this.#setServiceRev = this.#db.prepare('INSERT OR REPLACE INTO services (name, rev) VALUES (?, ?)');
    this.#commitBatch = this.#db.transaction(
      (rev: number, puts: Iterable<Provider>, deletes: Iterable<string>, services: Iterable<[string, number]>) => {
        for (const id of deletes) this.#delete.run(id);
        for (const p of puts) this.#put.run(p.id, p.service, JSON.stringify(p));
        for (const [name, serviceRev] of services) this.#setServiceRev.run(name, serviceRev);
        this.#setMeta.run('rev', String(rev));
      },
    );
    const epoch = this.#meta('epoch');
    if (!epoch) {
      this.#db.transaction(() => {
        this.#setMeta.run('epoch', newEpoch());
        this.#setMeta.run('rev', '0');
      })();
      log.info({ path: this.path }, 'created a new store');
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
    this.#commitBatch(rev, puts, deletes, services);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #meta(key: string): string | undefined {
    const row = this.#db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }
}

/**
 * `switchboard snapshot save FILE [--gateway URL]`: an online snapshot of a running system, through a gateway's
 * `GET /v1/admin/snapshot` (the leader's committed state at one revision; nothing is stopped).
 *
 * `switchboard snapshot restore FILE --data-dir DIR` (SQLite) or `--store etcd://host:port,... [--store-prefix P]`:
 * offline, into a store no leader is using, under a new epoch. See docs/cli.md.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';

const DEFAULT_GATEWAY = 'http://127.0.0.1:7700';
const DEFAULT_TIMEOUT_MS = 60_000;

export const SNAPSHOT_SUMMARY = 'Save an online snapshot through a gateway, or restore one into a stopped store.';

const HELP = `Usage:
  switchboard snapshot save FILE [--gateway URL] [--token TOKEN] [--timeout MS]
  switchboard snapshot restore FILE --data-dir DIR
  switchboard snapshot restore FILE --store etcd://HOST:PORT[,HOST:PORT...] [--store-prefix /switchboard/]

save     asks a running gateway for the leader's committed state at one revision (GET /v1/admin/snapshot) and
         writes it to FILE (JSON, format switchboard-snapshot). Nothing is stopped.
restore  checks FILE whole, then replaces the content of a store no leader is using (a running leader makes it
         fail) with it, under a new epoch: followers take a fresh snapshot, revisions go on from the file's.

Flags:
  --gateway URL        Gateway to ask (default ${DEFAULT_GATEWAY}) [SWITCHBOARD_GATEWAY]
  --token TOKEN        Access token, sent as Authorization: Bearer [SWITCHBOARD_TOKEN]
  --timeout MS         Request timeout (default ${DEFAULT_TIMEOUT_MS})
  --data-dir DIR       SQLite store directory to restore into [SWITCHBOARD_DATA_DIR]
  --store URL          etcd store to restore into (etcd://host:port,...) [SWITCHBOARD_STORE]
  --store-prefix P     Key prefix of the etcd store (default /switchboard/) [SWITCHBOARD_STORE_PREFIX]
`;

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** Runs `switchboard snapshot ...`; resolves with the exit code (2: usage, 1: failure). */
export async function runSnapshot(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean' },
        gateway: { type: 'string' },
        token: { type: 'string' },
        timeout: { type: 'string' },
        'data-dir': { type: 'string' },
        store: { type: 'string' },
        'store-prefix': { type: 'string' },
      },
    });
  } catch (err) {
    io.err(`switchboard snapshot: ${(err as Error).message} (see switchboard snapshot --help)\n`);
    return 2;
  }
  const v = parsed.values;
  const [action, file, ...extra] = parsed.positionals;
  if (v.help) {
    io.out(HELP);
    return 0;
  }
  if ((action !== 'save' && action !== 'restore') || !file || extra.length > 0) {
    io.err(`switchboard snapshot: say 'save FILE' or 'restore FILE' (see switchboard snapshot --help)\n`);
    return 2;
  }
  try {
    if (action === 'save') {
      const gateway = (v.gateway ?? (process.env.SWITCHBOARD_GATEWAY || DEFAULT_GATEWAY)).replace(/\/+$/, '');
      const timeoutMs = Number(v.timeout ?? DEFAULT_TIMEOUT_MS);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
        io.err(`switchboard snapshot: --timeout must be a positive integer, got '${v.timeout}'\n`);
        return 2;
      }
      const token = v.token ?? process.env.SWITCHBOARD_TOKEN;
      const s = await save(file, gateway, timeoutMs, token || undefined);
      io.out(`switchboard snapshot: saved ${file} (epoch ${s.epoch}, rev ${s.rev}, ${s.providers} providers)\n`);
      return 0;
    }
    const store = v.store ?? (process.env.SWITCHBOARD_STORE || undefined);
    const dataDir = v['data-dir'] ?? (process.env.SWITCHBOARD_DATA_DIR || undefined);
    if ((store === undefined) === (dataDir === undefined)) {
      io.err('switchboard snapshot: restore needs exactly one of --data-dir DIR (SQLite) or --store etcd://...\n');
      return 2;
    }
    const { readSnapshot, restoreEtcd, restoreSqlite } = await import('../leader/snapshot.ts');
    const { createLogger } = await import('../bridge/log.ts');
    const { pino } = await import('pino');
    const log = createLogger({ level: 'warn', destination: pino.destination(2) });
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`snapshot ${file}: ${(err as Error).message}`);
    }
    const snapshot = readSnapshot(text, file);
    let prefix: string | undefined;
    if (store !== undefined) {
      const { parseStoreSpec } = await import('../leader/store-api.ts');
      const spec = parseStoreSpec(store, v['store-prefix'] ?? (process.env.SWITCHBOARD_STORE_PREFIX || undefined));
      if (spec.kind !== 'etcd') throw new Error(`--store must be etcd://host:port,..., got '${store}'`);
      prefix = spec.prefix;
    }
    const r =
      store !== undefined
        ? await restoreEtcd(snapshot, store, log, { prefix })
        : restoreSqlite(snapshot, dataDir!, log);
    io.out(
      `switchboard snapshot: restored ${file} into ${r.path} (new epoch ${r.epoch}, rev ${r.rev}, ${r.providers} providers)\n`,
    );
    return 0;
  } catch (err) {
    io.err(`switchboard snapshot ${action}: ${(err as Error).message}\n`);
    return 1;
  }
}

/** Fetches the snapshot, checks it, and writes it whole or not at all (temporary file, fsync, rename). */
async function save(
  file: string,
  gateway: string,
  timeoutMs: number,
  token: string | undefined,
): Promise<{ epoch: string; rev: number; providers: number }> {
  const { parseSnapshotFile } = await import('../bridge/snapshot-file.ts');
  const url = `${gateway}/v1/admin/snapshot`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new Error(`cannot reach the gateway at ${gateway} (${cause})`);
  }
  const text = await res.text();
  if (res.status !== 200) {
    let message = text.slice(0, 200);
    try {
      const body = JSON.parse(text) as { code?: string; message?: string };
      message = `${body.code ?? ''} ${body.message ?? ''}`.trim();
    } catch {
      /* not JSON: keep the text */
    }
    throw new Error(`${url} answered ${res.status}: ${message}`);
  }
  const snapshot = parseSnapshotFile(text);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return { epoch: snapshot.epoch, rev: snapshot.rev, providers: snapshot.providers.length };
}

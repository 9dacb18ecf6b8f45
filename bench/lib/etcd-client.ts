/**
 * A minimal etcd v3 client over etcd's HTTP/JSON gRPC gateway, for benchmarks only.
 *
 * Why the gateway and not gRPC: it needs no new dependency, and Switchboard's lookups are HTTP/JSON too, so
 * this compares like with like. Checked against etcd 3.4.23 (Debian bookworm): it serves both `/v3/` and
 * `/v3beta/`; we use `/v3/` (3.5+ dropped `/v3beta/`). Facts of its JSON mapping this client relies on:
 * keys and values are base64; int64 fields (revisions, lease IDs, TTLs) come as decimal strings, so lease IDs
 * stay strings here (they exceed 2^53); fields at their zero value are omitted (a PUT event has no `type`, a
 * keep-alive of an expired lease has no `TTL`); streaming calls answer with newline-delimited
 * `{"result": …}` or `{"error": …}` objects.
 */
import { Agent, request, type IncomingMessage } from 'node:http';

/** A key-value pair as returned by {@link EtcdClient.range}, decoded to UTF-8 strings. */
export interface EtcdKeyValue {
  key: string;
  value: string;
  /** Lease the key is attached to, as a decimal string; undefined when none. */
  lease?: string;
  createRevision: number;
  modRevision: number;
  version: number;
}

/** One watch event. */
export interface EtcdWatchEvent {
  type: 'PUT' | 'DELETE';
  key: string;
  /** Empty for DELETE events. */
  value: string;
  modRevision: number;
  /** Revision of the watch response that carried the event. */
  revision: number;
}

/** Handle of a running watch. */
export interface EtcdWatch {
  /** Resolves once etcd confirmed the watch (`created: true`); rejects if the stream fails first. */
  readonly ready: Promise<void>;
  /** Stop watching (aborts the HTTP stream). Idempotent. */
  close(): void;
}

/** Options of {@link EtcdClient}. */
export interface EtcdClientOptions {
  /** Max sockets of the keep-alive agent (default 128, above the benchmarks' concurrency of 64). */
  maxSockets?: number;
  /** Per-request timeout in ms for unary calls (default 10 000). */
  timeoutMs?: number;
}

/** Options of {@link EtcdClient.watch}. */
export interface EtcdWatchOptions {
  /** Watch exactly `key` instead of every key starting with it. */
  exact?: boolean;
  /** Start revision (default: from now on). */
  startRevision?: number;
  /** Called when the stream fails or ends after being created (not called after close()). */
  onError?: (err: Error) => void;
}

/** Error answered by etcd (HTTP status not 2xx, or an `error` object in a stream). */
export class EtcdError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

const b64 = (s: string | Buffer): string => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).toString('base64');
const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');
const num = (s: string | number | undefined): number => (s === undefined ? 0 : Number(s));

/**
 * The `range_end` that makes a range request cover every key starting with `prefix`: the prefix with its
 * last byte incremented, after dropping trailing 0xff bytes (which cannot be incremented). A prefix of only
 * 0xff bytes (or empty) has no upper bound: etcd's convention for that is the single byte `\0`.
 */
export function prefixRangeEnd(prefix: string | Buffer): Buffer {
  const bytes = Buffer.from(typeof prefix === 'string' ? Buffer.from(prefix, 'utf8') : prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = bytes.subarray(0, i + 1);
      end[i] += 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** JSON body of a prefix range request, as sent to `POST /v3/kv/range` (also used to drive autocannon). */
export function prefixRangeBody(prefix: string): string {
  return JSON.stringify({ key: b64(prefix), range_end: prefixRangeEnd(prefix).toString('base64') });
}

/**
 * Splits a byte stream of concatenated JSON objects into whole objects, tracking brace depth outside strings.
 * Does not rely on the gateway's newline delimiter, and copes with objects split across chunks.
 */
export class JsonObjectSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private scanned = 0;

  /** Feed a chunk; returns the complete objects it finished (parsed). */
  push(chunk: string): unknown[] {
    this.buf += chunk;
    const out: unknown[] = [];
    let i = this.scanned;
    for (; i < this.buf.length; i++) {
      const c = this.buf.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c /* \ */) this.escaped = true;
        else if (c === 0x22 /* " */) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b /* { */) {
        if (this.depth++ === 0) this.start = i;
      } else if (c === 0x7d /* } */) {
        if (--this.depth === 0) {
          out.push(JSON.parse(this.buf.slice(this.start, i + 1)));
          this.buf = this.buf.slice(i + 1);
          i = -1;
          this.start = -1;
        }
      }
    }
    // Keep only what an unfinished object needs; drop inter-object whitespace.
    if (this.depth === 0) this.buf = '';
    this.scanned = this.buf.length;
    return out;
  }
}

interface RawKv {
  key?: string;
  value?: string;
  lease?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
}
interface RawHeader {
  revision?: string;
}

/** etcd v3 client over the HTTP/JSON gateway. Unary calls share one keep-alive agent. */
export class EtcdClient {
  /** Base URL, e.g. `http://127.0.0.1:2379`. */
  readonly baseUrl: string;
  private readonly url: URL;
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private readonly watches = new Set<EtcdWatch>();

  /** @param clientUrl etcd client URL (`http://host:port`); only plain http is supported. */
  constructor(clientUrl: string, opts: EtcdClientOptions = {}) {
    this.baseUrl = clientUrl.replace(/\/+$/, '');
    this.url = new URL(this.baseUrl);
    if (this.url.protocol !== 'http:') throw new Error(`only http:// etcd URLs are supported, got ${clientUrl}`);
    // Keep-alive matters: without it every call pays a TCP handshake and the figures measure connect().
    this.agent = new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 128 });
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /**
   * Grant a lease. etcd may grant more than asked: its minimum TTL is 1.5 election timeouts rounded up,
   * so a 1 s request becomes 2 s with default settings.
   * @returns lease id (decimal string) and the TTL actually granted, in seconds.
   */
  async grantLease(ttlSeconds: number): Promise<{ id: string; ttl: number }> {
    const res = (await this.call('/v3/lease/grant', { TTL: ttlSeconds })) as {
      ID?: string;
      TTL?: string;
      error?: string;
    };
    if (!res.ID) throw new EtcdError(`lease grant failed: ${res.error ?? JSON.stringify(res)}`, 200, res);
    return { id: res.ID, ttl: num(res.TTL) };
  }

  /**
   * Refresh a lease once (one message on the keep-alive stream, then end it).
   * @returns the TTL after refresh in seconds; 0 when the lease no longer exists.
   */
  async keepAlive(leaseId: string): Promise<number> {
    const objs = (await this.call('/v3/lease/keepalive', { ID: leaseId }, true)) as Array<{
      result?: { TTL?: string };
      error?: { message?: string };
    }>;
    const first = objs[0];
    if (!first) throw new EtcdError('lease keepalive: empty answer');
    if (first.error)
      throw new EtcdError(`lease keepalive failed: ${first.error.message ?? JSON.stringify(first.error)}`, 200, first);
    return num(first.result?.TTL);
  }

  /** Revoke a lease, deleting every key attached to it. */
  async revokeLease(leaseId: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: leaseId });
  }

  /** Put a key, optionally attached to a lease. @returns the revision of the write. */
  async put(key: string, value: string, leaseId?: string): Promise<{ revision: number }> {
    const body: Record<string, string> = { key: b64(key), value: b64(value) };
    if (leaseId !== undefined) body.lease = leaseId;
    const res = (await this.call('/v3/kv/put', body)) as { header?: RawHeader };
    return { revision: num(res.header?.revision) };
  }

  /** Every key starting with `prefix` (a prefix range: key + computed range_end). */
  async range(prefix: string): Promise<{ kvs: EtcdKeyValue[]; count: number; revision: number }> {
    const res = (await this.call('/v3/kv/range', {
      key: b64(prefix),
      range_end: prefixRangeEnd(prefix).toString('base64'),
    })) as {
      header?: RawHeader;
      kvs?: RawKv[];
      count?: string;
    };
    const kvs = (res.kvs ?? []).map((kv) => ({
      key: unb64(kv.key),
      value: unb64(kv.value),
      lease: kv.lease,
      createRevision: num(kv.create_revision),
      modRevision: num(kv.mod_revision),
      version: num(kv.version),
    }));
    return { kvs, count: num(res.count), revision: num(res.header?.revision) };
  }

  /** Delete one key. @returns how many keys were deleted (0 or 1). */
  async deleteKey(key: string): Promise<number> {
    const res = (await this.call('/v3/kv/deleterange', { key: b64(key) })) as { deleted?: string };
    return num(res.deleted);
  }

  /** Delete every key starting with `prefix` (used to clean up between measurements). @returns count deleted. */
  async deletePrefix(prefix: string): Promise<number> {
    const res = (await this.call('/v3/kv/deleterange', {
      key: b64(prefix),
      range_end: prefixRangeEnd(prefix).toString('base64'),
    })) as { deleted?: string };
    return num(res.deleted);
  }

  /**
   * Watch every key starting with `prefix` (or exactly that key with `exact`) over the streaming
   * `POST /v3/watch`. The request body carries one create_request and ends; etcd keeps the watch until the
   * connection closes. The watch uses its own connection (not the pooled agent) because it is long-lived and
   * is torn down by close().
   */
  watch(prefix: string, onEvent: (ev: EtcdWatchEvent) => void, opts: EtcdWatchOptions = {}): EtcdWatch {
    const create: Record<string, string | number> = { key: b64(prefix) };
    if (!opts.exact) create.range_end = prefixRangeEnd(prefix).toString('base64');
    if (opts.startRevision !== undefined) create.start_revision = opts.startRevision;
    const payload = JSON.stringify({ create_request: create });

    let closed = false;
    let created = false;
    let resolveReady!: () => void;
    let rejectReady!: (err: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    ready.catch(() => undefined); // a caller that never awaits ready must not get an unhandled rejection
    const fail = (err: Error): void => {
      if (closed) return;
      if (!created) rejectReady(err);
      else opts.onError?.(err);
      handle.close();
    };

    const req = request({
      protocol: 'http:',
      hostname: this.url.hostname,
      port: this.url.port,
      path: '/v3/watch',
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    const handle: EtcdWatch = {
      ready,
      close: () => {
        if (closed) return;
        closed = true;
        this.watches.delete(handle);
        if (!created) rejectReady(new Error('watch closed before it was created'));
        req.destroy();
      },
    };
    this.watches.add(handle);
    // Bound the wait for creation so a stuck etcd cannot hang a benchmark.
    const createTimer = setTimeout(() => fail(new Error('watch not created within timeout')), this.timeoutMs);
    ready.then(
      () => clearTimeout(createTimer),
      () => clearTimeout(createTimer),
    );

    req.on('error', (err) => fail(err));
    req.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => fail(new EtcdError(`watch: HTTP ${res.statusCode} ${text}`, res.statusCode)));
        return;
      }
      const splitter = new JsonObjectSplitter();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        let objs: unknown[];
        try {
          objs = splitter.push(chunk);
        } catch (err) {
          fail(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        for (const o of objs) {
          if (closed) return;
          const msg = o as {
            result?: {
              header?: RawHeader;
              created?: boolean;
              canceled?: boolean;
              cancel_reason?: string;
              events?: Array<{ type?: string; kv?: RawKv }>;
            };
            error?: { message?: string };
          };
          if (msg.error) {
            fail(new EtcdError(`watch: ${msg.error.message ?? JSON.stringify(msg.error)}`, 200, msg));
            return;
          }
          const r = msg.result;
          if (!r) continue;
          if (r.created && !created) {
            created = true;
            resolveReady();
          }
          if (r.canceled) {
            fail(new EtcdError(`watch canceled: ${r.cancel_reason ?? 'no reason'}`, 200, msg));
            return;
          }
          const revision = num(r.header?.revision);
          for (const ev of r.events ?? []) {
            onEvent({
              type: ev.type === 'DELETE' ? 'DELETE' : 'PUT', // PUT is the zero value, so it is omitted
              key: unb64(ev.kv?.key),
              value: unb64(ev.kv?.value),
              modRevision: num(ev.kv?.mod_revision),
              revision,
            });
          }
        }
      });
      res.on('end', () => fail(new Error('watch stream ended')));
      res.on('error', (err) => fail(err));
    });
    req.end(payload);
    return handle;
  }

  /** Close every open watch and the keep-alive sockets. */
  close(): void {
    for (const w of [...this.watches]) w.close();
    this.agent.destroy();
  }

  /**
   * POST a JSON body and parse the answer. With `stream`, the answer is a sequence of objects (returned as an
   * array); the call ends when etcd ends the response, which it does once our request body has ended.
   */
  private call(path: string, body: unknown, stream = false): Promise<unknown> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          protocol: 'http:',
          hostname: this.url.hostname,
          port: this.url.port,
          path,
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = stream ? new JsonObjectSplitter().push(text) : text ? JSON.parse(text) : {};
            } catch {
              reject(
                new EtcdError(
                  `${path}: HTTP ${res.statusCode}, unparsable answer: ${text.slice(0, 200)}`,
                  res.statusCode,
                ),
              );
              return;
            }
            if (res.statusCode !== 200) {
              const m = (parsed as { message?: string; error?: string }) ?? {};
              reject(
                new EtcdError(
                  `${path}: HTTP ${res.statusCode} ${m.message ?? m.error ?? text.slice(0, 200)}`,
                  res.statusCode,
                  parsed,
                ),
              );
              return;
            }
            resolve(parsed);
          });
        },
      );
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`${path}: timed out after ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

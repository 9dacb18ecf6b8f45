/**
 * Throughput by `wrk` (Debian's package): a C load generator in its own process, so the client does not eat the
 * measured server's event loop. autocannon inside the bench process understated a Node server 3–4× on this
 * 2-core machine. The Lua scripts here keep every registration new (a counter and a random prefix per thread) and
 * count what they did themselves where one HTTP request is not one operation (batches, lease + put).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface WrkResult {
  /** HTTP requests per second. */
  requestsPerSecond: number;
  requests: number;
  /** Operations per second (a Lua script's own count, e.g. providers registered; requests when it counts none). */
  opsPerSecond: number;
  ops: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
}

/** Installs wrk with apt-get when it is missing (root only); otherwise says how. Returns the reason it cannot run. */
export function ensureWrk(): string | undefined {
  if (spawnSync('wrk', ['--version']).error === undefined) return undefined;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) return 'wrk is not installed: run `sudo apt-get install -y wrk`';
  const res = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'wrk'], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (res.status !== 0 || spawnSync('wrk', ['--version']).error !== undefined)
    return `wrk is not installed and apt-get could not install it: ${(res.stderr ?? '').slice(-300)}`;
  return undefined;
}

/** Operations the server acknowledged: the script's ops less those of the requests answered with an error. */
export function acknowledged(r: WrkResult): number {
  return r.requests > 0 ? r.ops - r.non2xx * (r.ops / r.requests) : 0;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

/** `wrk -t2 -c<connections> -d<seconds>s --latency -s <lua> <url>` and its figures. */
export function runWrk(opts: { url: string; lua: string; seconds: number; connections?: number }): WrkResult {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-wrk-'));
  try {
    const script = join(dir, 'load.lua');
    writeFileSync(script, opts.lua + OPS_REPORT);
    const out = spawnSync(
      'wrk',
      [
        '-t2',
        `-c${opts.connections ?? 64}`,
        `-d${opts.seconds}s`,
        '--timeout',
        '10s',
        '--latency',
        '-s',
        script,
        opts.url,
      ],
      { encoding: 'utf8', timeout: (opts.seconds + 60) * 1000 },
    );
    if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr || out.error?.message}`);
    const text = out.stdout;
    const requests = Number(/(\d+) requests in ([\d.]+)(ms|s|m)/.exec(text)?.[1] ?? NaN);
    const [, secValue, secUnit] = /\d+ requests in ([\d.]+)(ms|s|m)/.exec(text) ?? [];
    const seconds = toMs(secValue ?? 'NaN', secUnit ?? 's') / 1000;
    const pct = (p: string): number => {
      const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)`, 'm').exec(text);
      return m ? toMs(m[1], m[2]) : NaN;
    };
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
    const ops = Number(/^OPS (\d+)/m.exec(text)?.[1] ?? 0) || requests;
    return {
      requestsPerSecond: requests / seconds,
      requests,
      opsPerSecond: ops / seconds,
      ops,
      seconds,
      p50Ms: pct('50'),
      p99Ms: pct('99'),
      non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0),
      socketErrors: socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sums each thread's `ops` (when the script counts them) and prints `OPS <n>` at the end. */
const OPS_REPORT = `
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("ops") or 0) end
  if total > 0 then io.write("OPS " .. total .. "\\n") end
end
`;

const PROVIDER = `'{"service":"wrk","host":"127.0.0.1","port":' .. (n % 60000 + 1) .. ',"protocol":"http"}'`;
const PREFIX = `if prefix == nil then prefix = "wrk-" .. tostring(math.random(1, 1000000000)) end`;

/** Switchboard: one new provider per request, `PUT /v1/providers/:id` (the figure). */
export const SB_REGISTER = `
n = 0
ops = 0
local prefix = nil
request = function()
  ${PREFIX}
  n = n + 1
  ops = ops + 1
  return wrk.format("PUT", "/v1/providers/" .. prefix .. "-" .. n, {["Content-Type"] = "application/json"}, ${PROVIDER})
end
`;

/** Switchboard: `size` new providers per request, `PUT /v1/providers` with an array (batch registration). */
export function sbBatchRegister(size: number): string {
  return `
n = 0
ops = 0
local prefix = nil
request = function()
  ${PREFIX}
  local items = {}
  for i = 1, ${size} do
    n = n + 1
    items[i] = '{"id":"' .. prefix .. "-" .. n .. '",' .. string.sub(${PROVIDER}, 2)
  end
  ops = ops + ${size}
  return wrk.format("PUT", "/v1/providers", {["Content-Type"] = "application/json"}, "[" .. table.concat(items, ",") .. "]")
end
`;
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** etcd: a plain put through its JSON gateway (`POST /v3/kv/put`): durable on the raft log, no liveness. */
export function etcdPut(prefix: string): string {
  return `
n = 0
ops = 0
local prefix = nil
local function b64(s)
  local b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((s:gsub(".", function(x)
    local r, byte = "", x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end
put = function(lease)
  ${PREFIX}
  n = n + 1
  ops = ops + 1
  local body = '{"key":"' .. b64("${prefix}" .. prefix .. "-" .. n) .. '","value":"' .. b64(${PROVIDER}) .. '"'
  if lease then body = body .. ',"lease":"' .. lease .. '"' end
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body .. "}")
end
request = function() return put(nil) end
`;
}

/**
 * etcd: a registration with liveness, as etcd clients do it: a lease grant, then a put attached to that lease
 * (two requests, the second needs the first's answer). Each thread keeps the leases it was granted and spends one
 * per put; `ops` counts puts, i.e. registrations.
 */
export function etcdLeasePut(prefix: string, ttlSeconds = 30): string {
  return (
    etcdPut(prefix) +
    `
local leases = {}
local granting = 0
request = function()
  if #leases > 0 then return put(table.remove(leases)) end
  return wrk.format("POST", "/v3/lease/grant", {["Content-Type"] = "application/json"}, '{"TTL":${ttlSeconds}}')
end
response = function(status, headers, body)
  local id = string.match(body, '"ID":"(%d+)"')
  if id then table.insert(leases, id) end
end
`
  );
}

/** etcd: a prefix range through its JSON gateway; `serializable` answers from the member's own copy (no quorum). */
export function etcdRange(prefix: string, rangeEnd: Buffer, serializable: boolean): string {
  const body = JSON.stringify({
    key: b64(prefix),
    range_end: rangeEnd.toString('base64'),
    ...(serializable ? { serializable: true } : {}),
  });
  return `
request = function()
  return wrk.format("POST", "/v3/kv/range", {["Content-Type"] = "application/json"}, '${body}')
end
`;
}

/** A GET of `path`, with `headers` (e.g. a token) on every request. */
export function get(path: string, headers: Record<string, string> = {}): string {
  const table = Object.entries(headers)
    .map(([k, v]) => `[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join(', ');
  return `
request = function() return wrk.format("GET", "${path}", {${table}}) end
`;
}

/** Load from `wrk` (Debian's, its own process: it does not share a core with the bench process's event loop). */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** New providers PUT by wrk: a random prefix per thread and a counter keep every id new. */
export const WRK_SCRIPT = `
local n = 0
local prefix = nil
request = function()
  if prefix == nil then prefix = "wrk-" .. tostring(math.random(1, 1000000000)) end
  n = n + 1
  local body = '{"service":"wrk","host":"127.0.0.1","port":' .. (n % 60000 + 1) .. ',"protocol":"http"}'
  return wrk.format("PUT", "/v1/providers/" .. prefix .. "-" .. n, {["Content-Type"] = "application/json"}, body)
end
`;

/** Requests/s and non-2xx answers of `wrk` (c=64, 10 s, its own process) running `lua` against `url`. */
export function runWrk(url: string, dir: string, lua: string): { perSecond: number; errors: number } {
  const script = join(dir, 'load.lua');
  writeFileSync(script, lua);
  const out = spawnSync('wrk', ['-t2', '-c64', '-d10s', '-s', script, url], { encoding: 'utf8', timeout: 60_000 });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr || out.error?.message}`);
  const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1] ?? NaN);
  const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out.stdout)?.[1] ?? 0);
  return { perSecond, errors };
}

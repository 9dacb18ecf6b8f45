/**
 * The package's own version, read once from package.json (found by walking up from this file, so it works from
 * `src/` under tsx and from `dist/src/` alike). Used by `--version` and the `switchboard_build_info` metric.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function readVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'switchboard' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      /* not here: look one level up */
    }
    dir = dirname(dir);
  }
  return '0.0.0-unknown';
}

export const VERSION: string = readVersion();

/** Labels of `switchboard_build_info` (value 1), as Prometheus exporters conventionally expose their build. */
export function buildInfoLabels(role: string): Record<string, string> {
  return { node: process.version, role, version: VERSION };
}

/**
 * The committed OpenAPI document must be what the code generates (run `npm run openapi` after changing a route),
 * and the error-code table, the document and the code must name the same codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../../src/bridge/index.ts';
import { openapiDocument } from '../../src/gateway/openapi.ts';

test('openapi/openapi.json is up to date with the route schemas', async () => {
  const generated = await openapiDocument();
  const committed = JSON.parse(readFileSync('openapi/openapi.json', 'utf8'));
  assert.deepEqual(committed, generated, 'openapi/openapi.json drifted from the code: run `npm run openapi`');
});

test('every error code of the table is in the document, and the document names no other', async () => {
  const doc = (await openapiDocument()) as {
    'x-error-codes': Record<string, { statusCode: number }>;
    info: { description: string };
  };
  assert.deepEqual(Object.keys(doc['x-error-codes']).sort(), Object.keys(ERROR_CODES).sort());
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    assert.equal(doc['x-error-codes'][code].statusCode, spec.statusCode, code);
    assert.ok(doc.info.description.includes(`\`${code}\``), `${code} missing from the description table`);
  }
});

test('every error code the code throws is in the table', () => {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (p === join('src', 'client')) continue; // the Node client's own errors are not gateway answers
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk('src');
  const used = new Set<string>();
  for (const f of files) {
    for (const m of readFileSync(f, 'utf8').matchAll(/['"]((?:SB|FST)_[A-Z_]+)['"]/g)) used.add(m[1]);
  }
  used.delete('SB_INVALID_CONFIG'); // a start-up error of the process, never an HTTP answer
  for (const code of used) assert.ok(code in ERROR_CODES, `${code} is thrown but not in src/bridge/error-codes.ts`);
});

// Writes openapi/openapi.json from the gateway's route schemas. Run after changing a route: npm run openapi
import { mkdirSync, writeFileSync } from 'node:fs';
import { openapiDocument } from '../src/gateway/openapi.ts';

const doc = await openapiDocument();
mkdirSync('openapi', { recursive: true });
writeFileSync('openapi/openapi.json', JSON.stringify(doc, null, 2) + '\n');
process.stdout.write(`wrote openapi/openapi.json (${Object.keys(doc.paths as object).length} paths)\n`);

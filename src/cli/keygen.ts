/**
 * `switchboard keygen [--out FILE]`: a CURVE key pair for a leader, worker, gateway or feed subscriber. With --out,
 * FILE gets the pair (mode 0600, refused by the roles if others may read it) and FILE.pub the public key, which is
 * also printed; nothing is overwritten. Without --out the pair is printed (redirect it under `umask 077`).
 */
import { basename } from 'node:path';
import { generateKeyPair, writeKeyPair } from '../bridge/curve.ts';
import { helpText, parseFlags, UsageError } from './flags.ts';

export const KEYGEN_SUMMARY =
  'Make a CURVE key pair: switchboard keygen --out leader.key (writes leader.key and leader.key.pub)';

export function runKeygen(argv: string[], io: { out(text: string): void; err(text: string): void }): number {
  let parsed;
  try {
    parsed = parseFlags(argv, ['keyOut']);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`switchboard keygen: ${err.message} (see switchboard keygen --help)\n`);
    return 2;
  }
  if (parsed.help) {
    io.out(helpText('keygen', KEYGEN_SUMMARY, ['keyOut']));
    return 0;
  }
  const pair = generateKeyPair();
  const out = parsed.values.keyOut;
  if (typeof out !== 'string') {
    io.out(JSON.stringify(pair) + '\n');
    io.err(`public key: ${pair.publicKey}\n`);
    return 0;
  }
  try {
    writeKeyPair(out, pair, basename(out).replace(/\.key$/, ''));
  } catch (err) {
    io.err(`switchboard keygen: ${(err as Error).message}\n`);
    return 1;
  }
  io.out(`${pair.publicKey}\n`);
  return 0;
}

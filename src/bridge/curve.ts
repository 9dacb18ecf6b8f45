/**
 * CURVE keys for the internal plane and the public feed: key files (`switchboard keygen`), allow lists, and the
 * socket options of a CURVE server or client. Every problem with a file is one `StartupError` line naming the file.
 *
 * Files:
 * - a key pair (`switchboard keygen --out FILE`): JSON `{ "publicKey": "<z85>", "secretKey": "<z85>" }`, mode 0600.
 *   As ssh does, a key pair file that the group or others may read is refused.
 * - public keys (`FILE.pub`, `--curve-allow`, `--curve-server-key FILE`): one z85 key per line, optionally followed
 *   by a label; blank lines and `#` comments are skipped. An allow list may also be a directory of `*.pub` files.
 */
import { curveKeyPair, type Socket, type SocketOptions } from 'zeromq';
import { readdirSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { StartupError } from './errors.ts';

/** A z85 CURVE key: 40 characters for 32 bytes. */
export const Z85_KEY_LENGTH = 40;
const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_INDEX = new Map([...Z85].map((c, i) => [c, i]));

export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

/** What a CURVE client (worker, gateway) needs: its own pair and the server's public key. */
export interface CurveClientKeys extends CurveKeyPair {
  serverKey: string;
}

/** 32 raw bytes (a ZAP request's credentials) → the z85 text used everywhere else. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new Error('z85 encodes multiples of 4 bytes');
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = Z85[value % 85] + chunk;
      value = Math.floor(value / 85);
    }
    out += chunk;
  }
  return out;
}

/** z85 text → bytes (the caller has checked it with `isZ85Key` or equivalent). */
export function z85Decode(text: string): Uint8Array {
  const out = new Uint8Array((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) value = value * 85 + (Z85_INDEX.get(text[i + j]) ?? 0);
    const o = (i / 5) * 4;
    out[o] = (value >>> 24) & 0xff;
    out[o + 1] = (value >>> 16) & 0xff;
    out[o + 2] = (value >>> 8) & 0xff;
    out[o + 3] = value & 0xff;
  }
  return out;
}

/** True for 40 z85 characters that decode to 32 bytes (each 5-character group below 2^32). */
export function isZ85Key(text: string): boolean {
  if (text.length !== Z85_KEY_LENGTH) return false;
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = Z85_INDEX.get(text[i + j]);
      if (digit === undefined) return false;
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) return false;
  }
  return true;
}

/** A fresh key pair from libzmq (`zmq_curve_keypair`). */
export function generateKeyPair(): CurveKeyPair {
  const { publicKey, secretKey } = curveKeyPair();
  return { publicKey, secretKey };
}

function readText(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? String(err));
    throw new StartupError(`cannot read ${flag} ${path}: ${why}`, { cause: err });
  }
}

/**
 * Reads a key pair file. Refuses one the group or others may read (the secret key is the identity: `chmod 600`),
 * one whose keys are not 40 z85 characters, and one whose public key does not belong to its secret key.
 */
export function readKeyPair(flag: string, path: string): CurveKeyPair {
  const text = readText(flag, path);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0)
    throw new StartupError(
      `${flag} ${path} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${path}`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new StartupError(`${flag} ${path} is not a key pair file written by switchboard keygen (not JSON)`);
  }
  const pair = parsed as Partial<CurveKeyPair> | null;
  for (const field of ['publicKey', 'secretKey'] as const) {
    const key = pair?.[field];
    if (typeof key !== 'string' || !isZ85Key(key))
      throw new StartupError(
        `${flag} ${path}: ${field} must be ${Z85_KEY_LENGTH} z85 characters, got ${typeof key === 'string' ? `${key.length}` : 'none'}`,
      );
  }
  const keys = { publicKey: pair!.publicKey!, secretKey: pair!.secretKey! };
  if (publicKeyOf(keys.secretKey) !== keys.publicKey)
    throw new StartupError(`${flag} ${path}: publicKey does not belong to secretKey`);
  return keys;
}

/** The public key of a secret key: CURVE's keys are X25519 keys, so node:crypto derives it as zmq_curve_public does. */
export function publicKeyOf(secretKey: string): string {
  const der = Buffer.concat([X25519_PKCS8_PREFIX, z85Decode(secretKey)]);
  const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
  return z85Encode(Buffer.from(jwk.x!, 'base64url'));
}

/** PKCS#8 header of a raw 32-byte X25519 private key (RFC 8410). */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

export interface PublicKeyEntry {
  key: string;
  /** The text after the key on its line, if any (shown in logs). */
  label?: string;
  /** `file:line`, for messages. */
  source: string;
}

/** Parses public-key lines; a line that is neither a key, blank nor a comment is an error naming file and line. */
export function parsePublicKeys(flag: string, path: string, text: string): PublicKeyEntry[] {
  const entries: PublicKeyEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const [first, ...rest] = line.split(/\s+/);
    // `#` is a z85 character: a line is a key when its first word is one, and a comment otherwise.
    if (isZ85Key(first)) {
      const label = rest.join(' ');
      entries.push({ key: first, ...(label ? { label } : {}), source: `${path}:${i + 1}` });
      return;
    }
    if (line.startsWith('#')) return;
    if (line.startsWith('{'))
      throw new StartupError(`${flag} ${path} is a key pair file; give its public key (${path}.pub) instead`);
    throw new StartupError(
      `${flag} ${path}:${i + 1}: not a CURVE public key (${Z85_KEY_LENGTH} z85 characters; got ${first.length})`,
    );
  });
  return entries;
}

/** An allow list: a file of public keys, or a directory whose `*.pub` files hold public keys (keygen's output). */
export function readAllowList(flag: string, path: string): PublicKeyEntry[] {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new StartupError(`cannot read ${flag} ${path}: no such file or directory`, { cause: err });
  }
  const files = isDir
    ? readdirSync(path)
        .filter((name) => !name.startsWith('.') && name.endsWith('.pub'))
        .sort()
        .map((name) => join(path, name))
        .filter((file) => statSync(file).isFile())
    : [path];
  const entries = files.flatMap((file) => parsePublicKeys(flag, file, readText(flag, file)));
  if (entries.length === 0) throw new StartupError(`${flag} ${path} lists no public key: nobody could connect`);
  return entries;
}

/** `--curve-server-key`: the key itself (40 z85 characters), or a file holding exactly one public key. */
export function readServerKey(flag: string, value: string): string {
  if (isZ85Key(value)) return value;
  const entries = parsePublicKeys(flag, value, readText(flag, value));
  if (entries.length !== 1)
    throw new StartupError(`${flag} ${value} must hold exactly one public key, found ${entries.length}`);
  return entries[0].key;
}

/** Writes `path` (the pair, mode 0600) and `path.pub` (the public key, mode 0644); refuses to overwrite. */
export function writeKeyPair(path: string, pair: CurveKeyPair, label: string): void {
  try {
    writeFileSync(path, JSON.stringify(pair) + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
    writeFileSync(`${path}.pub`, `# switchboard CURVE public key\n${pair.publicKey} ${label}\n`, {
      mode: 0o644,
      flag: 'wx',
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const file = (err as NodeJS.ErrnoException).path ?? path;
    throw new StartupError(
      code === 'EEXIST'
        ? `${file} exists already; not overwriting a key`
        : `cannot write ${file}: ${code ?? String(err)}`,
      { cause: err },
    );
  }
}

/**
 * Options of a CURVE server socket. The ZAP domain routes its handshakes to its own policy (bridge/zap.ts);
 * `zapEnforceDomain` makes libzmq refuse every client when no ZAP handler answers, instead of admitting everyone.
 */
export function curveServerOptions(secretKey: string, zapDomain: string): ServerSocketOptions {
  return { curveServer: true, curveSecretKey: secretKey, zapDomain, zapEnforceDomain: true };
}

/** Options of a CURVE client socket: it completes a handshake only with the holder of `serverKey`'s secret. */
export function curveClientOptions(keys: CurveClientKeys | undefined): SocketOptions<Socket> {
  if (!keys) return {};
  return { curveServerKey: keys.serverKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey };
}

/** Security options of a server socket (CURVE and its ZAP domain), spread into the socket's other options. */
export type ServerSocketOptions = SocketOptions<Socket>;

/** What a server socket applies: its options, and a watch over its handshakes (refusals ZAP never sees). */
export interface ServerSecurity {
  readonly socketOptions: ServerSocketOptions;
  /** Call once, right after creating the socket; the watch ends when the socket closes. */
  watch(socket: Socket): void;
}

/**
 * A worker's or gateway's CURVE client keys from `--curve-secret-key FILE` and `--curve-server-key KEY|FILE`
 * (undefined when neither is given; one without the other is refused).
 */
export function readClientKeys(secretKeyFile?: string, serverKey?: string): CurveClientKeys | undefined {
  if (secretKeyFile === undefined && serverKey === undefined) return undefined;
  if (secretKeyFile === undefined || serverKey === undefined)
    throw new StartupError(
      "--curve-secret-key and --curve-server-key go together (this process's key pair and the leader's public key)",
    );
  return {
    ...readKeyPair('--curve-secret-key', secretKeyFile),
    serverKey: readServerKey('--curve-server-key', serverKey),
  };
}

/**
 * HTTPS for the gateway (REST, SSE and the WebSocket upgrade all ride the one server). With a client CA the
 * gateway asks every client for a certificate and refuses the TLS handshake without one signed by that CA (mTLS).
 * Files are read and checked at start; a problem is one line naming the file.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

export interface TlsFiles {
  cert: string;
  key: string;
  clientCa?: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** mTLS: a client certificate signed by `ca` is required. */
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

function read(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Reads and checks the files; throws one line naming the file at fault. */
export function loadTls(files: TlsFiles): TlsMaterial {
  const cert = read('--tls-cert', files.cert);
  const key = read('--tls-key', files.key);
  const ca = files.clientCa === undefined ? undefined : read('--tls-client-ca', files.clientCa);
  try {
    createSecureContext({ cert });
  } catch (err) {
    throw new Error(`--tls-cert ${files.cert} is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ key });
  } catch (err) {
    throw new Error(`--tls-key ${files.key} is not a PEM private key: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`--tls-key ${files.key} does not match --tls-cert ${files.cert}: ${(err as Error).message}`);
  }
  if (ca !== undefined) {
    try {
      createSecureContext({ ca });
    } catch (err) {
      throw new Error(`--tls-client-ca ${files.clientCa} is not a PEM certificate: ${(err as Error).message}`);
    }
  }
  return {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    requestCert: ca !== undefined,
    rejectUnauthorized: ca !== undefined,
  };
}

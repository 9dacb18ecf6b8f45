/**
 * The gateway over TLS against a real leader: HTTPS REST, SSE and WSS with a throwaway CA made by `openssl` at test
 * time, mTLS refusing a client without a certificate, and start-up errors that name the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createLogger } from '../../src/bridge/index.ts';
import { start as startGateway } from '../../src/gateway/index.ts';
import { start as startLeader } from '../../src/leader/index.ts';
import { tempDir } from '../../harness/tmp.ts';
import { waitFor } from '../../harness/wait.ts';

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA. */
function makePki(dir: string): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string> {
  const f = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  );
  for (const [name, san] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ]) {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
    );
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      writeExt(dir, name, san),
      '-out',
      f(`${name}.pem`),
    );
  }
  return {
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  };
}

function writeExt(dir: string, name: string, line: string): string {
  const path = join(dir, `${name}.ext`);
  execFileSync('sh', ['-c', `printf '%s\\n' "$1" > "$2"`, 'sh', line, path]);
  return path;
}

function get(
  url: string,
  opts: RequestOptions,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('HTTPS, SSE and WSS on one TLS server; mTLS refuses a client without a certificate; bad files are named', async (t) => {
  const dir = tempDir('switchboard-tls-');
  t.after(() => dir.remove());
  const pki = makePki(dir.path);
  const ca = readFileSync(pki.ca);
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'error' });
  const leader = await startLeader({ dataDir: join(dir.path, 'data'), bind: 'tcp://127.0.0.1:*' }, { log });
  t.after(() => leader.close());
  const gateway = await startGateway(
    { leader: leader.control, httpPort: 0, tlsCert: pki.serverCert, tlsKey: pki.serverKey },
    { log },
  );
  t.after(() => gateway.close());
  assert.match(gateway.url, /^https:\/\/127\.0\.0\.1:\d+$/);

  await waitFor(async () => (await get(`${gateway.url}/readyz`, { ca })).status === 200, { what: 'gateway ready' });
  const put = await new Promise<number>((resolve, reject) => {
    const req = request(
      `${gateway.url}/v1/providers/tls-1`,
      { method: 'PUT', ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ service: 'secure', host: '10.0.0.1', port: 443, protocol: 'http' }));
  });
  assert.equal(put, 201);
  const lookup = await get(`${gateway.url}/v1/services/secure`, { ca });
  assert.equal(lookup.status, 200);
  assert.equal(JSON.parse(lookup.body).providers[0].id, 'tls-1');
  // Without the CA the client refuses the server: the certificate is really checked.
  await assert.rejects(get(`${gateway.url}/healthz`, {}), /self-signed|unable to verify|UNABLE_TO_GET_ISSUER/i);

  // WSS: the upgrade rides the TLS server; the first message is the snapshot.
  const ws = new WebSocket(`${gateway.url.replace(/^https/, 'wss')}/v1/watch?service=secure`, { ca });
  const [data] = (await once(ws, 'message')) as [Buffer];
  const snapshot = JSON.parse(data.toString());
  assert.equal(snapshot.type, 'snapshot');
  assert.equal(snapshot.providers[0].id, 'tls-1');
  ws.close();

  // SSE over HTTPS.
  const sse = await new Promise<string>((resolve, reject) => {
    const req = request(`${gateway.url}/v1/events`, { ca }, (res) => {
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (c: string) => {
        text += c;
        if (text.includes('event: hello')) {
          req.destroy();
          resolve(text);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
  assert.match(sse, /event: hello/);

  // mTLS: a second gateway that requires a client certificate signed by the CA.
  const mtls = await startGateway(
    { leader: leader.control, httpPort: 0, tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsClientCa: pki.ca },
    { log },
  );
  t.after(() => mtls.close());
  await assert.rejects(get(`${mtls.url}/healthz`, { ca }), /certificate|socket hang up|ECONNRESET|alert/i);
  const withCert = await get(`${mtls.url}/healthz`, {
    ca,
    cert: readFileSync(pki.clientCert),
    key: readFileSync(pki.clientKey),
  });
  assert.equal(withCert.status, 200);
  const wsNoCert = new WebSocket(`${mtls.url.replace(/^https/, 'wss')}/v1/watch`, { ca });
  const [err] = (await once(wsNoCert, 'error')) as [Error];
  assert.ok(err instanceof Error);

  // Start-up errors: one line naming the file.
  await assert.rejects(
    startGateway({ leader: leader.control, httpPort: 0, tlsCert: join(dir.path, 'nope.pem'), tlsKey: pki.serverKey }),
    (e: Error) => /^cannot read --tls-cert .*nope\.pem: ENOENT$/.test(e.message),
  );
  await assert.rejects(
    startGateway({ leader: leader.control, httpPort: 0, tlsCert: pki.serverCert, tlsKey: pki.clientKey }),
    (e: Error) =>
      e.message.startsWith(`--tls-key ${pki.clientKey} does not match --tls-cert ${pki.serverCert}`) &&
      !e.message.includes('\n'),
  );
  await assert.rejects(
    startGateway({ leader: leader.control, httpPort: 0, tlsCert: pki.serverCert }),
    /tlsCert and tlsKey/,
  );
});

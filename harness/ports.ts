import { createServer } from 'node:net';

/**
 * A TCP port free right now on 127.0.0.1: bind port 0, read the port the kernel chose, close. Racy by nature (the
 * port is free only until someone else binds it): for a process that must come back on the same port after a
 * restart, or a program that cannot bind port 0 itself.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not read a free port'))));
    });
  });
}

/**
 * Control and event endpoints for a leader that must come back where workers and gateways look for it after a
 * restart: both asked for explicitly (the event port would otherwise be bind port + 1, which may be taken).
 */
export async function fixedLeaderEndpoints(): Promise<{ bind: string; publish: string }> {
  return { bind: `tcp://127.0.0.1:${await freePort()}`, publish: `tcp://127.0.0.1:${await freePort()}` };
}

/**
 * A role's own metrics over HTTP (`--metrics-port`, off by default): the worker and the leader have no HTTP API,
 * so without this their documented metrics (worker: checks in flight, tasks; leader: election state, store health)
 * could not be scraped directly.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

export interface MetricsServer {
  /** http://host:port (the bound port when 0 was asked). */
  readonly url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(opts: {
  host: string;
  port: number;
  metrics: Metrics;
  log: Logger;
}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    opts.metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': opts.metrics.contentType }).end(text),
      (err: unknown) => {
        opts.log.error({ err }, 'metrics render failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics render failed\n');
      },
    );
  });
  // A scraper that never finishes its request must not hold a socket forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${host}:${port}`;
  opts.log.info({ url: `${url}/metrics` }, 'metrics listening');
  let closing: Promise<void> | null = null;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** The OpenAPI document, generated from the route schemas of a gateway app that never listens. */
import { createLogger, Follower, Metrics } from '../bridge/index.ts';
import { buildApp } from './app.ts';
import { createContext } from './index.ts';

export async function openapiDocument(): Promise<Record<string, unknown>> {
  const log = createLogger({ level: 'silent' });
  const metrics = new Metrics();
  // Nothing listens there: the follower only exists so the routes can be built.
  const follower = new Follower({ leader: 'tcp://127.0.0.1:1', events: 'tcp://127.0.0.1:1', log, metrics });
  const ctx = createContext(follower, metrics, { writeTimeoutMs: 1000, readYourWritesMs: 0 });
  const app = await buildApp(ctx, { log: false, bodyLimit: 65536 });
  try {
    await app.ready();
    return JSON.parse(JSON.stringify(app.swagger())) as Record<string, unknown>;
  } finally {
    ctx.changes.close();
    await app.close();
    await ctx.leader.close();
    await follower.close();
  }
}

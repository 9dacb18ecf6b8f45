/**
 * What runs beside the HTTP routes for the app's lifetime, started when the app is ready and stopped when it
 * closes: the optional DNS server, and the warning an operator gets while the leader cannot be reached.
 */
import type { FastifyInstance } from 'fastify';
import { createLogger, warnWhileLeaderUnreachable, type Logger } from '../bridge/index.ts';
import type { GatewayContext } from './context.ts';
import { DnsServer } from './dns.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The DNS server's bound `host:port` (UDP and TCP), null while it is off. */
    switchboardDns: { address: string | null };
  }
}

export interface SidecarOptions {
  log: Logger | false;
  /** `host:port` for DNS, or `off`. */
  dns?: string;
  dnsTtlS?: number;
  /** The leader endpoint, named in the unreachable warning. */
  leader?: string;
}

export function attachSidecars(app: FastifyInstance, ctx: GatewayContext, opts: SidecarOptions): void {
  const state: { address: string | null } = { address: null };
  app.decorate('switchboardDns', state);
  let dns: DnsServer | null = null;
  let stopWarning: (() => void) | null = null;
  const log = opts.log;
  app.addHook('onReady', async () => {
    if (log) {
      stopWarning = warnWhileLeaderUnreachable({
        reachable: () => ctx.follower.status().leaderReachable,
        log: log.child({ component: 'gateway' }),
        leader: opts.leader ?? 'the leader',
      });
    }
    if (opts.dns && opts.dns !== 'off') {
      dns = await DnsServer.start({
        address: opts.dns,
        ttlS: opts.dnsTtlS ?? 5,
        replica: ctx.follower.replica,
        log: log || createLogger({ level: 'silent' }),
        metrics: ctx.metrics,
      });
      state.address = dns.address;
      if (log) log.info({ dns: dns.address }, 'DNS listening (UDP and TCP)');
    }
  });
  app.addHook('onClose', async () => {
    stopWarning?.();
    await dns?.close();
    state.address = null;
  });
}

/** The `tcp` check: open a TCP connection to the task's host:port and close it at once; connected is alive. */
import { connect } from 'node:net';
import type { CheckPolicy, Logger, Metrics } from '../bridge/index.ts';
import { PolledRunner, type Limiter, type Probe } from './polled-runner.ts';
import type { ObservationSink } from './runner.ts';
import { guardedLookup, type HostRateLimiter } from './target-guard.ts';

/** With a policy, a name is resolved and vetted in the connect itself (the address vetted is the one dialled). */
export const tcpProbe =
  (policy?: CheckPolicy): Probe =>
  (task, timeoutMs, signal) =>
    new Promise((resolve) => {
      const target = `${task.host}:${task.port}`;
      const host = task.host.replace(/^\[|\]$/g, '');
      const refused = policy?.refusal(host, task.port);
      if (refused) return resolve({ ok: false, output: `refused: ${target} is ${refused}` });
      const socket = connect({
        host,
        port: task.port,
        ...(policy ? { lookup: guardedLookup(policy, task.port) } : {}),
      });
      let done = false;
      const finish = (ok: boolean, output: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve({ ok, output });
      };
      const onAbort = (): void => finish(false, 'check cancelled');
      const timer = setTimeout(
        () => finish(false, `timeout: no TCP connection to ${target} within ${timeoutMs} ms`),
        timeoutMs,
      );
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => finish(true, `connected to ${target}`));
      socket.once('error', (err: NodeJS.ErrnoException) =>
        finish(false, `connect to ${target} failed: ${err.code ?? err.message}`),
      );
    });

export const probeTcp: Probe = tcpProbe();

export function tcpCheckRunner(
  deps: { limiter: Limiter; log: Logger; metrics: Metrics; policy?: CheckPolicy; hostLimiter?: HostRateLimiter },
  emit: ObservationSink,
): PolledRunner {
  const { policy, ...rest } = deps;
  return new PolledRunner({ type: 'tcp', probe: tcpProbe(policy), ...rest }, emit);
}

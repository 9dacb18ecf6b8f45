/** The `tcp` check: open a TCP connection to the task's host:port and close it at once; connected is alive. */
import { connect } from 'node:net';
import type { Logger, Metrics } from '../bridge/index.ts';
import { PolledRunner, type Limiter, type Probe } from './polled-runner.ts';
import type { ObservationSink } from './runner.ts';

export const probeTcp: Probe = (task, timeoutMs, signal) =>
  new Promise((resolve) => {
    const target = `${task.host}:${task.port}`;
    const socket = connect({ host: task.host.replace(/^\[|\]$/g, ''), port: task.port });
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

export function tcpCheckRunner(
  deps: { limiter: Limiter; log: Logger; metrics: Metrics },
  emit: ObservationSink,
): PolledRunner {
  return new PolledRunner({ type: 'tcp', probe: probeTcp, ...deps }, emit);
}

/**
 * The worker: says hello to the leader, watches the tasks it is given, reports transitions at once and its
 * whole presence periodically. While the leader is away it keeps watching; when a leader answers "unknown"
 * (restarted, or a standby that took over) it says hello again with everything it watches and has seen. A
 * connection that comes back after the link was lost (a new leader process) gets that hello at once, without
 * waiting for a ping to be answered "unknown".
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ToWorker as ToWorkerSchema } from '../bridge/index.ts';
import {
  CheckPolicy,
  isLoopbackHost,
  LeaderLink,
  leaderEndpoints,
  MAX_OBSERVATIONS_PER_REPORT,
  MAX_TASKS_PER_WORKER,
  toWorker,
  type CurveClientKeys,
  type Logger,
  type Metrics,
  type Observation,
  type Task,
  type ToWorker,
} from '../bridge/index.ts';
import type { WorkerConfig } from './config.ts';
import type { CheckRunner } from './runner.ts';
import { httpCheckRunner } from './http-check.ts';
import { Limiter } from './polled-runner.ts';
import { tcpCheckRunner } from './tcp-check.ts';
import { TtlRunner } from './ttl-check.ts';
import { ZmqHeartbeatRunner } from './zmq-heartbeats.ts';
import { GuardedRunner, HostRateLimiter } from './target-guard.ts';

export class Worker {
  readonly id: string;
  readonly #config: WorkerConfig;
  readonly #log: Logger;
  readonly #link: LeaderLink<typeof ToWorkerSchema>;
  readonly #runners = new Map<string, CheckRunner>();
  /** task id → its runner, to route removals. */
  readonly #taskRunner = new Map<string, CheckRunner>();
  #pending: Observation[] = [];
  #flushScheduled = false;
  #timers: NodeJS.Timeout[] = [];
  #lastHello = 0;
  #lastContact = 0;
  #session: string | null = null;
  #closed = false;

  constructor(config: WorkerConfig, log: Logger, metrics: Metrics, curve?: CurveClientKeys) {
    this.#config = config;
    this.id = config.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.#log = log.child({ workerId: this.id });
    this.#link = new LeaderLink({
      endpoints: config.leader,
      validator: toWorker,
      name: 'worker-dealer',
      log: this.#log,
      metrics,
      maxMessageSize: 256 * 1024 * 1024,
      curve,
    });
    this.#link.onMessage((m) => this.#onMessage(m));
    this.#link.onConnection((up) => {
      // The first connection carries start()'s hello already; later ones reach a leader that may not know us.
      if (up && !this.#closed && this.#lastHello > 0 && Date.now() - this.#lastHello > this.#config.pingIntervalMs) {
        this.#log.info('leader connection back; saying hello');
        this.#hello();
      }
    });
    const sink = (o: Observation): void => this.#queue(o);
    // Loopback targets are this machine's own business only when every leader is on this machine too (ipc:// and
    // inproc:// leaders are).
    const leadersLocal = leaderEndpoints(config.leader).every((endpoint) => {
      const host = /^tcp:\/\/(.+):[0-9*]+$/.exec(endpoint)?.[1]?.replace(/^\[|\]$/g, '');
      return host === undefined || isLoopbackHost(host);
    });
    const policy = new CheckPolicy({
      allowCidrs: config.checkAllowCidr,
      allowLoopback: config.checkAllowLoopback ?? leadersLocal,
    });
    const guard = (runner: CheckRunner): CheckRunner =>
      new GuardedRunner(runner, { policy, log: this.#log, metrics }, sink);
    this.#runners.set(
      'zmq',
      guard(
        new ZmqHeartbeatRunner(
          {
            endpointsPerSocket: config.endpointsPerSocket,
            zmtpHeartbeatIntervalMs: config.zmtpHeartbeatIntervalMs,
            zmtpHeartbeatTimeoutMs: config.zmtpHeartbeatTimeoutMs,
            log: this.#log,
            metrics,
          },
          sink,
        ),
      ),
    );
    // http and tcp share one bound on probes in flight and one per-host request budget.
    const limiter = new Limiter(config.maxConcurrentChecks);
    const hostLimiter = new HostRateLimiter(config.checkMaxRpsPerHost);
    const polled = { limiter, hostLimiter, policy, log: this.#log, metrics };
    this.#runners.set('http', guard(httpCheckRunner(polled, sink)));
    this.#runners.set('tcp', guard(tcpCheckRunner(polled, sink)));
    this.#runners.set('ttl', new TtlRunner({ log: this.#log, metrics }, sink));
    metrics.gauge('switchboard_checks_in_flight', 'Polled checks running now', () => limiter.running);
    metrics.gauge('switchboard_checks_waiting', 'Polled checks waiting for a free slot', () => limiter.waiting);
    metrics.gauge('switchboard_worker_tasks', 'Tasks this worker watches', () => this.#taskRunner.size);
  }

  /** Adds a runner for another check type (http, tcp, ttl). */
  addRunner(type: string, runner: CheckRunner): void {
    this.#runners.set(type, runner);
  }

  get leaderReachable(): boolean {
    return this.#lastContact > 0 && Date.now() - this.#lastContact < this.#config.pingIntervalMs * 4;
  }

  get taskCount(): number {
    return this.#taskRunner.size;
  }

  start(): void {
    this.#hello();
    this.#timers.push(
      setInterval(() => this.#link.send({ type: 'worker.ping', workerId: this.id }), this.#config.pingIntervalMs),
    );
    this.#timers.push(setInterval(() => this.#fullReport(), this.#config.fullReportIntervalMs));
    this.#log.info({ leader: this.#config.leader }, 'worker started');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    await Promise.all([...this.#runners.values()].map((r) => r.close()));
    await this.#link.close();
    this.#log.info('worker stopped');
  }

  #observations(): Observation[] {
    return [...this.#runners.values()].flatMap((r) => r.observations());
  }

  /**
   * The hello lists every task (the leader keeps what it lists) without check outputs, so it stays within the
   * leader's frame bound; the full report right after it carries the outputs, in slices.
   */
  #hello(): void {
    this.#lastHello = Date.now();
    const all = this.#observations();
    if (all.length > MAX_TASKS_PER_WORKER)
      this.#log.error(
        { tasks: all.length, max: MAX_TASKS_PER_WORKER },
        'more tasks than one hello may list; the rest will be reassigned',
      );
    const observations = all
      .slice(0, MAX_TASKS_PER_WORKER)
      .map(({ id, alive, cause, at }): Observation => ({ id, alive, cause, at }));
    this.#link.send({ type: 'worker.hello', workerId: this.id, observations });
    this.#fullReport();
  }

  /** A presence report per slice of MAX_OBSERVATIONS_PER_REPORT (the leader refuses longer lists). */
  #report(full: boolean, observations: Observation[]): void {
    for (let i = 0; i === 0 || i < observations.length; i += MAX_OBSERVATIONS_PER_REPORT) {
      const slice = observations.slice(i, i + MAX_OBSERVATIONS_PER_REPORT);
      this.#link.send({ type: 'presence', workerId: this.id, full, observations: slice });
    }
  }

  #onMessage(m: ToWorker): void {
    this.#lastContact = Date.now();
    switch (m.type) {
      case 'worker.welcome': {
        if (this.#session !== m.session)
          this.#log.info({ session: m.session, tasks: m.tasks.length }, 'welcomed by leader');
        this.#session = m.session;
        const keep = new Set(m.tasks.map((t) => t.id));
        for (const id of [...this.#taskRunner.keys()]) if (!keep.has(id)) this.#removeTask(id);
        for (const task of m.tasks) this.#addTask(task);
        return;
      }
      case 'tasks.add':
        for (const task of m.tasks) this.#addTask(task);
        return;
      case 'tasks.remove':
        for (const id of m.ids) this.#removeTask(id);
        return;
      case 'worker.pong':
        return;
      case 'worker.unknown':
        // Rate-limited: several pings may be answered "unknown" before our hello arrives.
        if (Date.now() - this.#lastHello > this.#config.pingIntervalMs) {
          this.#log.info({ session: m.session }, 'leader does not know this worker; saying hello');
          this.#hello();
        }
        return;
      case 'ttl.pass': {
        const runner = this.#taskRunner.get(m.id);
        (runner as unknown as { pass?: (id: string, at: number) => void } | undefined)?.pass?.(m.id, m.at);
        return;
      }
    }
  }

  #addTask(task: Task): void {
    const runner = this.#runners.get(task.check.type);
    const current = this.#taskRunner.get(task.id);
    if (current && current !== runner) this.#removeTask(task.id);
    if (!runner) {
      this.#log.warn({ id: task.id, type: task.check.type }, 'no runner for this check type');
      return;
    }
    runner.add(task);
    this.#taskRunner.set(task.id, runner);
  }

  #removeTask(id: string): void {
    this.#taskRunner.get(id)?.remove(id);
    this.#taskRunner.delete(id);
  }

  /** Transitions of one event-loop turn travel in one message. */
  #queue(o: Observation): void {
    this.#pending.push(o);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const observations = this.#pending;
      this.#pending = [];
      if (!this.#closed) this.#report(false, observations);
    });
  }

  #fullReport(): void {
    this.#report(true, this.#observations());
  }
}

/** Handlers of what workers send: hello (with what they watch and saw), pings, presence reports. */
import type { Handlers, LeaderParts } from './handlers.ts';
import { ObservationQueue } from './observation-queue.ts';

export type WorkerMessageType = 'worker.hello' | 'worker.ping' | 'presence';

export function workerHandlers(parts: LeaderParts): Handlers<WorkerMessageType> {
  const { assignment, control, presence, session } = parts;
  // Big reports are decided in slices, so the leader keeps answering while it works through them.
  const observations = new ObservationQueue({
    apply: (workerId, list) => presence.observe(workerId, list),
    closed: () => control.closed,
    metrics: parts.metrics,
    log: parts.log,
  });
  return {
    'worker.hello': (routing, m, now) => {
      const entry = assignment.hello(
        routing,
        m.workerId,
        m.observations.map((o) => o.id),
        now,
      );
      // Observations on tasks it keeps are current truth (a restarted leader learns what happened while it was away).
      observations.push(m.workerId, m.observations, { hello: true, done: () => assignment.welcome(routing, entry) });
    },
    'worker.ping': (routing, m, now) => {
      const known = assignment.touch(m.workerId, routing, now);
      control.reply(routing, known ? { type: 'worker.pong', session } : { type: 'worker.unknown', session });
    },
    presence: (routing, m, now) => {
      if (!assignment.touch(m.workerId, routing, now)) {
        control.reply(routing, { type: 'worker.unknown', session });
        return;
      }
      // A transition report (not the periodic full one) is what a crash detection waits for: no queue ahead of it.
      if (m.full) observations.push(m.workerId, m.observations);
      else observations.pushTransitions(m.workerId, m.observations);
    },
  };
}

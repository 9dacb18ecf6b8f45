import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Default level comes from SWITCHBOARD_LOG_LEVEL so tests and benchmarks can quiet every role at once. */
export function createLogger(options: { name?: string; level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.SWITCHBOARD_LOG_LEVEL ?? 'info';
  return options.destination
    ? pino({ name: options.name ?? 'switchboard', level }, options.destination)
    : pino({ name: options.name ?? 'switchboard', level });
}

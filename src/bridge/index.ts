/** What the roles share. Roles import from here, never from each other. */
export * from './schemas.ts';
export * from './messages.ts';
export * from './codec.ts';
export * from './revision.ts';
export * from './ids.ts';
export * from './host.ts';
export * from './errors.ts';
export * from './log.ts';
export * from './metrics.ts';
export * from './zmq.ts';
export * from './link.ts';
export * from './replica.ts';
export * from './follower.ts';
export * from './config.ts';
export * from './handle.ts';
export * from './error-codes.ts';

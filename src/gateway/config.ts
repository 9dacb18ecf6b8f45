import { Type, type Static } from 'typebox';
import { validateConfig } from '../bridge/index.ts';

export const DEFAULT_HTTP_HOST = '127.0.0.1';
export const DEFAULT_HTTP_PORT = 7700;
export const DEFAULT_WRITE_TIMEOUT_MS = 5000;
export const DEFAULT_BODY_LIMIT = 64 * 1024;
/** How long an acknowledged write waits for the local replica, so the client reads its own write. */
export const DEFAULT_READ_YOUR_WRITES_MS = 1000;

export const GatewayConfigSchema = Type.Object(
  {
    leader: Type.String({ pattern: '^(?:tcp|ipc|inproc)://[^\\s]+$' }),
    /** The leader's event endpoint; learnt from the leader when absent. */
    leaderEvents: Type.Optional(Type.String({ pattern: '^(?:tcp|ipc|inproc)://[^\\s]+$' })),
    httpHost: Type.String({ minLength: 1 }),
    /** 0 picks a free port. */
    httpPort: Type.Integer({ minimum: 0, maximum: 65535 }),
    writeTimeoutMs: Type.Integer({ minimum: 10, maximum: 600_000 }),
    readYourWritesMs: Type.Integer({ minimum: 0, maximum: 60_000 }),
    bodyLimit: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024 }),
    staleAfterMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
  },
  { additionalProperties: false },
);
export type GatewayConfig = Static<typeof GatewayConfigSchema>;
export type GatewayConfigInput = Partial<GatewayConfig>;

export const GATEWAY_DEFAULTS = {
  leader: 'tcp://127.0.0.1:7710',
  httpHost: DEFAULT_HTTP_HOST,
  httpPort: DEFAULT_HTTP_PORT,
  writeTimeoutMs: DEFAULT_WRITE_TIMEOUT_MS,
  readYourWritesMs: DEFAULT_READ_YOUR_WRITES_MS,
  bodyLimit: DEFAULT_BODY_LIMIT,
  staleAfterMs: 2000,
};

export function gatewayConfig(input: GatewayConfigInput): Readonly<GatewayConfig> {
  return validateConfig('gateway', GatewayConfigSchema, GATEWAY_DEFAULTS, input);
}

/**
 * CURVE for the clusters of real processes that tests start (issue 12): the production shape, so on by default;
 * `SWITCHBOARD_TEST_CURVE=0` runs them plain. One key pair per role (leader, worker, gateway), made once per test
 * file with libzmq's keygen (milliseconds) and written into each cluster's directory as `switchboard keygen` writes
 * them. The leader gets its pair and the allow list of the worker and gateway keys; every worker and gateway gets its
 * role's pair and the leader's public key. All leaders of an HA cluster share the leader pair, as docs/ha.md says
 * operators run them: a standby that takes over answers to the key the clients already expect.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SocketOptions, Socket } from 'zeromq';
import { curveClientOptions, generateKeyPair, writeKeyPair, type CurveKeyPair } from '../src/bridge/index.ts';

/** Whether the clusters tests start speak CURVE on the internal plane (`SWITCHBOARD_TEST_CURVE=0`: plain). */
export const TEST_CURVE = process.env.SWITCHBOARD_TEST_CURVE !== '0';

export interface ClusterCurve {
  readonly on: boolean;
  /** Flags of every `switchboard leader`: its pair and the allow list. */
  readonly leaderArgs: string[];
  /** Flags of every `switchboard worker`: its pair and the leader's public key. */
  readonly workerArgs: string[];
  /** Flags of every `switchboard gateway`. */
  readonly gatewayArgs: string[];
  /** The same for a gateway started in the test's own process (`start()` of src/gateway). */
  readonly gatewayConfig: { curveSecretKey?: string; curveServerKey?: string };
  /** Options of a test's own DEALER to the leader: it speaks as a gateway would, so with the gateway pair. */
  readonly probeOptions: SocketOptions<Socket>;
  /**
   * DEALER options of clients the leader must not answer: plain ZeroMQ, and a CURVE key pair of its own that is on
   * no allow list (it knows the leader's public key: public keys are public). Empty without CURVE.
   */
  readonly strangers: Array<{ what: string; options: SocketOptions<Socket> }>;
}

const PLAIN: ClusterCurve = {
  on: false,
  leaderArgs: [],
  workerArgs: [],
  gatewayArgs: [],
  gatewayConfig: {},
  probeOptions: {},
  strangers: [],
};

let pairs: Record<'leader' | 'worker' | 'gateway', CurveKeyPair> | undefined;

/**
 * The keys of one cluster, written under `dir` (`dir/curve/`): `leader.key`, `worker.key`, `gateway.key`, their
 * `.pub` files, and `allow/` (the worker and gateway public keys, a directory as `--curve-allow` takes).
 */
export function clusterCurve(dir: string, on = TEST_CURVE): ClusterCurve {
  if (!on) return PLAIN;
  pairs ??= { leader: generateKeyPair(), worker: generateKeyPair(), gateway: generateKeyPair() };
  const keys = join(dir, 'curve');
  const allow = join(keys, 'allow');
  mkdirSync(allow, { recursive: true });
  for (const [role, pair] of Object.entries(pairs)) writeKeyPair(join(keys, `${role}.key`), pair, role);
  for (const role of ['worker', 'gateway'] as const)
    writeFileSync(join(allow, `${role}.pub`), `${pairs[role].publicKey} ${role}\n`);
  const client = (role: 'worker' | 'gateway') => ({
    curveSecretKey: join(keys, `${role}.key`),
    curveServerKey: join(keys, 'leader.key.pub'),
  });
  const flags = (c: { curveSecretKey: string; curveServerKey: string }) => [
    ...['--curve-secret-key', c.curveSecretKey],
    ...['--curve-server-key', c.curveServerKey],
  ];
  return {
    on: true,
    leaderArgs: ['--curve-secret-key', join(keys, 'leader.key'), '--curve-allow', allow],
    workerArgs: flags(client('worker')),
    gatewayArgs: flags(client('gateway')),
    gatewayConfig: client('gateway'),
    probeOptions: curveClientOptions({ ...pairs.gateway, serverKey: pairs.leader.publicKey }),
    strangers: [
      { what: 'a client without CURVE', options: {} },
      {
        what: 'a client whose key is not listed',
        options: curveClientOptions({ ...generateKeyPair(), serverKey: pairs.leader.publicKey }),
      },
    ],
  };
}

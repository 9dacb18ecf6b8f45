/**
 * A process that holds one etcd key under a lease, for the crash-detection benchmark.
 *
 * Usage: `node --import tsx bench/lib/etcd-lease-holder.ts <clientUrl> <key> <ttlSeconds> [maxLifetimeSeconds]`
 *
 * It grants a lease of the requested TTL, puts `<key>` attached to it, prints `READY <leaseId> <grantedTTL>`
 * on stdout, then refreshes the lease every ttl/3 (of the requested TTL, so it never lapses even when etcd
 * grants more). The benchmark SIGKILLs it and times how long etcd takes to notice: that is the lease expiry,
 * which is the only way etcd learns that a client died.
 *
 * It exits by itself when stdin closes (the parent died) or after maxLifetimeSeconds (default 120), so a
 * crashed benchmark leaves no holder behind.
 */
import { EtcdClient } from './etcd-client.ts';

async function main(): Promise<void> {
  const [clientUrl, key, ttlArg, lifeArg] = process.argv.slice(2);
  const ttl = Number(ttlArg);
  if (!clientUrl || !key || !Number.isInteger(ttl) || ttl < 1) {
    process.stderr.write('usage: etcd-lease-holder.ts <clientUrl> <key> <ttlSeconds> [maxLifetimeSeconds]\n');
    process.exit(2);
  }
  const maxLifetimeMs = (Number(lifeArg) > 0 ? Number(lifeArg) : 120) * 1000;
  const client = new EtcdClient(clientUrl, { maxSockets: 2, timeoutMs: 5_000 });

  const quit = (code: number): void => {
    client.close();
    process.exit(code);
  };
  setTimeout(() => quit(0), maxLifetimeMs).unref();
  process.stdin.on('end', () => quit(0));
  process.stdin.on('error', () => quit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => quit(0));

  const lease = await client.grantLease(ttl);
  await client.put(key, JSON.stringify({ pid: process.pid, at: Date.now() }), lease.id);
  process.stdout.write(`READY ${lease.id} ${lease.ttl}\n`);

  const everyMs = Math.max(100, Math.floor((ttl * 1000) / 3));
  let inFlight = false;
  setInterval(() => {
    if (inFlight) return; // never stack keep-alives if etcd is slow
    inFlight = true;
    client.keepAlive(lease.id).then(
      (left) => {
        inFlight = false;
        if (left <= 0) {
          process.stderr.write(`lease ${lease.id} expired\n`);
          quit(3);
        }
      },
      (err: unknown) => {
        inFlight = false;
        process.stderr.write(`keepalive failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  }, everyMs);
}

main().catch((err: unknown) => {
  process.stderr.write(`etcd-lease-holder: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

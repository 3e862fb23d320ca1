/**
 * A registrar (RFC 3261 §10.3) whose bindings live in Redis, so that several registrar
 * processes behind one domain share them and a restart loses none. Run it with
 *
 *   REDIS_URL=redis://127.0.0.1:6379 SIP_PORT=5060 pnpm exec tsx tools/examples/src/redis-registrar.ts
 *
 * and start a second one on another port against the same Redis: a UA may register
 * through either, and a query through one lists the bindings made through the other.
 */
import { pathToFileURL } from 'node:url';
import { DialogUsageManager } from '@sipworks/dum';
import { SipStack } from '@sipworks/stack';
import { RedisRegistrationPersistence } from '@sipworks/store-redis';
import { UdpTransport } from '@sipworks/transport-udp';

export interface RedisRegistrarOptions {
  /** The Redis every registrar of the deployment uses (`redis://host:port/db`). */
  redisUrl: string;
  /** Key prefix shared by the registrars of one deployment (default `sipworks:`). */
  prefix?: string;
  address?: string;
  /** UDP port (default 5060; 0 picks a free one). */
  port?: number;
}

export interface RedisRegistrar {
  dum: DialogUsageManager;
  bindings: RedisRegistrationPersistence;
  /** The UDP port the registrar listens on. */
  port: number;
  stop(): Promise<void>;
}

export async function startRedisRegistrar(options: RedisRegistrarOptions): Promise<RedisRegistrar> {
  const stack = new SipStack();
  const udp = new UdpTransport({
    address: options.address ?? '127.0.0.1',
    port: options.port ?? 5060,
  });
  await stack.addTransport(udp);
  await stack.start();
  const dum = new DialogUsageManager({ stack });

  // Bindings in Redis, their expiries in the DUM's wall-clock time.
  const bindings = RedisRegistrationPersistence.connect(options.redisUrl, {
    now: () => dum.now(),
    ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
    timeoutMs: 2_000, // a Redis outage is answered 500 with Retry-After, not a silence
  });
  dum.setRegistrationPersistenceManager(bindings);
  dum.masterProfile.set('minRegistrationExpires', 60);
  dum.masterProfile.set('maxRegistrationExpires', 3600);

  // Accept every REGISTER; a real registrar would challenge first (dum.setServerAuthManager).
  dum.setServerRegistrationHandler({
    onAdd: (h) => void h.get().accept(),
    onRefresh: (h) => void h.get().accept(),
    onRemove: (h) => void h.get().accept(),
    onRemoveAll: (h) => void h.get().accept(),
    onQuery: (h) => void h.get().accept(),
  });

  return {
    dum,
    bindings,
    port: udp.local.port,
    async stop() {
      await dum.shutdown({ timeoutMs: 1_000 });
      await stack.stop();
      await bindings.close();
    },
  };
}

// Run as a program: one registrar until SIGINT or SIGTERM.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const registrar = await startRedisRegistrar({
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    address: process.env.SIP_ADDRESS ?? '0.0.0.0',
    port: Number(process.env.SIP_PORT ?? 5060),
  });
  console.log(
    `registrar on udp/${registrar.port}, bindings in ${process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'}`,
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void registrar.stop().then(() => process.exit(0)));
}

/**
 * The Redis registrar example over real UDP on 127.0.0.1: two registrar processes' worth
 * of DUMs share one redis-server (started here on a free port, without persistence).
 * Without redis-server the suite is skipped with a printed reason, except when CI=true,
 * where it fails.
 */
import type { ClientRegistrationHandler } from '@sipworks/dum';
import { DialogUsageManager } from '@sipworks/dum';
import type { SipResponse } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import { RedisServerProcess, redisServerRequirement } from '@sipworks/test-support';
import { UdpTransport } from '@sipworks/transport-udp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisRegistrar, startRedisRegistrar } from '../src/redis-registrar.ts';

const redisServer = redisServerRequirement('examples');

describe.skipIf(redisServer.skip)('example: a registrar on Redis (RFC 3261 §10.3)', () => {
  let server: RedisServerProcess;
  const registrars: RedisRegistrar[] = [];
  const stacks: SipStack[] = [];

  beforeAll(async () => {
    redisServer.assertAvailable();
    server = await RedisServerProcess.start(redisServer.binary);
  });
  afterEach(async () => {
    for (const r of registrars.splice(0)) await r.stop();
    for (const s of stacks.splice(0)) await s.stop();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('§10.2, §10.3: a UA registers through one registrar; a query through the other lists the binding', async () => {
    const prefix = `example-${Date.now()}:`;
    const one = await startRedisRegistrar({ redisUrl: server.url, port: 0, prefix });
    registrars.push(one);
    const two = await startRedisRegistrar({ redisUrl: server.url, port: 0, prefix });
    registrars.push(two);

    const stack = new SipStack();
    stacks.push(stack);
    await stack.addTransport(new UdpTransport({ address: '127.0.0.1', port: 0 }));
    await stack.start();
    const ua = new DialogUsageManager({ stack });
    const ok: SipResponse[] = [];
    const failed: SipResponse[] = [];
    const handler: ClientRegistrationHandler = {
      onSuccess: (_h, r) => ok.push(r),
      onFailure: (_h, r) => failed.push(r),
    };
    ua.setClientRegistrationHandler(handler);
    const viaOne = ua.makeUserProfile({ aor: `<sip:alice@127.0.0.1:${one.port}>` });
    ua.send(ua.makeRegistration(undefined, viaOne, { expires: 600 }));
    const end = Date.now() + 5_000;
    while (ok.length === 0 && failed.length === 0 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 10));
    expect(failed).toEqual([]);
    expect(ok).toHaveLength(1);

    // §10.2.3: a REGISTER without Contact, sent to the second registrar, is a query.
    const viaTwo = ua.makeUserProfile({
      aor: `<sip:alice@127.0.0.1:${one.port}>`,
      outboundProxy: `sip:127.0.0.1:${two.port};lr`,
    });
    const query = ua.makeRegistration(undefined, viaTwo);
    query.removeHeader('Contact');
    query.removeHeader('Expires');
    ua.send(query);
    const end2 = Date.now() + 5_000;
    while (ok.length < 2 && failed.length === 0 && Date.now() < end2)
      await new Promise((r) => setTimeout(r, 10));
    expect(failed).toEqual([]);
    const listed = ok[1]?.contacts ?? [];
    expect(listed).toHaveLength(1);
    expect(listed[0]?.uri.port).toBe(stack.transports[0]?.local.port);
    const stored = await two.bindings.getContacts(`sip:alice@127.0.0.1:${one.port}`);
    expect(stored.map((b) => b.contact.uri.toString())).toEqual([listed[0]?.uri.toString()]);
    await ua.shutdown({ timeoutMs: 1_000 });
  });
});

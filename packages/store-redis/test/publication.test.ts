/**
 * RedisPublicationStore against a real redis-server (started here on 127.0.0.1 and a
 * free port, without persistence): two DUM state agents (RFC 3903 §6) on one memory
 * network share one Redis.
 *
 * Without redis-server the suite is skipped with a printed reason, except when CI=true,
 * where a missing redis-server fails it.
 */

import { redisServerRequirement } from '@sipworks/test-support';
import { describe, expect, it } from 'vitest';
import { RedisPublicationStore, RedisStoreError } from '../src/index.ts';
import { nextFinal, pidf, publishText, RealTimeNet, redisFixture, until } from './support.ts';

const A = 5062;
const B = 5063;
const ALICE = 'sip:alice@example.test';

const redisServer = redisServerRequirement('store-redis');

describe.skipIf(redisServer.skip)('RedisPublicationStore (RFC 3903 §6)', () => {
  const fx = redisFixture<RedisPublicationStore>(redisServer);
  const { stores, nets } = fx;

  function store(
    now: () => number,
    options: { expiredGraceMs?: number; timeoutMs?: number } = {},
  ): RedisPublicationStore {
    const s = RedisPublicationStore.connect(fx.server.url, { now, ...options });
    stores.push(s);
    return s;
  }

  async function agent(
    net: RealTimeNet,
    port: number,
    options: { expiredGraceMs?: number; timeoutMs?: number } = {},
  ) {
    const n = await net.node(port, 'agent');
    const s = store(() => n.dum.now(), options);
    n.dum.setPublicationStore(s);
    n.dum.masterProfile.set('minPublicationExpires', 1);
    const ops: string[] = [];
    n.dum.addServerPublicationHandler('presence', {
      onInitial: (_h, e) => ops.push(`initial ${e}`),
      onRefresh: (_h, e) => ops.push(`refresh ${e}`),
      onUpdate: (_h, e) => ops.push(`update ${e}`),
      onRemoved: (_h, e) => ops.push(`removed ${e}`),
      onExpired: (_h, e) => ops.push(`expired ${e}`),
    });
    return { ...n, store: s, ops };
  }

  async function twoAgents(options: { expiredGraceMs?: number; timeoutMs?: number } = {}) {
    const net = new RealTimeNet();
    nets.push(net);
    const a = await agent(net, A, options);
    const b = await agent(net, B, options);
    const peer = await net.peer(5090);
    const publish = async (o: Parameters<typeof publishText>[0]) => {
      await peer.send(publishText(o), { address: '127.0.0.1', port: o.to });
      return nextFinal(peer);
    };
    return { net, a, b, peer, publish };
  }

  it('§4.1-§4.5, §6: entity tags are shared: publish through A, refresh through B, modify through A, remove through B', async () => {
    const { a, b, publish } = await twoAgents();
    const r1 = await publish({ to: A, branch: 'p1', cseq: 1, expires: 60, body: pidf('here') });
    expect(r1.status).toBe(200);
    const e1 = r1.header('SIP-ETag') as string;
    expect(e1).toMatch(/^[0-9a-f]{32}$/);
    const ttl = await fx.admin.pttl(`sipworks:pub:etag:${e1}`);
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(90_000);

    const r2 = await publish({ to: B, branch: 'p2', cseq: 2, expires: 60, ifMatch: e1 });
    expect(r2.status).toBe(200);
    const e2 = r2.header('SIP-ETag') as string;
    expect(b.ops).toEqual([`refresh ${e1}`]);
    expect(await fx.admin.exists(`sipworks:pub:etag:${e1}`)).toBe(0);
    const [held] = await a.store.find(ALICE, 'presence');
    expect(held?.etag).toBe(e2);
    expect(new TextDecoder().decode(held?.body)).toContain('<note>here</note>');
    expect(held?.contentType).toBe('application/pidf+xml');

    // §6 step 5: the replaced tag matches nothing, on either agent.
    expect((await publish({ to: A, branch: 'p3', cseq: 3, expires: 60, ifMatch: e1 })).status).toBe(
      412,
    );

    const r4 = await publish({
      to: A,
      branch: 'p4',
      cseq: 4,
      expires: 60,
      ifMatch: e2,
      body: pidf('away'),
    });
    expect(r4.status).toBe(200);
    const e3 = r4.header('SIP-ETag') as string;
    expect(a.ops.at(-1)).toBe(`update ${e2}`);
    const [modified] = await b.store.find(ALICE, 'presence');
    expect(new TextDecoder().decode(modified?.body)).toContain('<note>away</note>');

    const r5 = await publish({ to: B, branch: 'p5', cseq: 5, expires: 0, ifMatch: e3 });
    expect(r5.status).toBe(200);
    expect(r5.expires).toBe(0);
    expect(b.ops.at(-1)).toBe(`removed ${e3}`);
    expect(await a.store.find(ALICE, 'presence')).toEqual([]);
    expect(await fx.admin.keys('sipworks:pub:etag:*')).toEqual([]);
  });

  it('§6 step 5: of two agents replacing the same tag at once, one wins and the other gets false (412)', async () => {
    const now = () => Date.now();
    const s1 = store(now);
    const s2 = store(now);
    const base = {
      aor: ALICE,
      event: 'presence',
      body: new TextEncoder().encode(pidf('x')),
      contentType: 'application/pidf+xml',
      expiresAt: now() + 60_000,
    };
    const e0 = s1.newEtag();
    expect(await s1.put({ ...base, etag: e0 })).toBe(true);
    const results = await Promise.all([
      s1.put({ ...base, etag: s1.newEtag() }, e0),
      s2.put({ ...base, etag: s2.newEtag() }, e0),
      s2.put({ ...base, etag: s2.newEtag() }, e0),
    ]);
    expect(results.filter((r) => r)).toHaveLength(1);
    expect(await s2.find(ALICE, 'presence')).toHaveLength(1);
    // An expired state cannot be replaced either.
    const old = s1.newEtag();
    await s1.put({ ...base, etag: old, expiresAt: now() - 1 });
    expect(await s1.get(old)).toBeUndefined();
    expect(await s1.put({ ...base, etag: s1.newEtag() }, old)).toBe(false);
  });

  it('§6: the state expires in Redis; the agent that stored it reports onExpired within the grace', async () => {
    const { a, publish } = await twoAgents({ expiredGraceMs: 1_000 });
    const r = await publish({ to: A, branch: 'x1', cseq: 1, expires: 1, body: pidf('brief') });
    expect(r.status).toBe(200);
    const e1 = r.header('SIP-ETag') as string;
    const ttl = await fx.admin.pttl(`sipworks:pub:etag:${e1}`);
    expect(ttl).toBeGreaterThan(1_000);
    expect(ttl).toBeLessThanOrEqual(2_000);
    await until(() => a.ops.includes(`expired ${e1}`), 3_000, 'onExpired');
    expect(await a.store.get(e1)).toBeUndefined();
    // Nothing is left once the grace has passed too.
    const end = Date.now() + 3_000;
    while ((await fx.admin.dbsize()) > 0 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 50));
    expect(await fx.admin.keys('*')).toEqual([]);
  });

  it('§6: a state agent restart (new DUM, same Redis) keeps the publications; the refresh is taken', async () => {
    const net = new RealTimeNet();
    nets.push(net);
    const first = await agent(net, A);
    const peer = await net.peer(5090);
    await peer.send(
      publishText({ to: A, branch: 'k1', cseq: 1, expires: 600, body: pidf('kept') }),
      {
        address: '127.0.0.1',
        port: A,
      },
    );
    const r1 = await nextFinal(peer);
    expect(r1.status).toBe(200);
    const e1 = r1.header('SIP-ETag') as string;
    await first.dum.shutdown({ timeoutMs: 100 });
    await first.stack.stop();

    const second = await agent(net, A);
    await peer.send(publishText({ to: A, branch: 'k2', cseq: 2, expires: 600, ifMatch: e1 }), {
      address: '127.0.0.1',
      port: A,
    });
    const r2 = await nextFinal(peer);
    expect(r2.status).toBe(200);
    expect(second.ops).toEqual([`refresh ${e1}`]);
    const [s] = await second.store.find(ALICE, 'presence');
    expect(new TextDecoder().decode(s?.body)).toContain('<note>kept</note>');
  });

  it('§6, RFC 3261 §21.5.1: with Redis down a PUBLISH gets 500 with Retry-After within the store timeout', async () => {
    const { a, publish } = await twoAgents({ timeoutMs: 400 });
    a.dum.masterProfile.set('storeFailureRetryAfter', 6);
    const r1 = await publish({ to: A, branch: 'd1', cseq: 1, expires: 60, body: pidf('d') });
    expect(r1.status).toBe(200);
    const e1 = r1.header('SIP-ETag') as string;
    await fx.server.stop();
    const started = Date.now();
    const r2 = await publish({ to: A, branch: 'd2', cseq: 2, expires: 60, ifMatch: e1 });
    expect(r2.status).toBe(500);
    expect(r2.header('Retry-After')).toBe('6');
    const r3 = await publish({ to: A, branch: 'd3', cseq: 3, expires: 60, body: pidf('d') });
    expect(r3.status).toBe(500);
    expect(Date.now() - started).toBeLessThan(3_000);
    await expect(a.store.get(e1)).rejects.toBeInstanceOf(RedisStoreError);
    // The first publication is still held (its state may be in Redis still); the failed
    // initial PUBLISH left no usage behind.
    expect(a.dum.handles.size).toBe(1);
  });
});

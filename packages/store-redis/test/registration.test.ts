/**
 * RedisRegistrationPersistence against a real redis-server, started here on 127.0.0.1
 * and a free port without persistence. Two DUM registrars on one memory network share
 * one Redis, as two registrar processes behind one domain would.
 *
 * Without redis-server the suite is skipped with a printed reason, except when CI=true,
 * where a missing redis-server fails it.
 */

import type { ClientRegistration, ClientRegistrationHandler } from '@sipworks/dum';
import { type Contact, parseHeader, type SipResponse } from '@sipworks/message';
import { redisServerRequirement } from '@sipworks/test-support';
import { describe, expect, it } from 'vitest';
import { RedisRegistrationPersistence, RedisStoreError } from '../src/index.ts';
import { nextFinal, RealTimeNet, redisFixture, registerText, until } from './support.ts';

const A = 5062;
const B = 5063;
const CAROL = 'sip:carol@example.test';

const redisServer = redisServerRequirement('store-redis');

describe.skipIf(redisServer.skip)('RedisRegistrationPersistence (RFC 3261 §10.3)', () => {
  const fx = redisFixture<RedisRegistrationPersistence>(redisServer);
  const { stores, nets } = fx;

  function store(now: () => number, options: { prefix?: string; timeoutMs?: number } = {}) {
    const s = RedisRegistrationPersistence.connect(fx.server.url, { now, ...options });
    stores.push(s);
    return s;
  }

  /** Two registrars (A at 5062, B at 5063) with a store each on the shared Redis. */
  async function twoRegistrars(options: { minExpires?: number; timeoutMs?: number } = {}) {
    const net = new RealTimeNet();
    nets.push(net);
    const make = async (port: number) => {
      const n = await net.node(port, 'registrar');
      const s = store(() => n.dum.now(), {
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      });
      n.dum.setRegistrationPersistenceManager(s);
      n.dum.masterProfile.set('minRegistrationExpires', options.minExpires ?? 60);
      const ops: string[] = [];
      n.dum.setServerRegistrationHandler({
        onAdd: (h) => {
          ops.push('add');
          void h.get().accept();
        },
        onRefresh: (h) => {
          ops.push('refresh');
          void h.get().accept();
        },
        onRemove: (h) => {
          ops.push('remove');
          void h.get().accept();
        },
        onRemoveAll: (h) => {
          ops.push('removeAll');
          void h.get().accept();
        },
        onQuery: (h) => {
          ops.push('query');
          void h.get().accept();
        },
      });
      return { ...n, store: s, ops };
    };
    const a = await make(A);
    const b = await make(B);
    const peer = await net.peer(5090);
    return { net, a, b, peer };
  }

  function recorder(extra?: Partial<ClientRegistrationHandler>) {
    const out = {
      success: [] as SipResponse[],
      removed: [] as SipResponse[],
      failure: [] as SipResponse[],
    };
    const handler: ClientRegistrationHandler = {
      onSuccess: (_h, r) => out.success.push(r),
      onRemoved: (_h, r) => out.removed.push(r),
      onFailure: (_h, r) => out.failure.push(r),
      ...extra,
    };
    return { out, handler };
  }

  it('§10.3: a binding added through one registrar is seen through the other; both 200s list every binding', async () => {
    const { net, a, b } = await twoRegistrars();
    const aor = `sip:alice@127.0.0.1:${A}`;
    // Alice's phone registers through A, her laptop through B (its outbound proxy).
    const phone = await net.node(5061, 'alice', { aorPort: A });
    const laptop = await net.node(5064, 'alice', {
      aorPort: A,
      outboundProxy: `sip:127.0.0.1:${B};lr`,
    });
    const p = recorder();
    const l = recorder();
    phone.dum.setClientRegistrationHandler(p.handler);
    laptop.dum.setClientRegistrationHandler(l.handler);
    phone.dum.send(phone.dum.makeRegistration(undefined, phone.profile, { expires: 600 }));
    await until(() => p.out.success.length > 0);
    const lh = laptop.dum.send<ClientRegistration>(
      laptop.dum.makeRegistration(undefined, laptop.profile, { expires: 300 }),
    );
    await until(() => l.out.success.length > 0);
    expect(a.ops).toEqual(['add']);
    expect(b.ops).toEqual(['add']);
    // B's 200 lists the phone's binding, which only A wrote (§10.3 step 8).
    const ok = l.out.success[0] as SipResponse;
    expect(ok.contacts).toHaveLength(2);
    const byPort = new Map(ok.contacts.map((c) => [c.uri.port, c.expires]));
    expect(byPort.get(5061)).toBeGreaterThan(590);
    expect(byPort.get(5064)).toBeGreaterThan(290);
    expect(lh.get().allContacts).toHaveLength(2);
    expect(lh.get().myContacts).toHaveLength(1);
    const fromA = await a.store.getContacts(aor);
    const fromB = await b.store.getContacts(aor);
    expect(fromA.map((x) => x.contact.uri.toString())).toEqual(
      fromB.map((x) => x.contact.uri.toString()),
    );
    expect(fromA.map((x) => x.contact.uri.port)).toEqual([5061, 5064]);
    expect(await a.store.aors()).toEqual([aor]);

    // §10.2.3: a query through A lists both.
    const q = phone.dum.makeRegistration(undefined, phone.profile);
    q.removeHeader('Contact');
    q.removeHeader('Expires');
    phone.dum.send(q);
    await until(() => p.out.success.length > 1);
    expect(a.ops.at(-1)).toBe('query');
    expect(p.out.success[1]?.contacts).toHaveLength(2);
  });

  it('§10.3 step 7: a refresh through B of a binding written through A; an out-of-order CSeq through B gets 500', async () => {
    const { a, b, peer } = await twoRegistrars();
    const contact = '<sip:carol@192.0.2.5>';
    await peer.send(
      registerText({ to: A, callId: 'r1', cseq: 5, contact, expires: 600, branch: 'r1' }),
      {
        address: '127.0.0.1',
        port: A,
      },
    );
    expect((await nextFinal(peer)).status).toBe(200);
    await peer.send(
      registerText({ to: B, callId: 'r1', cseq: 6, contact, expires: 900, branch: 'r2' }),
      {
        address: '127.0.0.1',
        port: B,
      },
    );
    const refreshed = await nextFinal(peer);
    expect(refreshed.status).toBe(200);
    expect(b.ops).toEqual(['refresh']);
    expect((refreshed.contacts[0] as Contact).expires).toBeGreaterThan(890);
    // The CSeq that B stored is the one A checks against, and the other way round.
    await peer.send(
      registerText({ to: A, callId: 'r1', cseq: 6, contact, expires: 0, branch: 'r3' }),
      {
        address: '127.0.0.1',
        port: A,
      },
    );
    expect((await nextFinal(peer)).status).toBe(500);
    const [binding] = await a.store.getContacts(CAROL);
    expect([binding?.callId, binding?.cseq]).toEqual(['r1', 6]);
  });

  it('§10.2.2: a removal through B of a binding added through A, and Contact: * through A', async () => {
    const { a, b, peer } = await twoRegistrars();
    const send = (to: number, o: Parameters<typeof registerText>[0]) =>
      peer.send(registerText(o), { address: '127.0.0.1', port: to });
    await send(A, {
      to: A,
      callId: 'x1',
      cseq: 1,
      contact: '<sip:carol@192.0.2.5>',
      expires: 600,
      branch: 'x1',
    });
    expect((await nextFinal(peer)).status).toBe(200);
    await send(B, {
      to: B,
      callId: 'x2',
      cseq: 1,
      contact: '<sip:carol@192.0.2.6>',
      expires: 600,
      branch: 'x2',
    });
    expect((await nextFinal(peer)).status).toBe(200);
    await send(A, {
      to: A,
      callId: 'x3',
      cseq: 1,
      contact: '<sip:carol@192.0.2.7>',
      expires: 600,
      branch: 'x3',
    });
    expect((await nextFinal(peer)).status).toBe(200);
    expect(await b.store.getContacts(CAROL)).toHaveLength(3);

    await send(B, {
      to: B,
      callId: 'x1',
      cseq: 2,
      contact: '<sip:carol@192.0.2.5>',
      expires: 0,
      branch: 'x4',
    });
    const removed = await nextFinal(peer);
    expect(removed.status).toBe(200);
    expect(b.ops.at(-1)).toBe('remove');
    expect(removed.contacts.map((c) => c.uri.host)).toEqual(['192.0.2.6', '192.0.2.7']);
    expect((await a.store.getContacts(CAROL)).map((x) => x.contact.uri.host)).toEqual([
      '192.0.2.6',
      '192.0.2.7',
    ]);

    await send(A, { to: A, callId: 'x9', cseq: 1, contact: '*', expires: 0, branch: 'x5' });
    const all = await nextFinal(peer);
    expect(all.status).toBe(200);
    expect(a.ops.at(-1)).toBe('removeAll');
    expect(all.contacts).toHaveLength(0);
    expect(await b.store.getContacts(CAROL)).toEqual([]);
    expect(await b.store.aors()).toEqual([]);
    // Nothing is left behind in Redis.
    expect(await fx.admin.keys('*')).toEqual([]);
  });

  it('§10.3: bindings expire in Redis itself: the AOR keys carry a PEXPIRE, and Redis deletes them', async () => {
    const { a, peer } = await twoRegistrars({ minExpires: 1 });
    await peer.send(
      registerText({
        to: A,
        callId: 'e1',
        cseq: 1,
        contact: '<sip:carol@192.0.2.5>',
        expires: 1,
        branch: 'e1',
      }),
      { address: '127.0.0.1', port: A },
    );
    expect((await nextFinal(peer)).status).toBe(200);
    const keys = (await fx.admin.keys('*')).sort();
    expect(keys).toEqual([
      `sipworks:reg:aors`,
      `sipworks:reg:{${CAROL}}:bindings`,
      `sipworks:reg:{${CAROL}}:expiries`,
    ]);
    for (const k of keys.filter((k) => k.includes('{'))) {
      const ttl = await fx.admin.pttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1000);
    }
    // No read, no sweep: Redis drops the keys on its own (bounded real-time wait).
    const end = Date.now() + 3_000;
    while ((await fx.admin.exists(`sipworks:reg:{${CAROL}}:bindings`)) === 1 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 50));
    expect(
      await fx.admin.exists(`sipworks:reg:{${CAROL}}:bindings`, `sipworks:reg:{${CAROL}}:expiries`),
    ).toBe(0);
    expect(await a.store.aors()).toEqual([]);
    expect(await fx.admin.keys('*')).toEqual([]);
  });

  it('§10.3: a short binding beside a long one is dropped on the next access; the keys then live as long as the long one', async () => {
    const { a, b, peer } = await twoRegistrars({ minExpires: 1 });
    const send = (o: Parameters<typeof registerText>[0]) =>
      peer.send(registerText(o), { address: '127.0.0.1', port: o.to });
    await send({
      to: A,
      callId: 's1',
      cseq: 1,
      contact: '<sip:carol@192.0.2.5>',
      expires: 1,
      branch: 's1',
    });
    expect((await nextFinal(peer)).status).toBe(200);
    await send({
      to: B,
      callId: 's2',
      cseq: 1,
      contact: '<sip:carol@192.0.2.6>',
      expires: 120,
      branch: 's2',
    });
    expect((await nextFinal(peer)).status).toBe(200);
    expect(await a.store.getContacts(CAROL)).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 1_200));
    const left = await a.store.getContacts(CAROL);
    expect(left.map((x) => x.contact.uri.host)).toEqual(['192.0.2.6']);
    expect(await fx.admin.hkeys(`sipworks:reg:{${CAROL}}:bindings`)).toEqual([
      'sip:carol@192.0.2.6',
    ]);
    expect(await fx.admin.pttl(`sipworks:reg:{${CAROL}}:bindings`)).toBeGreaterThan(100_000);
    expect(await b.store.aors()).toEqual([CAROL]);
  });

  it('§10.3: bindings survive a registrar restart (a new DUM and store on the same Redis)', async () => {
    const net = new RealTimeNet();
    nets.push(net);
    const first = await net.node(A, 'registrar');
    const s1 = store(() => first.dum.now());
    first.dum.setRegistrationPersistenceManager(s1);
    first.dum.setServerRegistrationHandler({});
    const peer = await net.peer(5090);
    await peer.send(
      registerText({
        to: A,
        callId: 'rs1',
        cseq: 3,
        contact: '<sip:carol@192.0.2.5;transport=tcp>;q=0.5;+sip.instance="<urn:uuid:1>";reg-id=1',
        expires: 600,
        branch: 'rs1',
        extra: 'Path: <sip:edge.example.test;lr>\r\n',
      }),
      { address: '127.0.0.1', port: A },
    );
    expect((await nextFinal(peer)).status).toBe(200);
    await first.dum.shutdown({ timeoutMs: 100 });
    await first.stack.stop();
    await s1.close();

    const second = await net.node(A, 'registrar');
    const s2 = store(() => second.dum.now());
    second.dum.setRegistrationPersistenceManager(s2);
    second.dum.setServerRegistrationHandler({});
    await peer.send(registerText({ to: A, callId: 'rs2', cseq: 1, branch: 'rs2' }), {
      address: '127.0.0.1',
      port: A,
    });
    const q = await nextFinal(peer);
    expect(q.status).toBe(200);
    expect(q.header('Contact')).toMatch(/^<sip:carol@192\.0\.2\.5;transport=tcp>;q=0\.5;/);
    const [b] = await s2.getContacts(CAROL);
    expect(b?.contact.uri.toString()).toBe('sip:carol@192.0.2.5;transport=tcp');
    expect(b?.q).toBe(0.5);
    expect(b?.instanceId).toBe('<urn:uuid:1>');
    expect(b?.regId).toBe(1);
    expect(b?.path).toEqual(['<sip:edge.example.test;lr>']);
    expect([b?.callId, b?.cseq]).toEqual(['rs1', 3]);
    // The refresh through the new registrar is ordered against the stored CSeq.
    await peer.send(
      registerText({
        to: A,
        callId: 'rs1',
        cseq: 3,
        contact: '<sip:carol@192.0.2.5;transport=tcp>',
        expires: 600,
        branch: 'rs3',
      }),
      { address: '127.0.0.1', port: A },
    );
    expect((await nextFinal(peer)).status).toBe(500);
  });

  it('§10.3 step 7: a REGISTER with several Contacts is applied by one script, all or none', async () => {
    const { a, peer } = await twoRegistrars();
    const send = (o: Parameters<typeof registerText>[0]) =>
      peer.send(registerText(o), { address: '127.0.0.1', port: o.to });
    const scriptCalls = async () => {
      const info = await fx.admin.info('commandstats');
      let n = 0;
      for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) n += Number(m[1]);
      return n;
    };
    // Warm up: the scripts are loaded once.
    await send({
      to: A,
      callId: 'm0',
      cseq: 1,
      contact: '<sip:carol@192.0.2.1>',
      expires: 600,
      branch: 'm0',
    });
    expect((await nextFinal(peer)).status).toBe(200);
    const before = await scriptCalls();
    await send({
      to: A,
      callId: 'm1',
      cseq: 1,
      contact:
        '<sip:carol@192.0.2.2>, <sip:carol@192.0.2.3>;expires=300, <sip:carol@192.0.2.1>;expires=0',
      expires: 600,
      branch: 'm1',
    });
    const ok = await nextFinal(peer);
    expect(ok.status).toBe(200);
    // One script reads the bindings for the checks, one applies the three changes.
    expect((await scriptCalls()) - before).toBe(2);
    expect(ok.contacts.map((c) => [c.uri.host, c.expires])).toEqual([
      ['192.0.2.2', 600],
      ['192.0.2.3', 300],
    ]);
    const update = await a.store.updateContacts(CAROL, {
      callId: 'm2',
      cseq: 1,
      removeAll: true,
      remove: [],
      put: [
        {
          aor: CAROL,
          contact: parseHeader<Contact>('Contact', '<sip:carol@192.0.2.9>')[0] as Contact,
          expires: a.dum.now() + 60_000,
          callId: 'm2',
          cseq: 1,
        },
      ],
    });
    expect(update.map((b) => b.contact.uri.host)).toEqual(['192.0.2.9']);
    expect(await fx.admin.hkeys(`sipworks:reg:{${CAROL}}:bindings`)).toEqual([
      'sip:carol@192.0.2.9',
    ]);
  });

  it('§10.3 steps 6-7: an update checked against bindings another registrar has since changed is refused whole', async () => {
    const { a, b } = await twoRegistrars();
    const contact = (uri: string) => parseHeader<Contact>('Contact', uri)[0] as Contact;
    const binding = (uri: string, callId: string, cseq: number) => ({
      aor: CAROL,
      contact: contact(uri),
      expires: a.dum.now() + 60_000,
      callId,
      cseq,
    });
    // Registrar B stores CSeq 6 of Call-ID c1 ...
    await b.store.updateContacts(CAROL, {
      callId: 'c1',
      cseq: 6,
      remove: [],
      put: [binding('<sip:carol@192.0.2.5>', 'c1', 6), binding('<sip:carol@192.0.2.6>', 'c1', 6)],
    });
    // ... after registrar A checked CSeq 5 against what it read before: A's write is refused.
    const stale = a.store.updateContacts(CAROL, {
      callId: 'c1',
      cseq: 5,
      remove: ['sip:carol@192.0.2.6'],
      put: [binding('<sip:carol@192.0.2.7>', 'c1', 5)],
    });
    await expect(stale).rejects.toMatchObject({ code: 'SIP_ERR_STORE_REDIS_CSEQ' });
    // Nothing of it was applied: neither the removal nor the addition.
    expect((await a.store.getContacts(CAROL)).map((x) => [x.contact.uri.host, x.cseq])).toEqual([
      ['192.0.2.5', 6],
      ['192.0.2.6', 6],
    ]);
    // Contact: * is checked against every binding (§10.3 step 6).
    await expect(
      a.store.updateContacts(CAROL, {
        callId: 'c1',
        cseq: 6,
        removeAll: true,
        remove: [],
        put: [],
      }),
    ).rejects.toBeInstanceOf(RedisStoreError);
    expect(await a.store.getContacts(CAROL)).toHaveLength(2);
    // A newer CSeq, or another Call-ID, goes through.
    const after = await a.store.updateContacts(CAROL, {
      callId: 'c1',
      cseq: 7,
      removeAll: true,
      remove: [],
      put: [],
    });
    expect(after).toEqual([]);
  });

  it('the key prefix keeps two deployments on one Redis apart', async () => {
    const now = () => Date.now();
    const east = store(now, { prefix: 'east:' });
    const west = store(now, { prefix: 'west:' });
    const c = parseHeader<Contact>('Contact', '<sip:carol@192.0.2.5>')[0] as Contact;
    await east.putContact({
      aor: CAROL,
      contact: c,
      expires: now() + 60_000,
      callId: 'p',
      cseq: 1,
    });
    expect(await east.getContacts(CAROL)).toHaveLength(1);
    expect(await west.getContacts(CAROL)).toEqual([]);
    expect(await west.aors()).toEqual([]);
    expect((await fx.admin.keys('*')).every((k) => k.startsWith('east:'))).toBe(true);
    // A binding whose expiry has passed is a removal.
    await east.putContact({ aor: CAROL, contact: c, expires: now() - 1, callId: 'p', cseq: 2 });
    expect(await east.getContacts(CAROL)).toEqual([]);
    expect(await fx.admin.keys('*')).toEqual([]);
  });

  it('§10.3 step 7, §21.5.1: with Redis down the registrar answers 500 with Retry-After within the store timeout; it recovers when Redis is back', async () => {
    const { a, peer } = await twoRegistrars({ timeoutMs: 500 });
    a.dum.masterProfile.set('storeFailureRetryAfter', 7);
    await peer.send(
      registerText({
        to: A,
        callId: 'd1',
        cseq: 1,
        contact: '<sip:carol@192.0.2.5>',
        expires: 600,
        branch: 'd1',
      }),
      { address: '127.0.0.1', port: A },
    );
    expect((await nextFinal(peer)).status).toBe(200);
    await fx.server.stop();

    const started = Date.now();
    await peer.send(
      registerText({
        to: A,
        callId: 'd1',
        cseq: 2,
        contact: '<sip:carol@192.0.2.5>',
        expires: 600,
        branch: 'd2',
      }),
      { address: '127.0.0.1', port: A },
    );
    const failed = await nextFinal(peer, 5_000);
    expect(failed.status).toBe(500);
    expect(failed.header('Retry-After')).toBe('7');
    expect(Date.now() - started).toBeLessThan(3_000);
    await expect(a.store.getContacts(CAROL)).rejects.toBeInstanceOf(RedisStoreError);

    // Redis comes back (empty: no persistence); the store reconnects, its scripts are loaded again.
    await fx.server.start();
    let status = 0;
    for (let i = 0; i < 20 && status !== 200; i++) {
      await peer.send(
        registerText({
          to: A,
          callId: 'd2',
          cseq: i + 1,
          contact: '<sip:carol@192.0.2.5>',
          expires: 600,
          branch: `d3${i}`,
        }),
        { address: '127.0.0.1', port: A },
      );
      status = (await nextFinal(peer, 5_000)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe(200);
    expect(await a.store.getContacts(CAROL)).toHaveLength(1);
  });

  it('§10.2.1: a DUM client whose registrar lost Redis gets the 500 and its Retry-After through onRequestRetry', async () => {
    const { net, a } = await twoRegistrars({ timeoutMs: 300 });
    a.dum.masterProfile.set('storeFailureRetryAfter', 9);
    const ua = await net.node(5061, 'alice', { aorPort: A });
    const retries: number[] = [];
    const r = recorder({
      onRequestRetry: (_h, after) => {
        retries.push(after);
        return -1;
      },
    });
    ua.dum.setClientRegistrationHandler(r.handler);
    await fx.server.stop();
    const h = ua.dum.send<ClientRegistration>(ua.dum.makeRegistration(undefined, ua.profile));
    await until(() => r.out.failure.length > 0, 5_000, 'onFailure');
    expect(r.out.failure[0]?.status).toBe(500);
    expect(retries).toEqual([9]);
    expect(h.isValid()).toBe(false);
  });
});

import dc from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Contact, parseHeader, type SipRequest, type SipResponse } from '@sipworks/message';
import {
  MemoryNetwork,
  MemoryTransport,
  ScriptedPeer,
  VirtualClock,
} from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type ClientRegistration,
  type ClientRegistrationHandler,
  type Handle,
  InMemoryRegistrationPersistence,
  type RegistrationPersistenceManager,
  type RegistrationUpdate,
  refreshDelaySeconds,
  ServerAuthManager,
  type ServerRegistration,
  SqliteRegistrationPersistence,
} from '../src/index.ts';
import { type Node, node, until } from './support.ts';

const REGISTRAR_PORT = 5062;
const REGISTRAR = { address: '127.0.0.1', port: REGISTRAR_PORT };

/** A client DUM (alice, 5061) and a registrar DUM (5062) on one memory network. */
async function setup(seed = 5) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed });
  const ua = await node(network, clock, 5061, 'alice', REGISTRAR_PORT);
  const registrar = await node(network, clock, REGISTRAR_PORT, 'registrar', REGISTRAR_PORT);
  const served: { op: string; handle: Handle<ServerRegistration> }[] = [];
  registrar.dum.setServerRegistrationHandler({
    onAdd: (h) => served.push({ op: 'add', handle: h }),
    onRefresh: (h) => served.push({ op: 'refresh', handle: h }),
    onRemove: (h) => served.push({ op: 'remove', handle: h }),
    onRemoveAll: (h) => served.push({ op: 'removeAll', handle: h }),
    onQuery: (h) => served.push({ op: 'query', handle: h }),
  });
  // Answer every REGISTER as soon as it is handed over.
  const autoAccept = () => {
    for (const s of served)
      if (s.handle.isValid() && !s.handle.get().isAnswered) void s.handle.get().accept();
  };
  return { clock, network, ua, registrar, served, autoAccept };
}

interface Outcomes {
  success: SipResponse[];
  removed: SipResponse[];
  failure: SipResponse[];
}

function recorder(extra?: Partial<ClientRegistrationHandler>): {
  handler: ClientRegistrationHandler;
  out: Outcomes;
} {
  const out: Outcomes = { success: [], removed: [], failure: [] };
  return {
    out,
    handler: {
      onSuccess: (_h, r) => out.success.push(r),
      onRemoved: (_h, r) => out.removed.push(r),
      onFailure: (_h, r) => out.failure.push(r),
      ...extra,
    },
  };
}

/** REGISTER requests a DUM's stack sends (through the transport-send channel). */
function sentRequests(method: string): { list: SipRequest[]; stop: () => void } {
  const list: SipRequest[] = [];
  const listener = (m: unknown) => {
    const e = m as { message: SipRequest | SipResponse };
    if (e.message.isRequest && (e.message as SipRequest).method === method)
      list.push(e.message as SipRequest);
  };
  dc.subscribe('sip:transport:send', listener);
  return { list, stop: () => dc.unsubscribe('sip:transport:send', listener) };
}

function registerText(o: {
  callId: string;
  cseq: number;
  contact?: string;
  expires?: number;
  branch: string;
  extra?: string;
  user?: string;
}): string {
  const user = o.user ?? 'carol';
  return (
    `REGISTER sip:127.0.0.1:${REGISTRAR_PORT} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${o.branch}\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:${user}@127.0.0.1>;tag=f${o.branch}\r\n` +
    `To: <sip:${user}@127.0.0.1>\r\n` +
    `Call-ID: ${o.callId}\r\n` +
    `CSeq: ${o.cseq} REGISTER\r\n` +
    (o.contact !== undefined ? `Contact: ${o.contact}\r\n` : '') +
    (o.expires !== undefined ? `Expires: ${o.expires}\r\n` : '') +
    (o.extra ?? '') +
    'Content-Length: 0\r\n\r\n'
  );
}

async function peerOn(network: MemoryNetwork, clock: VirtualClock): Promise<ScriptedPeer> {
  return new ScriptedPeer(network, clock, { port: 5090 }).start();
}

const consumed = new WeakMap<ScriptedPeer, number>();

/** The next final response the peer received (bounded wait on the virtual clock). */
async function firstFinal(peer: ScriptedPeer): Promise<SipResponse> {
  for (let i = 0; i < 500; i++) {
    const from = consumed.get(peer) ?? 0;
    for (let j = from; j < peer.log.length; j++) {
      const m = peer.log[j]?.message;
      if (m && !m.isRequest && m.status >= 200) {
        consumed.set(peer, j + 1);
        return m;
      }
    }
    peer.clock.advance(10);
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('no final response within 5 s');
}

describe('client registration against a DUM registrar (RFC 3261 §10)', () => {
  it('§10.2, §10.3: REGISTER binds our Contact; the 200 lists every binding with its expires and a Date', async () => {
    const { clock, ua, registrar, autoAccept, served } = await setup();
    const { handler, out } = recorder();
    ua.dum.setClientRegistrationHandler(handler);
    const req = ua.dum.makeRegistration(undefined, ua.profile, { expires: 600 });
    expect(req.uri.toString()).toBe(`sip:127.0.0.1:${REGISTRAR_PORT}`);
    expect(req.to.uri.toString()).toBe(req.from.uri.toString());
    expect(req.expires).toBe(600);
    const h = ua.dum.send<ClientRegistration>(req);
    await until(clock, () => out.success.length > 0, { each: autoAccept });
    expect(served.map((s) => s.op)).toEqual(['add']);
    const res = out.success[0] as SipResponse;
    expect(res.status).toBe(200);
    expect(res.has('Date')).toBe(true);
    expect((res.contacts[0] as Contact).expires).toBe(600);
    const reg = h.get();
    expect(reg.state).toBe('registered');
    expect(reg.expires).toBe(600);
    expect(reg.myContacts).toHaveLength(1);
    expect(reg.allContacts).toHaveLength(1);
    const stored = await registrar.dum.registrationPersistenceManager.getContacts(
      `sip:alice@127.0.0.1:${REGISTRAR_PORT}`,
    );
    expect(stored).toHaveLength(1);
    expect(stored[0]?.callId).toBe(req.callId);
  });

  it('RFC 5626 §4.2.1, RFC 5627 §4.1: +sip.instance with an instance id; reg-id and ;ob only with outbound', async () => {
    const { ua } = await setup();
    ua.profile.set('instanceId', 'urn:uuid:00000000-0000-1000-8000-000A95A0E128');
    const plain = ua.dum.makeRegistration(undefined, ua.profile);
    const p = plain.contacts[0] as Contact;
    expect(p.params.get('+sip.instance')).toBe('<urn:uuid:00000000-0000-1000-8000-000A95A0E128>');
    expect(p.params.has('reg-id')).toBe(false);
    expect(p.uri.params.has('ob')).toBe(false);
    expect(plain.getAll<string>('Supported')).toContain('gruu');
    expect(plain.getAll<string>('Supported')).not.toContain('outbound');
    ua.profile.set('outbound', true);
    const req = ua.dum.makeRegistration(undefined, ua.profile);
    const c = req.contacts[0] as Contact;
    expect(c.params.get('+sip.instance')).toBe('<urn:uuid:00000000-0000-1000-8000-000A95A0E128>');
    expect(c.params.get('reg-id')).toBe('1');
    expect(c.uri.params.has('ob')).toBe(true);
    expect(req.getAll<string>('Supported')).toEqual(
      expect.arrayContaining(['outbound', 'path', 'gruu']),
    );
    expect(req.expires).toBe(3600);
  });

  it('the Request-URI is the outbound proxy when the profile has one', async () => {
    const { ua } = await setup();
    ua.profile.set('outboundProxy', undefined);
    const p = ua.dum.makeUserProfile({
      aor: '<sip:alice@example.test>',
      outboundProxy: 'sip:proxy.example.test:5070;lr',
    });
    const req = ua.dum.makeRegistration(undefined, p);
    expect(req.uri.toString()).toBe('sip:proxy.example.test:5070');
    expect(req.to.uri.toString()).toBe('sip:alice@example.test');
  });

  it(`§10.2.4: the refresh is sent before expiry (at ${refreshDelaySeconds(120)} s of 120 s) with the same Call-ID and CSeq + 1`, async () => {
    const { clock, ua, autoAccept } = await setup();
    const { handler, out } = recorder();
    ua.dum.setClientRegistrationHandler(handler);
    const sent = sentRequests('REGISTER');
    try {
      const start = clock.now();
      ua.dum.send(ua.dum.makeRegistration(undefined, ua.profile, { expires: 120 }));
      await until(clock, () => out.success.length > 0, { each: autoAccept });
      await until(clock, () => out.success.length > 1, {
        each: autoAccept,
        stepMs: 500,
        steps: 400,
      });
      // One per transaction: UDP retransmissions (Timer E) are left out.
      const mine = sent.list.filter(
        (r, i, all) =>
          r.via[0]?.port === 5061 &&
          all.findIndex((x) => x.via[0]?.branch === r.via[0]?.branch) === i,
      );
      expect(mine).toHaveLength(2);
      const [first, second] = mine as [SipRequest, SipRequest];
      expect(second.callId).toBe(first.callId);
      expect(second.cseq.seq).toBe(first.cseq.seq + 1);
      expect(second.from.tag).toBe(first.from.tag);
      const elapsed = (clock.now() - start) / 1000;
      expect(elapsed).toBeGreaterThanOrEqual(108);
      expect(elapsed).toBeLessThan(120);
    } finally {
      sent.stop();
    }
  });

  it('§10.3 step 7, §21.4.17: 423 Interval Too Brief is retried with Min-Expires', async () => {
    const { clock, ua, registrar, autoAccept } = await setup();
    registrar.dum.masterProfile.set('minRegistrationExpires', 300);
    const { handler, out } = recorder();
    ua.dum.setClientRegistrationHandler(handler);
    const sent = sentRequests('REGISTER');
    try {
      const h = ua.dum.send<ClientRegistration>(
        ua.dum.makeRegistration(undefined, ua.profile, { expires: 60 }),
      );
      await until(clock, () => out.success.length > 0, { each: autoAccept });
      expect(out.failure).toHaveLength(0);
      expect(h.get().expires).toBe(300);
      const mine = sent.list.filter((r) => r.via[0]?.port === 5061);
      expect(mine.map((r) => r.expires)).toEqual([60, 300]);
      expect(mine[1]?.cseq.seq).toBe((mine[0]?.cseq.seq ?? 0) + 1);
    } finally {
      sent.stop();
    }
  });

  it('§22.4: a digest challenge on REGISTER is answered with the profile credentials', async () => {
    const { clock, ua, registrar, autoAccept } = await setup();
    registrar.dum.setServerAuthManager(
      new ServerAuthManager(async (u) => (u === 'alice' ? { password: 'pw' } : undefined), {
        realm: 'registrar.test',
      }),
      ['REGISTER'],
    );
    ua.profile.addCredentials({ realm: 'registrar.test', username: 'alice', password: 'pw' });
    const { handler, out } = recorder();
    ua.dum.setClientRegistrationHandler(handler);
    const req = ua.dum.makeRegistration(undefined, ua.profile);
    ua.dum.send(req);
    await until(clock, () => out.success.length + out.failure.length > 0, { each: autoAccept });
    expect(out.success[0]?.status).toBe(200);
    expect(out.success[0]?.cseq.seq).toBe(req.cseq.seq + 1);
    expect(out.success[0]?.callId).toBe(req.callId);
  });

  it('§10.2.2: removeMyBindings sends Expires 0 for our Contact; onRemoved, and the usage ends', async () => {
    const { clock, ua, registrar, autoAccept, served } = await setup();
    const { handler, out } = recorder();
    ua.dum.setClientRegistrationHandler(handler);
    const h = ua.dum.send<ClientRegistration>(ua.dum.makeRegistration(undefined, ua.profile));
    await until(clock, () => out.success.length > 0, { each: autoAccept });
    h.get().removeMyBindings();
    await until(clock, () => out.removed.length > 0, { each: autoAccept });
    expect(served.map((s) => s.op)).toEqual(['add', 'remove']);
    expect(h.isValid()).toBe(false);
    expect(out.removed[0]?.contacts).toHaveLength(0);
    expect(
      await registrar.dum.registrationPersistenceManager.getContacts(
        `sip:alice@127.0.0.1:${REGISTRAR_PORT}`,
      ),
    ).toHaveLength(0);
  });

  it('§10.2.2: removeAll sends Contact: * with Expires: 0 and removes the bindings of other UAs too', async () => {
    const { clock, ua, registrar, autoAccept, served } = await setup();
    const aor = `sip:alice@127.0.0.1:${REGISTRAR_PORT}`;
    const { handler, out } = recorder();
    ua.dum.setClientRegistrationHandler(handler);
    const other = ua.dum.makeRegistration(undefined, ua.profile, {
      contact: '<sip:alice@192.0.2.99:5060>',
    });
    ua.dum.send(other);
    const h = ua.dum.send<ClientRegistration>(ua.dum.makeRegistration(undefined, ua.profile));
    await until(clock, () => out.success.length > 1, { each: autoAccept });
    expect(await registrar.dum.registrationPersistenceManager.getContacts(aor)).toHaveLength(2);
    expect(h.get().allContacts.length).toBeGreaterThanOrEqual(1);
    const sent = sentRequests('REGISTER');
    try {
      h.get().removeAll();
      await until(clock, () => out.removed.length > 0, { each: autoAccept });
      const last = sent.list.at(-1) as SipRequest;
      expect(last.header('Contact')).toBe('*');
      expect(last.expires).toBe(0);
    } finally {
      sent.stop();
    }
    expect(served.at(-1)?.op).toBe('removeAll');
    expect(await registrar.dum.registrationPersistenceManager.getContacts(aor)).toHaveLength(0);
  });

  it('§10.2: end() while the first REGISTER is in flight removes the binding it made, one REGISTER at a time', async () => {
    const { clock, ua, registrar, autoAccept, served } = await setup();
    const { handler, out } = recorder();
    ua.dum.setClientRegistrationHandler(handler);
    const h = ua.dum.send<ClientRegistration>(ua.dum.makeRegistration(undefined, ua.profile));
    h.get().end();
    await until(clock, () => !h.isValid(), { each: autoAccept });
    expect(served.map((s) => s.op)).toEqual(['add', 'remove']);
    expect(out.success).toHaveLength(0);
    expect(
      await registrar.dum.registrationPersistenceManager.getContacts(
        `sip:alice@127.0.0.1:${REGISTRAR_PORT}`,
      ),
    ).toHaveLength(0);
  });

  it('§10.2.3: a REGISTER without Contact queries the bindings', async () => {
    const { clock, ua, autoAccept, served } = await setup();
    const { handler, out } = recorder();
    ua.dum.setClientRegistrationHandler(handler);
    ua.dum.send(ua.dum.makeRegistration(undefined, ua.profile));
    await until(clock, () => out.success.length > 0, { each: autoAccept });
    const q = ua.dum.makeRegistration(undefined, ua.profile);
    q.removeHeader('Contact');
    q.removeHeader('Expires');
    const qh = ua.dum.send<ClientRegistration>(q);
    await until(clock, () => out.success.length > 1, { each: autoAccept });
    expect(served.at(-1)?.op).toBe('query');
    expect(out.success[1]?.contacts).toHaveLength(1);
    expect(qh.isValid()).toBe(false);
  });

  it('§10.3 step 7: the expiry is capped at maxRegistrationExpires, and defaults when absent', async () => {
    const { clock, ua, registrar, autoAccept } = await setup();
    registrar.dum.masterProfile.set('maxRegistrationExpires', 1000);
    registrar.dum.masterProfile.set('defaultRegistrationExpires', 1800);
    const { handler, out } = recorder();
    ua.dum.setClientRegistrationHandler(handler);
    const capped = ua.dum.send<ClientRegistration>(
      ua.dum.makeRegistration(undefined, ua.profile, { expires: 5000 }),
    );
    await until(clock, () => out.success.length > 0, { each: autoAccept });
    expect(capped.get().expires).toBe(1000);
    registrar.dum.masterProfile.set('maxRegistrationExpires', 86400);
    const req = ua.dum.makeRegistration(undefined, ua.profile, {
      contact: '<sip:alice@192.0.2.7>',
    });
    req.removeHeader('Expires');
    const dflt = ua.dum.send<ClientRegistration>(req);
    await until(clock, () => out.success.length > 1, { each: autoAccept });
    expect(dflt.get().expires).toBe(1800);
  });

  it('a failure goes to onFailure; onRequestRetry decides the retry (Retry-After by default)', async () => {
    const { clock, ua, registrar, served } = await setup();
    const retries: number[] = [];
    const { handler, out } = recorder({
      onRequestRetry: (_h, after) => {
        retries.push(after);
        return retries.length === 1 ? 2 : -1;
      },
    });
    ua.dum.setClientRegistrationHandler(handler);
    const rejectAll = () => {
      for (const s of served)
        if (s.handle.isValid() && !s.handle.get().isAnswered)
          s.handle.get().reject(503, undefined, [['Retry-After', '30']]);
    };
    const h = ua.dum.send<ClientRegistration>(ua.dum.makeRegistration(undefined, ua.profile));
    await until(clock, () => out.failure.length > 1, { each: rejectAll, steps: 1000 });
    expect(retries).toEqual([30, 30]);
    expect(h.isValid()).toBe(false);
    expect(registrar.dum.handles.size).toBe(0);
  });
});

describe('registrar (RFC 3261 §10.3) against a scripted UA', () => {
  async function registrarOnly() {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 9 });
    const registrar = await node(network, clock, REGISTRAR_PORT, 'registrar', REGISTRAR_PORT);
    registrar.dum.setServerRegistrationHandler({});
    const peer = await peerOn(network, clock);
    return { clock, network, registrar, peer };
  }

  it('a registrar adds REGISTER to the methods it supports', async () => {
    const { registrar } = await registrarOnly();
    expect(registrar.dum.masterProfile.isMethodSupported('REGISTER')).toBe(true);
  });

  it('bindings expire on the registrar when they are not refreshed', async () => {
    const { clock, registrar, peer } = await registrarOnly();
    await peer.send(
      registerText({
        callId: 'exp1',
        cseq: 1,
        contact: '<sip:carol@192.0.2.5>',
        expires: 60,
        branch: 'e1',
      }),
      REGISTRAR,
    );
    const ok = await firstFinal(peer);
    expect(ok.status).toBe(200);
    const store = registrar.dum.registrationPersistenceManager;
    expect(await store.getContacts('sip:carol@127.0.0.1')).toHaveLength(1);
    clock.advance(59_000);
    expect(await store.getContacts('sip:carol@127.0.0.1')).toHaveLength(1);
    clock.advance(2_000);
    expect(await store.getContacts('sip:carol@127.0.0.1')).toHaveLength(0);
    expect(await store.aors()).toEqual([]);
  });

  it('§10.3 step 7: the same Call-ID with a CSeq not higher than the binding is refused (500); a new Call-ID replaces it', async () => {
    const { registrar, peer } = await registrarOnly();
    const contact = '<sip:carol@192.0.2.5>';
    await peer.send(
      registerText({ callId: 'ooo', cseq: 5, contact, expires: 600, branch: 'o1' }),
      REGISTRAR,
    );
    expect((await firstFinal(peer)).status).toBe(200);
    await peer.send(
      registerText({ callId: 'ooo', cseq: 4, contact, expires: 0, branch: 'o2' }),
      REGISTRAR,
    );
    expect((await firstFinal(peer)).status).toBe(500);
    await peer.send(
      registerText({ callId: 'ooo', cseq: 5, contact, expires: 0, branch: 'o3' }),
      REGISTRAR,
    );
    expect((await firstFinal(peer)).status).toBe(500);
    const store = registrar.dum.registrationPersistenceManager;
    expect(await store.getContacts('sip:carol@127.0.0.1')).toHaveLength(1);
    await peer.send(
      registerText({ callId: 'other', cseq: 1, contact, expires: 900, branch: 'o4' }),
      REGISTRAR,
    );
    expect((await firstFinal(peer)).status).toBe(200);
    const b = await store.getContacts('sip:carol@127.0.0.1');
    expect(b.map((x) => [x.callId, x.cseq])).toEqual([['other', 1]]);
  });

  it('§10.3 step 6: Contact: * with Expires other than 0, or beside other Contacts, gets 400', async () => {
    const { registrar, peer } = await registrarOnly();
    await peer.send(
      registerText({
        callId: 's1',
        cseq: 1,
        contact: '<sip:carol@192.0.2.5>',
        expires: 600,
        branch: 's1',
      }),
      REGISTRAR,
    );
    expect((await firstFinal(peer)).status).toBe(200);
    await peer.send(
      registerText({ callId: 's2', cseq: 1, contact: '*', expires: 600, branch: 's2' }),
      REGISTRAR,
    );
    expect((await firstFinal(peer)).status).toBe(400);
    await peer.send(registerText({ callId: 's3', cseq: 1, contact: '*', branch: 's3' }), REGISTRAR);
    expect((await firstFinal(peer)).status).toBe(400);
    await peer.send(
      registerText({
        callId: 's4',
        cseq: 1,
        contact: '*, <sip:carol@192.0.2.6>',
        expires: 0,
        branch: 's4',
      }),
      REGISTRAR,
    );
    expect((await firstFinal(peer)).status).toBe(400);
    const store = registrar.dum.registrationPersistenceManager;
    expect(await store.getContacts('sip:carol@127.0.0.1')).toHaveLength(1);
    await peer.send(
      registerText({ callId: 's5', cseq: 1, contact: '*', expires: 0, branch: 's5' }),
      REGISTRAR,
    );
    expect((await firstFinal(peer)).status).toBe(200);
    expect(await store.getContacts('sip:carol@127.0.0.1')).toHaveLength(0);
  });

  it('RFC 3327 §5.3: the Path of the REGISTER is stored with the binding and echoed when the UA supports path', async () => {
    const { registrar, peer } = await registrarOnly();
    await peer.send(
      registerText({
        callId: 'p1',
        cseq: 1,
        contact: '<sip:carol@192.0.2.5>',
        expires: 600,
        branch: 'p1',
        extra: 'Path: <sip:edge.example.test;lr>\r\nSupported: path\r\n',
      }),
      REGISTRAR,
    );
    const ok = await firstFinal(peer);
    expect(ok.status).toBe(200);
    expect(ok.headers('Path')).toEqual(['<sip:edge.example.test;lr>']);
    const b = await registrar.dum.registrationPersistenceManager.getContacts('sip:carol@127.0.0.1');
    expect(b[0]?.path).toEqual(['<sip:edge.example.test;lr>']);
  });

  it('a handler that does not answer at once answers later through its handle', async () => {
    const { clock, registrar, peer } = await registrarOnly();
    let held: Handle<ServerRegistration> | undefined;
    registrar.dum.setServerRegistrationHandler({ onAdd: (h) => (held = h) });
    await peer.send(
      registerText({
        callId: 'l1',
        cseq: 1,
        contact: '<sip:carol@192.0.2.5>',
        expires: 600,
        branch: 'l1',
      }),
      REGISTRAR,
    );
    await peer.expectNothing(200);
    expect(held?.get().operation).toBe('add');
    held?.get().reject(403);
    await peer.expectResponse(403, 'REGISTER', { withinMs: 1000 });
    expect(held?.isValid()).toBe(false);
    expect(
      await registrar.dum.registrationPersistenceManager.getContacts('sip:carol@127.0.0.1'),
    ).toHaveLength(0);
    void clock;
  });
});

describe('registrar with a store that applies a REGISTER at once (RFC 3261 §10.3 step 7)', () => {
  it('§10.3 step 7: all changes of one REGISTER go to updateContacts in one call, and its answer is listed', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 11 });
    const registrar = await node(network, clock, REGISTRAR_PORT, 'registrar', REGISTRAR_PORT);
    const inner = new InMemoryRegistrationPersistence({ now: () => registrar.dum.now() });
    const calls: { aor: string; update: RegistrationUpdate }[] = [];
    const single: string[] = [];
    const store: RegistrationPersistenceManager = {
      getContacts: (aor) => inner.getContacts(aor),
      putContact: (b) => {
        single.push('put');
        return inner.putContact(b);
      },
      removeContact: (aor, key) => {
        single.push('remove');
        return inner.removeContact(aor, key);
      },
      removeAll: (aor) => {
        single.push('removeAll');
        return inner.removeAll(aor);
      },
      aors: () => inner.aors(),
      async updateContacts(aor, update) {
        calls.push({ aor, update });
        if (update.removeAll) await inner.removeAll(aor);
        for (const k of update.remove) await inner.removeContact(aor, k);
        for (const b of update.put) await inner.putContact(b);
        return inner.getContacts(aor);
      },
    };
    registrar.dum.setRegistrationPersistenceManager(store);
    registrar.dum.setServerRegistrationHandler({});
    const peer = await peerOn(network, clock);
    await peer.send(
      registerText({
        callId: 'u1',
        cseq: 1,
        contact: '<sip:carol@192.0.2.5>, <sip:carol@192.0.2.6>;expires=120',
        expires: 600,
        branch: 'u1',
      }),
      REGISTRAR,
    );
    const ok = await firstFinal(peer);
    expect(ok.status).toBe(200);
    expect(ok.contacts.map((c) => c.expires)).toEqual([600, 120]);
    await peer.send(
      registerText({ callId: 'u2', cseq: 1, contact: '*', expires: 0, branch: 'u2' }),
      REGISTRAR,
    );
    expect((await firstFinal(peer)).status).toBe(200);
    expect(single).toEqual([]);
    expect(calls.map((c) => [c.aor, c.update.removeAll, c.update.put.length])).toEqual([
      ['sip:carol@127.0.0.1', false, 2],
      ['sip:carol@127.0.0.1', true, 0],
    ]);
    expect(await inner.aors()).toEqual([]);
  });
});

describe('InMemoryRegistrationPersistence.updateContacts (RFC 3261 §10.3 step 7)', () => {
  const AOR = 'sip:carol@127.0.0.1';
  const binding = (uri: string, expires: number, cseq = 1) => ({
    aor: AOR,
    contact: parseHeader<Contact>('Contact', `<${uri}>`)[0] as Contact,
    expires,
    callId: 'c1',
    cseq,
  });

  it('§10.3 step 7: removeAll, removals and puts in that order, answered with every binding after them', async () => {
    const now = 1_000_000;
    const store = new InMemoryRegistrationPersistence({ now: () => now });
    await store.putContact(binding('sip:carol@192.0.2.1', now + 60_000));
    await store.putContact(binding('sip:carol@192.0.2.2', now + 60_000));
    const after = await store.updateContacts(AOR, {
      callId: 'c1',
      cseq: 2,
      remove: ['sip:carol@192.0.2.1'],
      put: [binding('sip:carol@192.0.2.3', now + 120_000, 2)],
    });
    expect(after.map((b) => b.contact.uri.toString())).toEqual([
      'sip:carol@192.0.2.2',
      'sip:carol@192.0.2.3',
    ]);
    // The answer is a copy: changing it leaves the store as it was.
    after[0]?.contact.params.set('expires', '1');
    const stored = await store.getContacts(AOR);
    expect(stored[0]?.contact.params.has('expires')).toBe(false);
    const cleared = await store.updateContacts(AOR, {
      callId: 'c1',
      cseq: 3,
      removeAll: true,
      remove: [],
      put: [binding('sip:carol@192.0.2.4', now + 60_000, 3)],
    });
    expect(cleared.map((b) => b.contact.uri.toString())).toEqual(['sip:carol@192.0.2.4']);
    await store.updateContacts(AOR, {
      callId: 'c1',
      cseq: 4,
      remove: ['sip:carol@192.0.2.4'],
      put: [],
    });
    expect(await store.aors()).toEqual([]);
    store.close();
  });
});

describe('registrar: RFC 4475 §3.3.12-§3.3.14', () => {
  /** Send a torture message to the registrar and collect the responses its stack sends (wherever their Via points). */
  async function torture(text: Uint8Array | string): Promise<{
    responses: SipResponse[];
    registrar: Node;
    send: (t: Uint8Array | string) => Promise<SipResponse>;
  }> {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 13 });
    const registrar = await node(network, clock, REGISTRAR_PORT, 'registrar', REGISTRAR_PORT);
    registrar.dum.setServerRegistrationHandler({});
    const responses: SipResponse[] = [];
    const listener = (m: unknown) => {
      const e = m as { message: SipResponse };
      if (!e.message.isRequest) responses.push(e.message);
    };
    const peer = new MemoryTransport({ network, port: 5099 });
    await peer.start({ receive() {}, connectionClosed() {}, error() {} });
    const send = async (t: Uint8Array | string): Promise<SipResponse> => {
      const before = responses.length;
      dc.subscribe('sip:transport:send', listener);
      try {
        await peer.send(typeof t === 'string' ? new TextEncoder().encode(t) : t, REGISTRAR);
        await until(clock, () => responses.length > before);
      } finally {
        dc.unsubscribe('sip:transport:send', listener);
      }
      return responses[before] as SipResponse;
    };
    await send(text);
    return { responses, registrar, send };
  }

  const file = (name: string) =>
    readFileSync(new URL(`../../../../shared/conformance/rfc4475/${name}.dat`, import.meta.url));

  const query = (callId: string, user: string) =>
    'REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKq' +
    `${callId}\r\nMax-Forwards: 70\r\nFrom: <sip:${user}@example.com>;tag=q1\r\nTo: <sip:${user}@example.com>\r\n` +
    `Call-ID: ${callId}\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n`;

  it('§3.3.12 cparam01: unknownparam is a contact parameter, never a URI parameter, now and in later fetches', async () => {
    const { responses, send } = await torture(file('cparam01'));
    const res = responses[0] as SipResponse;
    expect(res.status).toBe(200);
    for (const r of [res, await send(query('cp1q', 'watson'))]) {
      const c = r.contacts[0] as Contact;
      expect(c.uri.toString()).toBe('sip:+19725552222@gw1.example.net');
      expect(c.uri.params.has('unknownparam')).toBe(false);
      expect(c.params.has('unknownparam')).toBe(true);
    }
  });

  it('§3.3.13 cparam02: unknownparam is a URI parameter, kept in the binding and in later fetches', async () => {
    const { responses, send } = await torture(file('cparam02'));
    const res = responses[0] as SipResponse;
    expect(res.status).toBe(200);
    for (const r of [res, await send(query('cp2q', 'watson'))]) {
      const c = r.contacts[0] as Contact;
      expect(c.uri.params.has('unknownparam')).toBe(true);
      expect(c.params.has('unknownparam')).toBe(false);
      expect(r.header('Contact')).toMatch(/^<sip:\+19725552222@gw1\.example\.net;unknownparam>/);
    }
  });

  it('§3.3.14 regescrt: the escaped Route header in the Contact URI is kept in the binding', async () => {
    const { responses, send } = await torture(file('regescrt'));
    const res = responses[0] as SipResponse;
    expect(res.status).toBe(200);
    for (const r of [res, await send(query('rgq', 'user'))]) {
      const c = r.contacts[0] as Contact;
      expect(c.uri.headers.get('Route')).toBe('<sip:sip.example.com>');
      expect(r.header('Contact')).toMatch(
        /^<sip:user@example\.com\?Route=%3[Cc]sip:sip\.example\.com%3[Ee]>/,
      );
    }
  });
});

describe('SqliteRegistrationPersistence (better-sqlite3 12)', () => {
  it('bindings survive a registrar restart (database closed and reopened); expired ones are swept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipworks-reg-'));
    const file = join(dir, 'bindings.db');
    try {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock, seed: 21 });
      const first = await node(network, clock, REGISTRAR_PORT, 'registrar', REGISTRAR_PORT);
      const store = await SqliteRegistrationPersistence.open(file, {
        now: () => first.dum.now(),
        clock,
      });
      first.dum.setRegistrationPersistenceManager(store);
      first.dum.setServerRegistrationHandler({});
      const peer = await peerOn(network, clock);
      await peer.send(
        registerText({
          callId: 'sq1',
          cseq: 1,
          contact: '<sip:carol@192.0.2.5;transport=tcp>;q=0.5;+sip.instance="<urn:uuid:1>"',
          expires: 600,
          branch: 'q1',
          extra: 'Path: <sip:edge.example.test;lr>\r\n',
        }),
        REGISTRAR,
      );
      expect((await firstFinal(peer)).status).toBe(200);
      await peer.send(
        registerText({
          callId: 'sq2',
          cseq: 1,
          contact: '<sip:carol@192.0.2.6>',
          expires: 60,
          branch: 'q2',
        }),
        REGISTRAR,
      );
      expect((await firstFinal(peer)).status).toBe(200);
      await first.dum.shutdown({ timeoutMs: 100 });
      store.close();

      // The restart: a new store on the same file, a minute and a half later.
      const later = first.dum.now() + 90_000;
      const reopened = await SqliteRegistrationPersistence.open(file, { now: () => later });
      try {
        expect(await reopened.aors()).toEqual(['sip:carol@127.0.0.1']);
        const b = await reopened.getContacts('sip:carol@127.0.0.1');
        expect(b).toHaveLength(1);
        expect(b[0]?.contact.uri.toString()).toBe('sip:carol@192.0.2.5;transport=tcp');
        expect(b[0]?.contact.params.get('+sip.instance')).toBe('<urn:uuid:1>');
        expect(b[0]?.q).toBe(0.5);
        expect(b[0]?.instanceId).toBe('<urn:uuid:1>');
        expect(b[0]?.path).toEqual(['<sip:edge.example.test;lr>']);
        expect(b[0]?.callId).toBe('sq1');
        await reopened.putContact({
          aor: 'sip:dave@127.0.0.1',
          contact: b[0]?.contact as Contact,
          expires: later - 1,
          callId: 'old',
          cseq: 1,
        });
        expect(reopened.sweep()).toBe(1);
        expect(await reopened.aors()).toEqual(['sip:carol@127.0.0.1']);
      } finally {
        reopened.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import dc from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { createResponse, type SipResponse } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import { MemoryNetwork, MemoryTransport, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it, vi } from 'vitest';
import {
  type ClientInviteSession,
  type ClientOutOfDialogReq,
  type ClientSubscription,
  computeHa1,
  type DialogId,
  DialogUsageManager,
  type DigestAlgorithm,
  type Handle,
  nodeHasher,
  ServerAuthManager,
  type ServerInviteSession,
  type ServerSubscription,
} from '../src/index.ts';
import { type Node, node, until } from './support.ts';

async function pair(): Promise<{ a: Node; b: Node; clock: VirtualClock; network: MemoryNetwork }> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 3 });
  const a = await node(network, clock, 5061, 'alice');
  const b = await node(network, clock, 5062, 'bob');
  return { a, b, clock, network };
}

function options(
  from: Node,
  to: Node,
): { results: SipResponse[]; handle: () => Handle<ClientOutOfDialogReq> } {
  const results: SipResponse[] = [];
  from.dum.addOutOfDialogHandler('OPTIONS', {
    onSuccess: (_h, r) => results.push(r),
    onFailure: (_h, r) => results.push(r),
  });
  const req = from.dum.makeOutOfDialogRequest(
    `sip:bob@127.0.0.1:${to.port}`,
    'OPTIONS',
    from.profile,
  );
  const h = from.dum.send(req) as unknown as Handle<ClientOutOfDialogReq>;
  return { results, handle: () => h };
}

describe('DialogUsageManager: out-of-dialog requests', () => {
  it('RFC 3261 §11: OPTIONS is answered from the profile capabilities (Allow, Accept, Supported)', async () => {
    const { a, b, clock } = await pair();
    const { results } = options(a, b);
    await until(clock, () => results.length > 0);
    const res = results[0] as SipResponse;
    expect(res.status).toBe(200);
    expect(res.headers('Allow')).toContain('INVITE');
    expect(res.headers('Accept')).toContain('application/sdp');
    expect(res.header('Server')).toBe('sipworks');
  });

  it('a handle is valid while the usage lives and stale after; using a stale handle throws', async () => {
    const { a, b, clock } = await pair();
    const { results, handle } = options(a, b);
    expect(handle().isValid()).toBe(true);
    await until(clock, () => results.length > 0);
    expect(handle().isValid()).toBe(false);
    expect(() => handle().get()).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STALE_HANDLE' }),
    );
  });

  it('an application handler answers a registered method', async () => {
    const { a, b, clock } = await pair();
    b.dum.addOutOfDialogHandler('INFO', {
      onReceivedRequest: (h) => {
        h.get().reject(488, 'Not Here');
      },
    });
    const results: SipResponse[] = [];
    a.dum.addOutOfDialogHandler('INFO', { onFailure: (_h, r) => results.push(r) });
    a.dum.send(a.dum.makeOutOfDialogRequest(`sip:bob@127.0.0.1:${b.port}`, 'INFO', a.profile));
    await until(clock, () => results.length > 0);
    expect(results[0]?.status).toBe(488);
    expect(results[0]?.reason).toBe('Not Here');
  });

  it('a timeout reaches the handler as a locally made 408', async () => {
    const { a, clock } = await pair();
    const results: SipResponse[] = [];
    a.dum.addOutOfDialogHandler('OPTIONS', { onFailure: (_h, r) => results.push(r) });
    a.dum.send(a.dum.makeOutOfDialogRequest('sip:nobody@127.0.0.1:5999', 'OPTIONS', a.profile));
    await until(clock, () => results.length > 0, { steps: 5000 });
    expect(results[0]?.status).toBe(408);
  });
});

describe('DialogUsageManager: digest authentication (RFC 3261 §22, RFC 7616, RFC 8760)', () => {
  for (const algorithm of ['MD5', 'SHA-256'] as DigestAlgorithm[]) {
    it(`a challenged MESSAGE is answered with ${algorithm} credentials and accepted`, async () => {
      const { a, b, clock } = await pair();
      b.dum.setServerAuthManager(
        new ServerAuthManager(
          async (user, realm) =>
            user === 'alice'
              ? { ha1: { [algorithm]: computeHa1(nodeHasher, algorithm, user, realm, 's3cret') } }
              : undefined,
          {
            realm: 'example.test',
            algorithms: [algorithm],
          },
        ),
      );
      const got: string[] = [];
      b.dum.setServerPagerMessageHandler({
        onMessageArrived: (h, m) => {
          got.push(m.bodyText);
          h.get().accept();
        },
      });
      a.profile.addCredentials({ realm: 'example.test', username: 'alice', password: 's3cret' });
      const done: number[] = [];
      a.dum.setClientPagerMessageHandler({
        onSuccess: (_h, r) => done.push(r.status),
        onFailure: (_h, r) => done.push(r.status),
      });
      const pager = a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, a.profile);
      pager.get().page('hello');
      await until(clock, () => done.length > 0);
      expect(done).toEqual([200]);
      expect(got).toEqual(['hello']);
    });
  }

  it('wrong credentials: the 401 stands after one retry; no handler sees the request', async () => {
    const { a, b, clock } = await pair();
    b.dum.setServerAuthManager(
      new ServerAuthManager(async () => ({ password: 'right' }), { realm: 'r' }),
    );
    let seen = 0;
    b.dum.setServerPagerMessageHandler({
      onMessageArrived: (h) => {
        seen++;
        h.get().accept();
      },
    });
    a.profile.addCredentials({ realm: 'r', username: 'alice', password: 'wrong' });
    const failed: { status: number; body: string }[] = [];
    a.dum.setClientPagerMessageHandler({
      onFailure: (_h, r, body) =>
        failed.push({ status: r.status, body: new TextDecoder().decode(body) }),
    });
    a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, a.profile).get().page('lost page');
    await until(clock, () => failed.length > 0);
    expect(failed).toEqual([{ status: 401, body: 'lost page' }]);
    expect(seen).toBe(0);
  });

  for (const preemptive of [true, false]) {
    it(`credentials cached per realm ${preemptive ? 'go with the next request to the same hop' : 'wait for a challenge when preemptiveAuth is off'} (RFC 7616 §3.4.5 nonce count)`, async () => {
      const { a, b, clock } = await pair();
      const server = new ServerAuthManager(async () => ({ password: 'pw' }), {
        realm: 'cache.test',
      });
      b.dum.setServerAuthManager(server);
      const challenge = vi.spyOn(server, 'challenge');
      const authorizations: string[] = [];
      b.dum.setServerPagerMessageHandler({
        onMessageArrived: (h, m) => {
          authorizations.push(m.header('Authorization') ?? '');
          h.get().accept();
        },
      });
      a.profile.addCredentials({ realm: 'cache.test', username: 'alice', password: 'pw' });
      a.profile.set('preemptiveAuth', preemptive);
      const done: number[] = [];
      a.dum.setClientPagerMessageHandler({
        onSuccess: (_h, r) => done.push(r.status),
        onFailure: (_h, r) => done.push(r.status),
      });
      const pager = a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, a.profile);
      pager.get().page('one');
      await until(clock, () => done.length === 1);
      expect(challenge).toHaveBeenCalledTimes(1);
      pager.get().page('two');
      await until(clock, () => done.length === 2);
      expect(done).toEqual([200, 200]);
      expect(challenge).toHaveBeenCalledTimes(preemptive ? 1 : 2);
      // The nonce count goes up with each use of the cached nonce (qop=auth).
      expect(authorizations[0]).toMatch(/nc=00000001/);
      expect(authorizations[1]).toMatch(preemptive ? /nc=00000002/ : /nc=00000001/);
    });
  }

  it('cached credentials are not offered to another next hop', async () => {
    const { a, b, clock, network } = await pair();
    const c = await node(network, clock, 5063, 'carol');
    const server = new ServerAuthManager(async () => ({ password: 'pw' }), { realm: 'hop.test' });
    b.dum.setServerAuthManager(server);
    const seenByCarol: (string | undefined)[] = [];
    for (const n of [b, c])
      n.dum.setServerPagerMessageHandler({
        onMessageArrived: (h, m) => {
          if (n === c) seenByCarol.push(m.header('Authorization'));
          h.get().accept();
        },
      });
    a.profile.addCredentials({ realm: 'hop.test', username: 'alice', password: 'pw' });
    const done: number[] = [];
    a.dum.setClientPagerMessageHandler({ onSuccess: (_h, r) => done.push(r.status) });
    a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, a.profile).get().page('to bob');
    await until(clock, () => done.length === 1);
    a.dum.makePagerMessage(`sip:carol@127.0.0.1:${c.port}`, a.profile).get().page('to carol');
    await until(clock, () => done.length === 2);
    expect(seenByCarol).toEqual([undefined]);
  });

  it('pages are sent one at a time, in order', async () => {
    const { a, b, clock } = await pair();
    const got: string[] = [];
    b.dum.setServerPagerMessageHandler({
      onMessageArrived: (h, m) => {
        got.push(m.bodyText);
        h.get().accept();
      },
    });
    const ok: number[] = [];
    a.dum.setClientPagerMessageHandler({ onSuccess: (_h, r) => ok.push(r.cseq.seq) });
    const p = a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, a.profile).get();
    p.page('one');
    p.page('two');
    p.page('three');
    expect(p.pending).toBe(2);
    await until(clock, () => ok.length === 3);
    expect(got).toEqual(['one', 'two', 'three']);
    expect(ok).toEqual([1, 2, 3]);
  });
});

describe('DialogUsageManager: redirects (RFC 3261 §8.1.3.4)', () => {
  it('follows a 302 to its Contact, and reports the final answer', async () => {
    const { a, b, clock, network } = await pair();
    const c = await node(network, clock, 5063, 'carol');
    c.dum.masterProfile.set('userAgent', 'carol-ua');
    const redirector = new SipStack({ clock });
    await redirector.addTransport(new MemoryTransport({ network, port: 5064 }));
    await redirector.start();
    redirector.setTransactionUser({
      onRequest(req, tx) {
        const res = createResponse(req, 302, undefined, { toTag: 'r1' });
        res.setHeader('Contact', [
          `<sip:bob@127.0.0.1:${b.port}>;q=0.5`,
          `<sip:carol@127.0.0.1:${c.port}>;q=0.9`,
        ]);
        tx?.respond(res);
      },
    });
    const results: SipResponse[] = [];
    a.dum.addOutOfDialogHandler('OPTIONS', {
      onSuccess: (_h, r) => results.push(r),
      onFailure: (_h, r) => results.push(r),
    });
    const req = a.dum.makeOutOfDialogRequest('sip:someone@127.0.0.1:5064', 'OPTIONS', a.profile);
    a.dum.send(req);
    await until(clock, () => results.length > 0);
    expect(results[0]?.status).toBe(200);
    // The higher q-value was tried first.
    expect(results[0]?.header('Server')).toBe('carol-ua');
  });
});

describe('DialogUsageManager: request validation (RFC 3261 §8.2, RFC 4475 §3.3)', () => {
  /** Send a torture message to the DUM and collect the responses its stack sends (wherever their Via points). */
  async function raw(
    file: string,
    port: number,
    clock: VirtualClock,
    network: MemoryNetwork,
  ): Promise<SipResponse[]> {
    const out: SipResponse[] = [];
    const listener = (m: unknown) => {
      const e = m as { message: SipResponse };
      if (!e.message.isRequest) out.push(e.message);
    };
    dc.subscribe('sip:transport:send', listener);
    const peer = new MemoryTransport({ network, port: 5099 });
    await peer.start({ receive() {}, connectionClosed() {}, error() {} });
    const text = readFileSync(
      new URL(`../../../../shared/conformance/rfc4475/${file}.dat`, import.meta.url),
    );
    await peer.send(text, { address: '127.0.0.1', port });
    try {
      await until(clock, () => out.length > 0);
    } finally {
      dc.unsubscribe('sip:transport:send', listener);
      await peer.stop();
    }
    return out;
  }

  const cases: [string, string, number, string?][] = [
    ['3.3.2', 'unkscm', 416],
    ['3.3.3', 'novelsc', 416],
    ['3.3.5', 'bext01', 420, 'Unsupported'],
    ['3.3.6', 'invut', 415, 'Accept'],
    ['3.3.1', 'insuf', 400],
    ['3.3.8', 'multi01', 400],
    ['3.3.11', 'zeromf', 200],
  ];
  it.each(cases)('RFC 4475 §%s %s gets %i', async (_s, file, status, header) => {
    const { b, clock, network } = await pair();
    const res = await raw(file, b.port, clock, network);
    expect(res[0]?.status).toBe(status);
    if (header) expect(res[0]?.has(header)).toBe(true);
  });

  it('RFC 4475 §3.3.4 unksm2: a registrar answers an isbn: To (not a SIP AOR) with 400', async () => {
    const { b, clock, network } = await pair();
    const added: string[] = [];
    b.dum.setServerRegistrationHandler({ onAdd: (_h, r) => added.push(r.callId) });
    const res = await raw('unksm2', b.port, clock, network);
    expect(res[0]?.status).toBe(400);
    expect(res[0]?.reason).toMatch(/SIP or SIPS/);
    expect(added).toEqual([]);
  });

  it('RFC 4475 §3.3.7 regaut01: an unknown Authorization scheme gets a Digest challenge (401)', async () => {
    const { b, clock, network } = await pair();
    const added: string[] = [];
    b.dum.setServerRegistrationHandler({ onAdd: (_h, r) => added.push(r.callId) });
    b.dum.setServerAuthManager(
      new ServerAuthManager(async () => undefined, { realm: 'example.com' }),
    );
    const res = await raw('regaut01', b.port, clock, network);
    expect(res[0]?.status).toBe(401);
    expect(res[0]?.header('WWW-Authenticate')).toMatch(/^Digest .*realm="example.com"/);
    expect(added).toEqual([]);
  });

  it('RFC 4475 §3.3.15 sdp01: an INVITE whose Accept excludes SDP gets 406, and no session', async () => {
    const { b, clock, network } = await pair();
    const sessions: string[] = [];
    b.dum.setInviteSessionHandler({ onNewSession: (_h, invite) => sessions.push(invite.callId) });
    const res = await raw('sdp01', b.port, clock, network);
    expect(res[0]?.status).toBe(406);
    expect(res[0]?.header('Accept')).toBe('application/sdp');
    expect(sessions).toEqual([]);
  });

  it('a method nobody supports gets 405 with Allow', async () => {
    const { a, b, clock } = await pair();
    const results: SipResponse[] = [];
    a.dum.addOutOfDialogHandler('FOO', { onFailure: (_h, r) => results.push(r) });
    a.dum.send(a.dum.makeOutOfDialogRequest(`sip:bob@127.0.0.1:${b.port}`, 'FOO', a.profile));
    await until(clock, () => results.length > 0);
    expect(results[0]?.status).toBe(405);
    expect(results[0]?.headers('Allow')).toContain('OPTIONS');
  });
});

describe('DialogUsageManager: AppDialogSet (the application object of a dialog set)', () => {
  it("the object given to send() is the caller's; the factory makes the callee's; both hear the end", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 4 });
    const destroyed: string[] = [];
    const made: string[] = [];
    const a = await node(network, clock, 5061, 'alice');
    const stack = new SipStack({ clock });
    await stack.addTransport(new MemoryTransport({ network, port: 5062 }));
    await stack.start();
    const b = new DialogUsageManager({
      stack,
      appDialogSetFactory: (req) => {
        made.push(req.method);
        return { onDestroyed: () => destroyed.push('callee') };
      },
    });
    let callee: Handle<ServerInviteSession> | undefined;
    b.setInviteSessionHandler({
      onNewSession: (h) => {
        callee = h;
        h.get().accept({ body: 'v=0\r\n' });
      },
    });
    const ended: string[] = [];
    a.dum.setInviteSessionHandler({ onTerminated: (_h, reason) => ended.push(reason) });
    const mine = { call: 'my call', onDestroyed: () => destroyed.push('caller') };
    const invite = a.dum.makeInviteSession(`sip:bob@127.0.0.1:5062`, a.profile, {
      body: 'v=0\r\n',
    });
    const caller = a.dum.send<ClientInviteSession>(invite, { appDialogSet: mine });
    expect(caller.get().dialogSet.appDialogSet).toBe(mine);
    await until(clock, () => callee?.get().isConnected === true);
    expect(made).toEqual(['INVITE']);
    caller.get().end();
    await until(clock, () => destroyed.length === 2);
    expect(destroyed.sort()).toEqual(['callee', 'caller']);
    expect(ended).toEqual(['local-bye']);
  });
});

describe('DialogUsageManager: finding usages by dialog (findInviteSession and friends)', () => {
  it('findClientSubscriptions / findServerSubscriptions return the handles of a dialog; none once it ends', async () => {
    const { a, b, clock } = await pair();
    const served: Handle<ServerSubscription>[] = [];
    b.dum.addServerSubscriptionHandler('presence', {
      onNewSubscription: (h) => {
        served.push(h);
        h.get().accept(200);
        h.get().send(h.get().neutralNotify());
      },
    });
    let active = false;
    a.dum.addClientSubscriptionHandler('presence', { onUpdateActive: () => (active = true) });
    const sub = a.dum.send<ClientSubscription>(
      a.dum.makeSubscription(`sip:bob@127.0.0.1:${b.port}`, 'presence', a.profile),
    );
    await until(clock, () => active);
    const aSide = sub.get().dialog?.id as DialogId;
    const bSide = served[0]?.get().dialog.id as DialogId;
    expect(a.dum.findClientSubscriptions(aSide).map((h) => h.id)).toEqual([sub.id]);
    expect(a.dum.findServerSubscriptions(aSide)).toEqual([]);
    expect(b.dum.findServerSubscriptions(bSide).map((h) => h.id)).toEqual([served[0]?.id]);
    expect(b.dum.findClientSubscriptions(bSide)).toEqual([]);
    expect(a.dum.findInviteSession(aSide)).toBeUndefined();
    // Without a factory the set's object is made when first read, and stays the same one.
    const app = a.dum.findAppDialogSet(aSide.dialogSetId);
    expect(app).toEqual({});
    expect(a.dum.findAppDialogSet(aSide.dialogSetId)).toBe(app);
    sub.get().end();
    await until(clock, () => !sub.isValid());
    expect(a.dum.findClientSubscriptions(aSide)).toEqual([]);
    expect(a.dum.findAppDialogSet(aSide.dialogSetId)).toBeUndefined();
  });
});

describe('DialogUsageManager: shutdown', () => {
  it('ends the usages, refuses new requests with 503, and resolves when nothing is left', async () => {
    const { a, b, clock } = await pair();
    const p = a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, a.profile);
    expect(a.dum.handles.size).toBe(1);
    await a.dum.shutdown({ timeoutMs: 1000 });
    expect(p.isValid()).toBe(false);
    expect(() => a.dum.makePagerMessage('sip:x@127.0.0.1', a.profile)).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_SHUTDOWN' }),
    );
    const results: SipResponse[] = [];
    b.dum.addOutOfDialogHandler('OPTIONS', {
      onSuccess: (_h, r) => results.push(r),
      onFailure: (_h, r) => results.push(r),
    });
    b.dum.send(b.dum.makeOutOfDialogRequest(`sip:alice@127.0.0.1:${a.port}`, 'OPTIONS', b.profile));
    await until(clock, () => results.length > 0);
    expect(results[0]?.status).toBe(503);
  });
});

import {
  type NameAddr,
  parseMessage,
  type SipRequest,
  type SipResponse,
  type SubscriptionState,
} from '@sipworks/message';
import { MemoryNetwork, ScriptedPeer, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type ClientSubscription,
  type Handle,
  type InviteSession,
  parseSipfrag,
  readRefer,
  type ServerReferSubscription,
  type SipfragStatus,
  sipfrag,
} from '../src/index.ts';
import { node, until } from './support.ts';
import { call, OFFER, three } from './transfer-support.ts';

function state(n: SipRequest | undefined): SubscriptionState | undefined {
  return n?.get<SubscriptionState>('Subscription-State');
}

describe('sipfrag (RFC 3420, RFC 3515 §2.4.5)', () => {
  it('§2.4.5: reads the status line of a sipfrag body', () => {
    expect(parseSipfrag('SIP/2.0 100 Trying\r\n')).toEqual({
      status: 100,
      reason: 'Trying',
      final: false,
    });
    expect(
      parseSipfrag(new TextEncoder().encode('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n')),
    ).toEqual({ status: 200, reason: 'OK', final: true });
    expect(parseSipfrag('SIP/2.0 603 Declined')).toMatchObject({ status: 603, final: true });
    expect(parseSipfrag('SIP/2.0 180 ')).toEqual({ status: 180, reason: '', final: false });
    expect(sipfrag(180, 'Ringing')).toBe('SIP/2.0 180 Ringing\r\n');
  });

  it('§2.4.5: bad bodies give no status and never throw', () => {
    const bad: (string | Uint8Array | undefined)[] = [
      undefined,
      '',
      '\r\n',
      'garbage',
      'SIP/2.0 99 Too Low',
      'SIP/2.0 700 Too High',
      'SIP/2.0 2000 OK',
      'SIP/3.0 200 OK',
      'INVITE sip:bob@example.test SIP/2.0\r\n',
      `SIP/2.0 200 ${'x'.repeat(5000)}`,
      new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0x0d, 0x0a]),
      new Uint8Array(0),
    ];
    for (const b of bad) expect(parseSipfrag(b)).toBeUndefined();
    expect(() => sipfrag(99, 'x')).toThrow(RangeError);
  });
});

describe('reading a REFER (RFC 3515 §2.1, §2.4.2)', () => {
  const refer = (headers: string) =>
    parseMessage(
      new TextEncoder().encode(
        'REFER sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKr1\r\n' +
          'From: <sip:bob@example.test>;tag=b\r\nTo: <sip:alice@example.test>;tag=a\r\n' +
          `Call-ID: r1\r\nCSeq: 5 REFER\r\nContact: <sip:bob@127.0.0.1:5090>\r\n${headers}` +
          'Content-Length: 0\r\n\r\n',
      ),
    ) as SipRequest;

  it('§2.1, RFC 3892, RFC 4488: compact r and b forms, Refer-Sub, and a Replaces embedded in the Refer-To', () => {
    const info = readRefer(
      refer(
        'r: <sip:carol@example.test?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n' +
          'b: <sip:bob@example.test>\r\nRefer-Sub: false\r\n',
      ),
    );
    expect(typeof info).toBe('object');
    if (typeof info === 'string') return;
    expect(info.referTo.uri.user).toBe('carol');
    expect(info.referredBy?.uri.user).toBe('bob');
    expect(info.referSub).toBe(false);
    expect(info.replaces?.callId).toBe('abc@h');
    expect(info.replaces?.toTag).toBe('1');
    expect(info.replaces?.fromTag).toBe('2');
  });

  it('§2.4.2: no Refer-To, two, a malformed one or a malformed embedded Replaces are refused', () => {
    expect(typeof readRefer(refer(''))).toBe('string');
    expect(typeof readRefer(refer('Refer-To: <sip:a@x>\r\nRefer-To: <sip:b@x>\r\n'))).toBe(
      'string',
    );
    expect(typeof readRefer(refer('Refer-To: <<<\r\n'))).toBe('string');
    expect(typeof readRefer(refer('Refer-To: <sip:a@x?Replaces=%3B%3B>\r\n'))).toBe('string');
    expect(typeof readRefer(refer('Refer-To: <sip:a@x>\r\nReferred-By: <<\r\n'))).toBe('string');
  });
});

describe('REFER between three DUMs (RFC 3515, RFC 5589)', () => {
  it('RFC 5589 §6.1 blind transfer: B refers A to C; A calls C; NOTIFYs 100 then 200 (RFC 3515 §2.4.4-2.4.7); B hangs up', async () => {
    const { clock, a, b, c } = await three();
    const wait = (cond: () => boolean) => until(clock, cond);
    const { caller: ab, callee: ba } = await call(a, b, wait);
    // A (the transferee) accepts the REFER and calls the target.
    a.party.onReferDo = ({ sub }) => {
      sub.get().acceptRefer();
      a.dum.send(a.dum.makeInviteSessionFromRefer(sub, a.profile, { body: OFFER }));
    };
    // B (the transferor) hangs up once the transfer succeeded.
    b.party.onProgressDo = (session, s) => {
      if (s?.final && s.status === 200) session.get().end();
    };
    const refer = ba.get().refer(c.uri);
    expect(refer.method).toBe('REFER');
    expect(refer.get<NameAddr>('Refer-To')?.uri.toString()).toBe(c.uri);
    // RFC 3892: the transferor says who refers.
    expect(refer.get<NameAddr>('Referred-By')?.uri.toString()).toContain('bob@');

    await wait(() => a.party.has('refer'));
    const got = a.party.refers[0];
    expect(got?.refer.header('Refer-To')).toContain('carol@');
    expect(got?.refer.has('Refer-Sub')).toBe(false);
    expect(got?.session.id).toBe(ab.id);

    await wait(() => c.party.up.length === 1 && b.party.progress.some((s) => s?.final === true));
    expect(b.party.events).toContain('refer-accepted:202');
    expect(b.party.accepted[0]?.sub).toBeDefined();
    expect(b.party.progress.map((s) => s?.status)).toEqual([100, 200]);
    // RFC 3515 §2.4.6: the NOTIFYs of an in-dialog REFER name it by its CSeq.
    const events = b.party.notifies.map((n) => n.header('Event'));
    expect(events).toEqual([`refer;id=${refer.cseq.seq}`, `refer;id=${refer.cseq.seq}`]);
    expect(b.party.notifies[0]?.header('Content-Type')).toContain('message/sipfrag');
    expect(state(b.party.notifies[0])?.state).toBe('active');
    // §2.4.7: the final NOTIFY ends the subscription.
    expect(state(b.party.notifies[1])?.state).toBe('terminated');
    expect(state(b.party.notifies[1])?.reason).toBe('noresource');
    // The INVITE to C carries Referred-By (RFC 3892 §3) and no Replaces.
    const invite = c.party.incoming[0]?.invite;
    expect(invite?.get<NameAddr>('Referred-By')?.uri.toString()).toContain('bob@');
    expect(invite?.has('Replaces')).toBe(false);
    expect(invite?.uri.toString()).toBe(c.uri);

    // The sessions the transfer replaced end as `referred` on both sides, not as a plain BYE.
    await wait(() => a.party.ended.get(ab.id) === 'referred');
    expect(b.party.ended.get(ba.id)).toBe('referred');
    // A and C stay up; the old dialogs and subscriptions are gone.
    const ac = a.party.up.find((h) => h.id !== ab.id) as Handle<InviteSession>;
    expect(ac.get().isConnected).toBe(true);
    await wait(() => a.dum.dialogCount === 1 && b.dum.dialogCount === 0);
    expect(got?.sub.isValid()).toBe(false);
  });

  it('RFC 3515 §2.4.2: a REFER declined with 603 goes to onReferRejected, no subscription, no NOTIFY', async () => {
    const { clock, a, b } = await three(8);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { callee: ba } = await call(a, b, wait);
    a.party.onReferDo = ({ sub }) => sub.get().rejectRefer(603);
    ba.get().refer('sip:carol@127.0.0.1:5063');
    await wait(() => b.party.rejected.length === 1);
    expect(b.party.rejected[0]?.status).toBe(603);
    expect(b.party.accepted).toHaveLength(0);
    await wait(() => a.party.refers[0]?.sub.isValid() === false);
    // A NOTIFY would have no subscription left to go to; none came.
    for (let i = 0; i < 50; i++) {
      clock.advance(100);
      await new Promise((r) => setImmediate(r));
    }
    expect(b.party.progress).toHaveLength(0);
    // The session itself is untouched.
    expect(ba.get().isConnected).toBe(true);
  });

  it('RFC 3515 §2.4.2: a REFER without Refer-To is answered 400 and the session stays up', async () => {
    const { clock, a, b } = await three(9);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { callee: ba } = await call(a, b, wait);
    // Build a REFER in the dialog by hand from B's side and drop the Refer-To.
    const dialog = ba.get().dialog;
    expect(dialog).toBeDefined();
    const req = dialog?.makeRequest('REFER') as SipRequest;
    let answer: SipResponse | undefined;
    b.dum.sendClient(req, b.profile, (res) => {
      answer = res;
    });
    await wait(() => answer !== undefined);
    expect(answer?.status).toBe(400);
    expect(a.party.refers).toHaveLength(0);
    expect(ba.get().isConnected).toBe(true);
  });

  it('RFC 4488 §4: Refer-Sub: false is honoured: 2xx with Refer-Sub: false, onReferNoSub, no NOTIFY', async () => {
    const { clock, a, b, c } = await three(10);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { callee: ba } = await call(a, b, wait);
    a.party.onReferDo = ({ sub, refer }) => {
      expect(sub.get().referSub).toBe(false);
      sub.get().acceptRefer(200);
      // The usage ended with the 2xx: the call is made from the REFER itself.
      expect(sub.isValid()).toBe(false);
      a.dum.send(a.dum.makeInviteSessionFromRefer(refer, a.profile, { body: OFFER }));
    };
    const refer = ba.get().refer(c.uri, { referSub: false });
    expect(refer.header('Refer-Sub')).toBe('false');
    expect(refer.headers('Supported').join(',')).toContain('norefersub');
    await wait(() => b.party.accepted.length === 1 && c.party.up.length === 1);
    expect(a.party.has('refer-nosub')).toBe(true);
    const { sub, res } = b.party.accepted[0] as { sub: unknown; res: SipResponse };
    expect(res.status).toBe(200);
    expect(res.header('Refer-Sub')).toBe('false');
    expect(sub).toBeUndefined();
    for (let i = 0; i < 50; i++) {
      clock.advance(100);
      await new Promise((r) => setImmediate(r));
    }
    expect(b.party.progress).toHaveLength(0);
    expect(c.party.incoming[0]?.invite.get<NameAddr>('Referred-By')?.uri.toString()).toContain(
      'bob@',
    );
  });

  it('RFC 3515 §2.4.5: the provisional responses of the new call are NOTIFYed (100, 180, then 486 ends it)', async () => {
    const { clock, a, b, c } = await three(11);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { callee: ba } = await call(a, b, wait);
    c.party.autoAnswer = false;
    a.party.onReferDo = ({ sub }) => {
      sub.get().acceptRefer();
      a.dum.send(a.dum.makeInviteSessionFromRefer(sub, a.profile, { body: OFFER }));
    };
    ba.get().refer(c.uri);
    await wait(() => c.party.incoming.length === 1);
    const incoming = c.party.incoming[0]?.h.get();
    incoming?.provisional(180);
    await wait(() => b.party.progress.length === 2);
    incoming?.reject(486);
    await wait(() => b.party.progress.length === 3);
    expect(b.party.progress.map((s) => s && `${s.status} ${s.reason}`)).toEqual([
      '100 Trying',
      '180 Ringing',
      '486 Busy Here',
    ]);
    expect(state(b.party.notifies[2])?.state).toBe('terminated');
    // The failed transfer leaves A and B talking.
    expect(ba.get().isConnected).toBe(true);
  });
});

describe('the implicit subscription shares the dialog (RFC 3515 §2.4.6)', () => {
  it('§2.4.6: the transferor hangs up right after the 202; the NOTIFYs still arrive in the kept dialog, then it goes', async () => {
    const { clock, a, b, c } = await three(15);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { caller: ab, callee: ba } = await call(a, b, wait);
    c.party.autoAnswer = false;
    a.party.onReferDo = ({ sub }) => {
      sub.get().acceptRefer();
      a.dum.send(a.dum.makeInviteSessionFromRefer(sub, a.profile, { body: OFFER }));
    };
    ba.get().refer(c.uri);
    await wait(() => b.party.accepted.length === 1);
    ba.get().end();
    await wait(() => a.party.ended.get(ab.id) === 'remote-bye' && b.party.ended.has(ba.id));
    // The session is gone, its dialog stays for the subscription.
    expect(ba.isValid()).toBe(false);
    expect(b.dum.dialogCount).toBe(1);
    await wait(() => c.party.incoming.length === 1);
    c.party.incoming[0]?.h.get().accept({ body: OFFER });
    await wait(() => b.party.progress.some((s) => s?.final === true));
    expect(b.party.progress.map((s) => s?.status)).toEqual([100, 200]);
    await wait(() => b.dum.dialogCount === 0 && a.dum.dialogCount === 1);
  });

  it('§2.4.4, RFC 6665 §4.1.2.3: the referrer ends the subscription (SUBSCRIBE Expires: 0, routed by Event id) and the notifier usage ends', async () => {
    const { clock, a, b, c } = await three(16);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { callee: ba } = await call(a, b, wait);
    a.party.onReferDo = ({ sub }) => sub.get().acceptRefer();
    const serverEvents: string[] = [];
    a.dum.addServerSubscriptionHandler('refer', {
      onTerminated: () => serverEvents.push('terminated'),
    });
    const terminated: (SipRequest | undefined)[] = [];
    b.dum.addClientSubscriptionHandler('refer', {
      onTerminated: (_h, n) => terminated.push(n),
    });
    ba.get().refer(c.uri);
    await wait(() => b.party.accepted.length === 1 && b.party.progress.length === 1);
    const sub = b.party.accepted[0]?.sub as Handle<ClientSubscription>;
    sub.get().end();
    await wait(() => terminated.length === 1);
    expect(state(terminated[0])?.state).toBe('terminated');
    expect(serverEvents).toEqual(['terminated']);
    const referSub = a.party.refers[0]?.sub;
    await wait(() => referSub?.isValid() === false);
    // Both sessions are still up, on the same dialog.
    expect(ba.get().isConnected).toBe(true);
    expect(b.dum.dialogCount).toBe(1);
    // The final NOTIFY repeats the current state (RFC 6665 §4.2.1.4): still 100 Trying.
    expect(b.party.progress.map((s) => s?.status)).toEqual([100, 100]);
    expect(state(b.party.notifies[1])?.state).toBe('terminated');
  });

  it('§2.4.6: two REFERs in one dialog get two subscriptions, told apart by id', async () => {
    const { clock, a, b } = await three(17);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { callee: ba } = await call(a, b, wait);
    a.party.onReferDo = ({ sub }) => sub.get().acceptRefer();
    const r1 = ba.get().refer('sip:carol@127.0.0.1:5063');
    const r2 = ba.get().refer('sip:dave@127.0.0.1:5064');
    await wait(() => a.party.refers.length === 2 && b.party.progress.length === 2);
    const [s1, s2] = a.party.refers.map((r) => r.sub.get());
    expect(s1?.eventId).toBe(String(r1.cseq.seq));
    expect(s2?.eventId).toBe(String(r2.cseq.seq));
    s2?.notifyProgress(503);
    s1?.notifyProgress(180);
    s1?.notifyProgress(200);
    await wait(() => b.party.progress.length === 5);
    const byId = (id: number) =>
      b.party.notifies
        .filter((n) => n.header('Event') === `refer;id=${id}`)
        .map((n) => parseSipfrag(n.body)?.status);
    expect(byId(r1.cseq.seq)).toEqual([100, 180, 200]);
    expect(byId(r2.cseq.seq)).toEqual([100, 503]);
  });
});

describe('REFER outside a dialog (RFC 3515 §2.4.1, §2.4.2)', () => {
  it('§2.4.2: the ServerSubscriptionHandler for refer takes it (onNewSubscriptionFromRefer); the referrer hears 202, 100, 200', async () => {
    const { clock, a, b, c } = await three(12);
    const wait = (cond: () => boolean) => until(clock, cond);
    const got: Handle<ServerReferSubscription>[] = [];
    b.dum.addServerSubscriptionHandler('refer', {
      onNewSubscriptionFromRefer: (h) => {
        got.push(h);
        h.get().acceptRefer();
        b.dum.send(b.dum.makeInviteSessionFromRefer(h, b.profile, { body: OFFER }));
      },
    });
    const seen: string[] = [];
    const statuses: (SipfragStatus | undefined)[] = [];
    const terminated: (SipRequest | undefined)[] = [];
    a.dum.addClientSubscriptionHandler('refer', {
      onReferAccepted: (_h, res) => seen.push(`accepted:${res.status}`),
      onReferRejected: (_h, res) => seen.push(`rejected:${res.status}`),
      onReferProgress: (_h, s) => statuses.push(s),
      onUpdateActive: () => seen.push('active'),
      onTerminated: (_h, n) => terminated.push(n),
    });
    const req = a.dum.makeRefer(b.uri, c.uri, a.profile);
    expect(req.method).toBe('REFER');
    expect(req.contacts).toHaveLength(1);
    expect(req.get<NameAddr>('Referred-By')?.uri.toString()).toContain('alice@');
    const h = a.dum.send<ClientSubscription>(req);
    await wait(() => terminated.length === 1);
    expect(got).toHaveLength(1);
    expect(seen).toContain('accepted:202');
    expect(seen).toContain('active');
    expect(statuses.map((s) => s?.status)).toEqual([100, 200]);
    expect(state(terminated[0])?.reason).toBe('noresource');
    expect(h.isValid()).toBe(false);
    expect(c.party.up).toHaveLength(1);
    expect(c.party.incoming[0]?.invite.get<NameAddr>('Referred-By')?.uri.toString()).toContain(
      'alice@',
    );
    await wait(() => a.dum.dialogCount === 0);
  });

  it('§2.4.2: without a refer handler an out-of-dialog REFER is answered 501; a failed REFER reaches onReferRejected', async () => {
    const { clock, a, b } = await three(13);
    const wait = (cond: () => boolean) => until(clock, cond);
    const seen: string[] = [];
    const terminated: unknown[] = [];
    a.dum.addClientSubscriptionHandler('refer', {
      onReferRejected: (_h, res) => seen.push(`rejected:${res.status}`),
      onTerminated: (_h, n) => terminated.push(n),
    });
    a.dum.send(a.dum.makeRefer(b.uri, 'sip:carol@127.0.0.1:5063', a.profile));
    await wait(() => terminated.length === 1);
    expect(seen).toEqual(['rejected:501']);
  });

  it('§2.4.5 against a raw notifier: a NOTIFY with a bad sipfrag is answered 200 and reported without a status', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 14 });
    const alice = await node(network, clock, 5061, 'alice');
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    const statuses: (SipfragStatus | undefined)[] = [];
    alice.dum.addClientSubscriptionHandler('refer', {
      onReferProgress: (_h, s) => statuses.push(s),
    });
    alice.dum.send(
      alice.dum.makeRefer('sip:bob@127.0.0.1:5090', 'sip:carol@example.test', alice.profile),
    );
    const refer = await peer.expectRequest('REFER');
    await peer.respond(refer, 202, {
      toTag: 'peer1',
      headers: [['Contact', '<sip:bob@127.0.0.1:5090>']],
    });
    const m = refer.message;
    const notify = (cseq: number, state: string, body: string, branch: string) =>
      `NOTIFY ${m.contacts[0]?.uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${branch}\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1:5090>;tag=peer1\r\nTo: ${m.header('From')}\r\n` +
      `Call-ID: ${m.callId}\r\nCSeq: ${cseq} NOTIFY\r\nContact: <sip:bob@127.0.0.1:5090>\r\n` +
      `Event: refer\r\nSubscription-State: ${state}\r\nContent-Type: message/sipfrag;version=2.0\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`;
    await peer.send(notify(1, 'active;expires=60', 'this is no status line', 'n1'), refer.source);
    expect((await peer.expectResponse(200, 'NOTIFY')).message.status).toBe(200);
    await peer.send(notify(2, 'active;expires=60', 'SIP/2.0 9999 What\r\n', 'n2'), refer.source);
    await peer.expectResponse(200, 'NOTIFY');
    await peer.send(
      notify(3, 'terminated;reason=noresource', 'SIP/2.0 200 OK\r\n', 'n3'),
      refer.source,
    );
    await peer.expectResponse(200, 'NOTIFY');
    expect(statuses.map((s) => s?.status)).toEqual([undefined, undefined, 200]);
    await until(clock, () => alice.dum.dialogCount === 0);
  });
});

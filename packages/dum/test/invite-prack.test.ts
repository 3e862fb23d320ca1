import { createResponse, type SipRequest, type SipResponse } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import {
  MemoryNetwork,
  MemoryTransport,
  ScriptedPeer,
  type ScriptStep,
  VirtualClock,
} from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type ClientInviteSession,
  DialogUsageManager,
  type ServerInviteSession,
} from '../src/index.ts';
import { SessionRecorder, sdp, sessionPair, until } from './support.ts';

const OFFER = sdp('alice', 4000);
const ANSWER = sdp('bob', 5000);
const A2 = sdp('alice', 4002, 2);
const B2 = sdp('bob', 5002, 2);

describe('reliable provisional responses between two DUMs (RFC 3262)', () => {
  it('§3/§4 offer in the INVITE, answer in a reliable 183: RSeq and Require: 100rel, PRACK with RAck, onPrack; the 200 carries no new description', async () => {
    const { a, b, clock } = await sessionPair();
    const caller = a.dum.send<ClientInviteSession>(
      a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile, { body: OFFER }),
    );
    await until(clock, () => b.rec.server !== undefined);
    const invite = b.rec.messages.get('new') as SipRequest;
    expect(invite.headers('Supported').join(',')).toContain('100rel');
    const callee = b.rec.server as NonNullable<typeof b.rec.server>;
    const r183 = callee.get().provisional(183, { body: ANSWER, reliable: true });
    expect(r183.header('Require')).toBe('100rel');
    const rseq = r183.get<number>('RSeq') as number;
    expect(rseq).toBeGreaterThanOrEqual(1);
    await until(clock, () => b.rec.has('prack'));
    const prack = b.rec.messages.get('prack') as SipRequest;
    expect(prack.header('RAck')).toBe(`${rseq} ${invite.cseq.seq} INVITE`);
    expect(prack.cseq.seq).toBe(invite.cseq.seq + 1);
    expect(a.rec.events).toEqual(['provisional:183', 'early-media', 'answer']);
    expect(caller.get().offerAnswer.phase).toBe('stable');
    callee.get().accept();
    await until(clock, () => a.rec.has('connected') && b.rec.has('connected'));
    // The CSeq numbers used in the early dialog carry over: a re-INVITE after it is accepted.
    b.rec.answer = B2;
    caller.get().provideOffer(A2);
    await until(clock, () => a.rec.count('answer') === 2);
    expect(a.rec.bodies.get('answer')).toBe(B2);
  });

  it('3GPP TS 24.930 §5 flow: INVITE without offer, offer in the reliable 183, answer in the PRACK; UPDATE in the early dialog (RFC 3311 §5.1); then 200 and ACK', async () => {
    const { a, b, clock } = await sessionPair();
    a.rec.answer = A2;
    const caller = a.dum.send<ClientInviteSession>(
      a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile),
    );
    await until(clock, () => b.rec.has('offer-required'));
    const callee = b.rec.server as NonNullable<typeof b.rec.server>;
    expect(() => callee.get().provisional(183, { reliable: true })).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    callee.get().provisional(183, { body: ANSWER, reliable: true });
    await until(clock, () => b.rec.has('prack'));
    expect(a.rec.bodies.get('offer')).toBe(ANSWER);
    expect(b.rec.bodies.get('answer')).toBe(A2);
    expect((b.rec.messages.get('answer') as SipRequest).method).toBe('PRACK');
    expect(callee.get().offerAnswer.phase).toBe('stable');
    // RFC 3311: a new offer in the early dialog, by UPDATE, from the caller.
    b.rec.answer = B2;
    caller.get().provideOffer(sdp('alice', 4004, 3));
    await until(clock, () => a.rec.count('answer') === 1);
    expect((b.rec.messages.get('offer') as SipRequest).method).toBe('UPDATE');
    expect(a.rec.bodies.get('answer')).toBe(B2);
    // And one from the callee.
    a.rec.answer = sdp('alice', 4006, 4);
    callee.get().provideOffer(sdp('bob', 5004, 3));
    await until(clock, () => b.rec.count('answer') === 2);
    callee.get().accept();
    await until(clock, () => a.rec.has('connected') && b.rec.has('connected'));
    expect(caller.get().offerAnswer.state).toMatchObject({ phase: 'stable' });
  });

  it('§4 / RFC 3261 §21.4.16 a caller that requires 100rel meets a callee with prack never: 420 with Unsupported: 100rel', async () => {
    const { a, b, clock } = await sessionPair();
    a.profile.set('prack', 'required');
    b.dum.masterProfile.set('prack', 'never');
    a.dum.send(a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile, { body: OFFER }));
    await until(clock, () => a.rec.has('failure:420'));
    const res = a.rec.messages.get('failure') as SipResponse;
    expect(res.headers('Unsupported')).toEqual(['100rel']);
    expect(b.rec.has('new')).toBe(false);
  });

  it('§3 / RFC 3261 §21.4.19 a callee in prack required mode refuses an INVITE without 100rel: 421 with Require: 100rel', async () => {
    const { a, b, clock } = await sessionPair();
    a.profile.set('prack', 'never');
    b.dum.masterProfile.set('prack', 'required');
    const req = a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile, { body: OFFER });
    expect(req.headers('Supported').join(',')).not.toContain('100rel');
    a.dum.send(req);
    await until(clock, () => a.rec.has('failure:421'));
    expect((a.rec.messages.get('failure') as SipResponse).header('Require')).toBe('100rel');
    expect(b.rec.has('new')).toBe(false);
    expect(b.dum.handles.size).toBe(0);
  });

  it('§3 in prack required mode every provisional is reliable, and the 2xx waits for the PRACK', async () => {
    const { a, b, clock } = await sessionPair();
    b.dum.masterProfile.set('prack', 'required');
    a.dum.send(a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile, { body: OFFER }));
    await until(clock, () => b.rec.server !== undefined);
    const callee = b.rec.server as NonNullable<typeof b.rec.server>;
    const r180 = callee.get().provisional(180);
    expect(r180.has('RSeq')).toBe(true);
    expect(() => callee.get().provisional(180, { reliable: false })).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    callee.get().accept({ body: ANSWER });
    await until(clock, () => a.rec.has('connected'));
    const prackAt = b.rec.events.indexOf('prack');
    expect(prackAt).toBeGreaterThanOrEqual(0);
    expect(prackAt).toBeLessThan(b.rec.events.indexOf('connected'));
  });
});

// ---- wire transcripts: the DUM as UAS against a scripted caller, and as UAC against a scripted callee ----

async function world() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 11 });
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, port: 5080 }));
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  const rec = new SessionRecorder();
  dum.setInviteSessionHandler(rec);
  const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
  const profile = dum.makeUserProfile({ aor: '<sip:alice@example.test>' });
  return { clock, dum, rec, peer, profile, dumAddress: { address: '127.0.0.1', port: 5080 } };
}

const CALL_ID = 'prack-call@127.0.0.1';

/** A request from the scripted caller (From tag `peer`). */
function fromPeer(
  method: string,
  cseq: number,
  branch: string,
  options?: { toTag?: string; body?: string; headers?: string[] },
): string {
  const body = options?.body ?? '';
  const to = `<sip:alice@example.test>${options?.toTag ? `;tag=${options.toTag}` : ''}`;
  return (
    `${method} sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${branch}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:bob@example.test>;tag=peer\r\nTo: ${to}\r\n` +
    `Call-ID: ${CALL_ID}\r\nCSeq: ${cseq} ${method}\r\nContact: <sip:bob@127.0.0.1:5090>\r\n` +
    (options?.headers ?? []).map((h) => `${h}\r\n`).join('') +
    (body ? 'Content-Type: application/sdp\r\n' : '') +
    `Content-Length: ${body.length}\r\n\r\n${body}`
  );
}

describe('RFC 3262 on the wire, the DUM as UAS', () => {
  async function incoming(headers = ['Supported: 100rel']) {
    const w = await world();
    await w.peer.send(fromPeer('INVITE', 1, 'inv', { body: OFFER, headers }), w.dumAddress);
    await until(w.clock, () => w.rec.server !== undefined);
    return { ...w, callee: w.rec.server as NonNullable<typeof w.rec.server> };
  }

  it('§3 one reliable 1xx at a time: the 183 waits for the PRACK of the 180; a PRACK matching none gets 481', async () => {
    const { peer, callee, dumAddress, rec } = await incoming();
    callee.get().provisional(180, { reliable: true });
    callee.get().provisional(183, { reliable: true, body: ANSWER });
    const r180 = await peer.expectResponse(180, 'INVITE');
    const rseq = r180.message.get<number>('RSeq') as number;
    const tag = r180.message.to.tag as string;
    await peer.expectNothing(200);
    // A PRACK for an RSeq we never sent: 481 (§3).
    await peer.send(
      fromPeer('PRACK', 2, 'p0', { toTag: tag, headers: [`RAck: ${rseq + 5} 1 INVITE`] }),
      dumAddress,
    );
    await peer.expectResponse(481, 'PRACK');
    await peer.send(
      fromPeer('PRACK', 3, 'p1', { toTag: tag, headers: [`RAck: ${rseq} 1 INVITE`] }),
      dumAddress,
    );
    await peer.expectResponse(200, 'PRACK');
    const r183 = await peer.expectResponse(183, 'INVITE');
    expect(r183.message.get<number>('RSeq')).toBe(rseq + 1);
    expect(r183.message.bodyText).toBe(ANSWER);
    expect(rec.count('prack')).toBe(1);
    // The 2xx waits for the PRACK of the 183.
    callee.get().accept();
    await peer.expectNothing(200);
    await peer.send(
      fromPeer('PRACK', 4, 'p2', { toTag: tag, headers: [`RAck: ${rseq + 1} 1 INVITE`] }),
      dumAddress,
    );
    await peer.expectResponse(200, 'PRACK');
    const ok = await peer.expectResponse(200, 'INVITE');
    expect(ok.message.body.length).toBe(0);
  });

  it('§3 a reliable 1xx is resent at T1, 2T1, 4T1 ... and, without a PRACK for 64*T1, the INVITE gets a 5xx', async () => {
    const { peer, callee, clock, rec } = await incoming();
    const t0 = clock.now();
    callee.get().provisional(180, { reliable: true });
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      await peer.expectResponse(180, 'INVITE');
      times.push(clock.now() - t0);
    }
    // Sent at 0, then T1 (500), 3*T1 (1500), 7*T1 (3500), within a step of the clock.
    expect(times[1]).toBeGreaterThanOrEqual(500);
    expect(times[1]).toBeLessThan(600);
    expect(times[2]).toBeGreaterThanOrEqual(1500);
    expect(times[3]).toBeGreaterThanOrEqual(3500);
    const failed = await peer.expectResponse(500, 'INVITE', { withinMs: 40_000 });
    expect(clock.now() - t0).toBeGreaterThanOrEqual(64 * 500);
    expect(failed.message.reason).toContain('PRACK');
    expect(rec.events.at(-1)).toBe('terminated:timeout');
    expect(callee.isValid()).toBe(false);
  });

  it('RFC 3261 §9.2 a CANCEL while the 2xx waits for a PRACK: 487 to the INVITE, no 2xx', async () => {
    const { peer, callee, dumAddress, rec } = await incoming();
    callee.get().provisional(180, { reliable: true });
    await peer.expectResponse(180, 'INVITE');
    callee.get().accept({ body: ANSWER });
    const cancel = fromPeer('INVITE', 1, 'inv')
      .replace(/INVITE/g, 'CANCEL')
      .replace(/Contact: [^\r]*\r\n/, '');
    await peer.send(cancel, dumAddress);
    await peer.expectResponse(200, 'CANCEL');
    await peer.expectResponse(487, 'INVITE');
    expect(rec.events.at(-1)).toBe('terminated:cancelled');
    expect(callee.isValid()).toBe(false);
  });

  it('§5 an offer in the PRACK is answered in its 200, from onOffer', async () => {
    const { peer, callee, dumAddress, rec } = await incoming();
    callee.get().provisional(183, { reliable: true, body: ANSWER });
    const r183 = await peer.expectResponse(183, 'INVITE');
    rec.answer = B2;
    await peer.send(
      fromPeer('PRACK', 2, 'p1', {
        toTag: r183.message.to.tag as string,
        headers: [`RAck: ${r183.message.get<number>('RSeq')} 1 INVITE`],
        body: A2,
      }),
      dumAddress,
    );
    const ok = await peer.expectResponse(200, 'PRACK');
    expect(ok.message.bodyText).toBe(B2);
    expect(rec.bodies.get('offer')).toBe(A2);
    expect((callee.get() as ServerInviteSession).offerAnswer.phase).toBe('stable');
  });

  it('RFC 3311 §5.1 an UPDATE from the caller in the early dialog after the PRACK: answered in its 200; the 2xx to the INVITE waits for it', async () => {
    const { peer, callee, dumAddress, rec, clock } = await incoming();
    callee.get().provisional(183, { reliable: true, body: ANSWER });
    const r183 = await peer.expectResponse(183, 'INVITE');
    const tag = r183.message.to.tag as string;
    await peer.send(
      fromPeer('PRACK', 2, 'p1', {
        toTag: tag,
        headers: [`RAck: ${r183.message.get<number>('RSeq')} 1 INVITE`],
      }),
      dumAddress,
    );
    await peer.expectResponse(200, 'PRACK');
    await peer.send(fromPeer('UPDATE', 3, 'u1', { toTag: tag, body: A2 }), dumAddress);
    await until(clock, () => rec.count('offer') === 2);
    expect((rec.messages.get('offer') as SipRequest).method).toBe('UPDATE');
    expect(() => callee.get().accept()).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    callee.get().provideAnswer(B2);
    const ok = await peer.expectResponse(200, 'UPDATE');
    expect(ok.message.bodyText).toBe(B2);
    callee.get().accept();
    const final = await peer.expectResponse(200, 'INVITE');
    expect(final.message.body.length).toBe(0);
  });

  it('RFC 3261 §8.2.2.3 a caller requiring 100rel from a UAS with prack never gets 420 Unsupported: 100rel', async () => {
    const { peer, dumAddress, dum } = await world();
    dum.masterProfile.set('prack', 'never');
    await peer.send(
      fromPeer('INVITE', 1, 'inv', { body: OFFER, headers: ['Require: 100rel'] }),
      dumAddress,
    );
    const res = await peer.expectResponse(420, 'INVITE');
    expect(res.message.headers('Unsupported')).toEqual(['100rel']);
  });
});

describe('RFC 3262 on the wire, the DUM as UAC', () => {
  /** A response of the scripted callee to the INVITE, with To tag b1. */
  function reply(
    invite: ScriptStep & { message: SipRequest },
    status: number,
    headers: [string, string][] = [],
    body?: string,
  ): SipResponse {
    return createResponse(invite.message, status, undefined, {
      toTag: 'b1',
      headers: [['Contact', '<sip:bob@127.0.0.1:5090>'], ...headers],
      ...(body !== undefined ? { body, contentType: 'application/sdp' } : {}),
    });
  }

  it('§4 a retransmitted reliable 1xx is not PRACKed again; one out of order is dropped; the next in sequence is', async () => {
    const { peer, dum, rec, profile } = await world();
    dum.send(dum.makeInviteSession('sip:bob@127.0.0.1:5090', profile, { body: OFFER }));
    const invite = await peer.expectRequest('INVITE');
    expect(invite.message.headers('Supported').join(',')).toContain('100rel');
    const rel = (rseq: number, status = 183, body?: string) =>
      reply(
        invite,
        status,
        [
          ['Require', '100rel'],
          ['RSeq', String(rseq)],
        ],
        body,
      );
    await peer.send(rel(7, 183, ANSWER), invite.source);
    const prack = await peer.expectRequest('PRACK');
    expect(prack.message.header('RAck')).toBe(`7 ${invite.message.cseq.seq} INVITE`);
    expect(prack.message.to.tag).toBe('b1');
    await peer.respond(prack, 200, { toTag: 'b1' });
    await peer.send(rel(7, 183, ANSWER), invite.source);
    await peer.send(rel(9, 180), invite.source);
    await peer.expectNothing(300);
    await peer.send(rel(8, 180), invite.source);
    const second = await peer.expectRequest('PRACK');
    expect(second.message.header('RAck')).toBe(`8 ${invite.message.cseq.seq} INVITE`);
    expect(second.message.cseq.seq).toBe(prack.message.cseq.seq + 1);
    expect(rec.events).toEqual(['provisional:183', 'early-media', 'answer', 'provisional:180']);
  });

  it('§4 a reliable 1xx without RSeq cannot be acknowledged and is dropped', async () => {
    const { peer, dum, rec, profile } = await world();
    dum.send(dum.makeInviteSession('sip:bob@127.0.0.1:5090', profile, { body: OFFER }));
    const invite = await peer.expectRequest('INVITE');
    await peer.send(reply(invite, 183, [['Require', '100rel']], ANSWER), invite.source);
    await peer.expectNothing(300);
    expect(rec.events).toEqual([]);
  });
});

describe('an offer of the caller in the PRACK (RFC 3262 §5, RFC 6337 §3.1)', () => {
  /** A calls B with OFFER; B answers it in a reliable 183; `onAnswer` of A runs `then`. */
  async function earlyAnswered(then: (caller: ClientInviteSession) => void) {
    const pair = await sessionPair();
    const { a, b, clock } = pair;
    const caller = a.dum.send<ClientInviteSession>(
      a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile, { body: OFFER }),
    );
    const onAnswer = a.rec.onAnswer.bind(a.rec);
    let first = true;
    a.rec.onAnswer = (h, m, body) => {
      onAnswer(h, m, body);
      if (first) {
        first = false;
        then(caller.get());
      }
    };
    await until(clock, () => b.rec.server !== undefined);
    const callee = b.rec.server as NonNullable<typeof b.rec.server>;
    callee.get().provisional(183, { body: ANSWER, reliable: true });
    return { ...pair, caller, callee };
  }

  it('§5 the answer came in a reliable 183; provideOffer from onAnswer puts a new offer in the PRACK, answered in its 200 (onAnswer)', async () => {
    const { a, b, clock, caller, callee } = await earlyAnswered((s) => s.provideOffer(A2));
    b.rec.answer = B2;
    await until(clock, () => a.rec.count('answer') === 2);
    const prack = b.rec.messages.get('prack') as SipRequest;
    expect(prack.bodyText).toBe(A2);
    expect(prack.header('Content-Type')).toBe('application/sdp');
    expect(b.rec.bodies.get('offer')).toBe(A2);
    const ok = a.rec.messages.get('answer') as SipResponse;
    expect(ok.cseq.method).toBe('PRACK');
    expect(a.rec.bodies.get('answer')).toBe(B2);
    // No UPDATE or re-INVITE was needed: the PRACK carried the offer.
    expect(caller.get().isModifying).toBe(false);
    callee.get().accept();
    await until(clock, () => a.rec.has('connected') && b.rec.has('connected'));
    const oa = caller.get().offerAnswer.state;
    expect(oa.phase).toBe('stable');
    if (oa.phase === 'stable') {
      expect(new TextDecoder().decode(oa.local.body)).toBe(A2);
      expect(new TextDecoder().decode(oa.remote.body)).toBe(B2);
    }
    expect(callee.get().offerAnswer.phase).toBe('stable');
    expect(a.rec.events.some((e) => e.startsWith('rejected'))).toBe(false);
  });

  it('§5 the callee does not answer the offer in the PRACK: 488 to the PRACK, onOfferRejected, the early answer stays', async () => {
    const { a, b, clock, caller, callee } = await earlyAnswered((s) => s.provideOffer(A2));
    b.rec.answer = undefined;
    await until(clock, () => a.rec.has('rejected:488'));
    const oa = caller.get().offerAnswer.state;
    expect(oa.phase).toBe('stable');
    if (oa.phase === 'stable') {
      expect(new TextDecoder().decode(oa.local.body)).toBe(OFFER);
      expect(new TextDecoder().decode(oa.remote.body)).toBe(ANSWER);
    }
    // The reliable 183 was acknowledged all the same: the 2xx goes.
    callee.get().accept();
    await until(clock, () => a.rec.has('connected') && b.rec.has('connected'));
    expect(b.rec.has('prack')).toBe(true);
  });

  it('§5 provideOffer from onProvisional of a later reliable 180 (the exchange already complete) puts the offer in that PRACK', async () => {
    const { a, b, clock } = await sessionPair();
    const caller = a.dum.send<ClientInviteSession>(
      a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile, { body: OFFER }),
    );
    const onProvisional = a.rec.onProvisional.bind(a.rec);
    a.rec.onProvisional = (h, r) => {
      onProvisional(h, r);
      if (r.status === 180) h.get().provideOffer(A2);
    };
    b.rec.answer = B2;
    await until(clock, () => b.rec.server !== undefined);
    const callee = b.rec.server as NonNullable<typeof b.rec.server>;
    callee.get().provisional(183, { body: ANSWER, reliable: true });
    callee.get().provisional(180, { reliable: true });
    await until(clock, () => a.rec.count('answer') === 2);
    expect(b.rec.bodies.get('offer')).toBe(A2);
    expect((b.rec.messages.get('offer') as SipRequest).method).toBe('PRACK');
    expect(a.rec.bodies.get('answer')).toBe(B2);
    expect(caller.get().offerAnswer.phase).toBe('stable');
  });

  it('RFC 6337 §3.1 no new offer while the INVITE offer is unanswered: provideOffer from onProvisional of the answering 1xx throws, the PRACK has no body', async () => {
    const { a, b, clock } = await sessionPair();
    let thrown: unknown;
    const onProvisional = a.rec.onProvisional.bind(a.rec);
    a.rec.onProvisional = (h, r) => {
      onProvisional(h, r);
      try {
        h.get().provideOffer(A2);
      } catch (e) {
        thrown = e;
      }
    };
    a.dum.send<ClientInviteSession>(
      a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile, { body: OFFER }),
    );
    await until(clock, () => b.rec.server !== undefined);
    b.rec.server?.get().provisional(183, { body: ANSWER, reliable: true });
    await until(clock, () => b.rec.has('prack'));
    expect((thrown as { code?: string }).code).toBe('SIP_ERR_DUM_STATE');
    expect((b.rec.messages.get('prack') as SipRequest).body.length).toBe(0);
    expect(a.rec.events).toEqual(['provisional:183', 'early-media', 'answer']);
  });
});

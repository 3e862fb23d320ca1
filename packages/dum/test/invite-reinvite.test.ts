import { createResponse, type SipRequest } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import {
  MemoryNetwork,
  MemoryTransport,
  ScriptedPeer,
  type ScriptStep,
  VirtualClock,
} from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import { type ClientInviteSession, DialogUsageManager } from '../src/index.ts';
import { establish, SessionRecorder, sdp, sessionPair, until } from './support.ts';

const A2 = sdp('alice', 4002, 2);
const B2 = sdp('bob', 5002, 2);

describe('re-INVITE (RFC 3261 §14)', () => {
  it('§14.1 the caller sends a re-INVITE with a new offer: onOffer, provideAnswer (200), ACK, onAnswer', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    b.rec.answer = B2;
    caller.get().provideOffer(A2);
    expect(() => caller.get().provideOffer(A2)).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    await until(clock, () => a.rec.count('answer') === 2);
    expect(b.rec.bodies.get('offer')).toBe(A2);
    expect(a.rec.bodies.get('answer')).toBe(B2);
    const reinvite = b.rec.messages.get('offer') as SipRequest;
    expect(reinvite.method).toBe('INVITE');
    expect(reinvite.cseq.seq).toBe(caller.get().request.cseq.seq + 1);
    expect(caller.get().offerAnswer.state).toMatchObject({ phase: 'stable' });
    await until(clock, () => !callee.get().isModifying);
    expect(callee.get().offerAnswer.phase).toBe('stable');
    expect(caller.get().state).toBe('connected');
    expect(callee.get().state).toBe('connected');
  });

  it('§14.1 the callee sends a re-INVITE (UAS-side dialog): the caller answers it', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    a.rec.answer = A2;
    callee.get().provideOffer(B2);
    await until(clock, () => b.rec.count('answer') === 1);
    expect(a.rec.bodies.get('offer')).toBe(B2);
    expect(b.rec.bodies.get('answer')).toBe(A2);
    expect((a.rec.messages.get('offer') as SipRequest).from.tag).toBe(
      callee.get().dialog?.id.localTag,
    );
    await until(clock, () => !caller.get().isModifying);
    // The session goes on: a BYE from the caller ends it.
    caller.get().end();
    await until(clock, () => !callee.isValid());
  });

  it('§14.2 an offerless re-INVITE: onOfferRequired, the offer in the 200, the answer in the ACK', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller } = await establish(a, b, clock);
    b.rec.offerOnRequest = B2;
    a.rec.answer = A2;
    caller.get().requestOffer();
    await until(clock, () => b.rec.count('answer') === 1);
    expect(b.rec.has('offer-required')).toBe(true);
    const ok = a.rec.messages.get('offer');
    expect(ok && 'status' in ok ? ok.status : 0).toBe(200);
    expect(a.rec.bodies.get('offer')).toBe(B2);
    const ack = b.rec.messages.get('answer') as SipRequest;
    expect(ack.method).toBe('ACK');
    expect(b.rec.bodies.get('answer')).toBe(A2);
    expect(caller.get().offerAnswer.state).toMatchObject({ phase: 'stable' });
  });

  it('§14.2 a re-INVITE refused with 488: onOfferRejected, the session and its last offer/answer stay', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    const before = caller.get().offerAnswer.state;
    b.rec.rejectWith = 488;
    caller.get().provideOffer(A2);
    await until(clock, () => a.rec.has('rejected:488'));
    expect(caller.get().offerAnswer.state).toEqual(before);
    expect(callee.get().offerAnswer.phase).toBe('stable');
    expect(caller.get().state).toBe('connected');
    // A new offer may follow.
    b.rec.rejectWith = undefined;
    b.rec.answer = B2;
    caller.get().provideOffer(A2);
    await until(clock, () => a.rec.count('answer') === 2);
  });

  it('§14.2 the application refuses through reject() after onOffer; a second reject() throws', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    caller.get().provideOffer(A2);
    await until(
      clock,
      () =>
        b.rec.has('offer') &&
        b.rec.messages.get('offer') !== undefined &&
        b.rec.count('offer') === 2,
    );
    callee.get().reject(606);
    expect(() => callee.get().reject(488)).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    await until(clock, () => a.rec.has('rejected:606'));
    expect(callee.get().isConnected).toBe(true);
  });

  it('RFC 3311 §5.1 UPDATE in a confirmed dialog: the callee offers by UPDATE, the caller answers in the 200; no ACK', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    a.rec.answer = A2;
    callee.get().provideOffer(B2, 'application/sdp', { method: 'UPDATE' });
    expect(callee.get().isModifying).toBe(true);
    await until(clock, () => b.rec.count('answer') === 1);
    const update = a.rec.messages.get('offer') as SipRequest;
    expect(update.method).toBe('UPDATE');
    expect(update.headers('Allow').join(',')).toContain('UPDATE');
    const ok = b.rec.messages.get('answer');
    expect(ok && 'status' in ok ? ok.status : 0).toBe(200);
    expect(b.rec.bodies.get('answer')).toBe(A2);
    expect(callee.get().isModifying).toBe(false);
    expect(caller.get().isModifying).toBe(false);
  });

  it('§14.1 glare: both sides send a re-INVITE at once, both get 491; the non-owner of the Call-ID retries first (0-2 s), then the owner (2.1-4 s)', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    a.rec.answer = sdp('alice', 4003, 3);
    b.rec.answer = B2;
    caller.get().provideOffer(A2);
    callee.get().provideOffer(sdp('bob', 5003, 3));
    await until(clock, () => a.rec.count('answer') === 2 && b.rec.count('answer') === 1, {
      steps: 1000,
      stepMs: 10,
    });
    // The callee's retry came first: the caller answered it before its own retry got through.
    const callerOffer = a.rec.messages.get('offer') as SipRequest;
    const calleeOffer = b.rec.messages.get('offer') as SipRequest;
    expect(callerOffer.from.tag).toBe(callee.get().dialog?.id.localTag);
    expect(calleeOffer.cseq.seq).toBe(caller.get().request.cseq.seq + 2);
    expect(a.rec.has('rejected:491') || b.rec.has('rejected:491')).toBe(false);
    expect(caller.get().offerAnswer.phase).toBe('stable');
    expect(callee.get().offerAnswer.phase).toBe('stable');
  });

  it('§14.1 a second re-INVITE is refused locally while the first is pending; provideAnswer without an offer throws', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller } = await establish(a, b, clock);
    expect(() => caller.get().provideAnswer(A2)).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    caller.get().requestOffer();
    expect(() => caller.get().requestOffer()).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    await until(clock, () => b.rec.has('offer-required'));
  });
});

// ---- wire transcripts: target refresh, glare, illegal sequences ----

async function scripted() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 3 });
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, port: 5080 }));
  await stack.start();
  const dum = new DialogUsageManager({ stack, random: () => 0.5 });
  const rec = new SessionRecorder();
  dum.setInviteSessionHandler(rec);
  const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
  const profile = dum.makeUserProfile({ aor: '<sip:alice@example.test>' });
  const h = dum.send<ClientInviteSession>(
    dum.makeInviteSession('sip:bob@127.0.0.1:5090', profile, { body: sdp('alice', 4000) }),
  );
  const invite = await peer.expectRequest('INVITE');
  await peer.send(
    createResponse(invite.message, 200, undefined, {
      toTag: 'b1',
      headers: [['Contact', '<sip:bob@127.0.0.1:5090>']],
      body: sdp('bob', 5000),
      contentType: 'application/sdp',
    }),
    invite.source,
  );
  await peer.expectRequest('ACK');
  const dumAddress = { address: '127.0.0.1', port: 5080 };
  /** A request from the peer in the dialog. */
  const inDialog = (
    method: string,
    cseq: number,
    branch: string,
    options?: { body?: string; contact?: string },
  ): string => {
    const body = options?.body ?? '';
    return (
      `${method} sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${branch}\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1:5090>;tag=b1\r\nTo: ${invite.message.header('From')}\r\n` +
      `Call-ID: ${invite.message.callId}\r\nCSeq: ${cseq} ${method}\r\n` +
      `Contact: ${options?.contact ?? '<sip:bob@127.0.0.1:5090>'}\r\n` +
      (body ? 'Content-Type: application/sdp\r\n' : '') +
      `Content-Length: ${body.length}\r\n\r\n${body}`
    );
  };
  return { clock, dum, rec, peer, h, invite, inDialog, dumAddress };
}

/** The peer answers a request of ours in the dialog, with its Contact and a body. */
async function answerWith(
  peer: ScriptedPeer,
  step: ScriptStep & { message: SipRequest },
  status: number,
  body?: string,
): Promise<void> {
  const res = createResponse(step.message, status, undefined, {
    toTag: 'b1',
    headers: [['Contact', '<sip:bob@127.0.0.1:5090>']],
    ...(body !== undefined ? { body, contentType: 'application/sdp' } : {}),
  });
  await peer.send(res, step.source);
}

describe('re-INVITE and UPDATE on the wire (scripted peer)', () => {
  it('§12.2.2 / RFC 6141 §3.4 a re-INVITE from the peer with a new Contact refreshes the remote target: our BYE goes there', async () => {
    const { rec, peer, h, inDialog, dumAddress } = await scripted();
    rec.answer = A2;
    await peer.send(
      inDialog('INVITE', 2, 'r1', { body: B2, contact: '<sip:bob@127.0.0.1:5090;moved=1>' }),
      dumAddress,
    );
    const ok = await peer.expectResponse(200, 'INVITE');
    expect(ok.message.bodyText).toBe(A2);
    expect(ok.message.contacts[0]?.uri.user).toBe('alice');
    expect(ok.message.headers('Allow').join(',')).toContain('UPDATE');
    await peer.send(inDialog('ACK', 2, 'r1ack'), dumAddress);
    h.get().end({ reason: { cause: 200, text: 'Call completed elsewhere' } });
    const bye = await peer.expectRequest('BYE');
    expect(bye.message.uri.params.get('moved')).toBe('1');
    // RFC 3326 §2: the Reason header the application gave.
    expect(bye.message.header('Reason')).toBe('SIP ;cause=200 ;text="Call completed elsewhere"');
    await peer.respond(bye, 200);
  });

  it('§13.3.1.4 our 2xx to a re-INVITE is retransmitted until the ACK; without an ACK in 64*T1 the session ends with a BYE', async () => {
    const { rec, peer, inDialog, dumAddress } = await scripted();
    rec.answer = A2;
    await peer.send(inDialog('INVITE', 2, 'r1', { body: B2 }), dumAddress);
    await peer.expectResponse(200, 'INVITE');
    await peer.expectResponse(200, 'INVITE', { withinMs: 1000 });
    const bye = await peer.expectRequest('BYE', { withinMs: 40_000 });
    await peer.respond(bye, 200);
    expect(rec.has('terminated:timeout')).toBe(true);
  });

  it('§14.2 a re-INVITE while ours is in progress gets 491; a 491 to ours is retried after 2.1-4 s by the Call-ID owner (§14.1)', async () => {
    const { clock, rec, peer, h, inDialog, dumAddress } = await scripted();
    h.get().provideOffer(A2);
    const ours = await peer.expectRequest('INVITE');
    await peer.send(inDialog('INVITE', 2, 'g1', { body: B2 }), dumAddress);
    await peer.expectResponse(491, 'INVITE');
    await peer.respond(ours, 491);
    const ack = await peer.expectRequest('ACK');
    expect(ack.message.cseq.seq).toBe(ours.message.cseq.seq);
    const t0 = clock.now();
    const retry = await peer.expectRequest('INVITE', { withinMs: 5000 });
    // random() is 0.5: 2.1 s + 95 * 10 ms.
    expect(clock.now() - t0).toBeGreaterThanOrEqual(2100);
    expect(clock.now() - t0).toBeLessThanOrEqual(4000);
    expect(retry.message.cseq.seq).toBe(ours.message.cseq.seq + 1);
    expect(retry.message.bodyText).toBe(A2);
    await answerWith(peer, retry, 200, B2);
    await peer.expectRequest('ACK');
    await until(clock, () => rec.count('answer') === 2);
    expect(rec.bodies.get('answer')).toBe(B2);
  });

  it('RFC 3311 §5.2 an UPDATE with an offer while ours is pending gets 491; one on top of an unanswered offer gets 500 with Retry-After', async () => {
    const { clock, rec, peer, h, inDialog, dumAddress } = await scripted();
    h.get().provideOffer(A2, 'application/sdp', { method: 'UPDATE' });
    const ours = await peer.expectRequest('UPDATE');
    await peer.send(inDialog('UPDATE', 2, 'u1', { body: B2 }), dumAddress);
    await peer.expectResponse(491, 'UPDATE');
    await answerWith(peer, ours, 200, B2);
    await until(clock, () => rec.count('answer') === 2);
    // The peer's offer, unanswered by the application; a second offer gets 500.
    const B3 = sdp('bob', 5003, 3);
    await peer.send(inDialog('UPDATE', 3, 'u2', { body: B3 }), dumAddress);
    await until(clock, () => rec.count('offer') === 1);
    await peer.send(inDialog('UPDATE', 4, 'u3', { body: B3 }), dumAddress);
    const refused = await peer.expectResponse(500, 'UPDATE');
    const retryAfter = Number(refused.message.header('Retry-After'));
    expect(retryAfter).toBeGreaterThanOrEqual(0);
    expect(retryAfter).toBeLessThanOrEqual(10);
    h.get().provideAnswer(A2);
    const ok = await peer.expectResponse(200, 'UPDATE');
    expect(ok.message.bodyText).toBe(A2);
    expect(h.get().offerAnswer.phase).toBe('stable');
  });

  it("§15.1.2 a BYE while the peer's re-INVITE is unanswered: 200 to the BYE, 487 to the re-INVITE", async () => {
    const { clock, rec, peer, inDialog, dumAddress } = await scripted();
    await peer.send(inDialog('INVITE', 2, 'r1', { body: B2 }), dumAddress);
    await until(clock, () => rec.count('offer') === 1);
    await peer.send(inDialog('BYE', 3, 'b1'), dumAddress);
    await peer.expectResponse(200, 'BYE');
    await peer.expectResponse(487, 'INVITE');
    expect(rec.events.at(-1)).toBe('terminated:remote-bye');
  });

  it('RFC 4028 §7.4 / RFC 6337 §5.3 a re-INVITE offering the session unchanged is answered at once with our description, without onOffer', async () => {
    const { peer, rec, inDialog, dumAddress } = await scripted();
    await peer.send(inDialog('INVITE', 2, 'r1', { body: sdp('bob', 5000) }), dumAddress);
    const ok = await peer.expectResponse(200, 'INVITE');
    expect(ok.message.bodyText).toBe(sdp('alice', 4000));
    expect(rec.has('offer')).toBe(false);
    await peer.send(inDialog('ACK', 2, 'r1ack'), dumAddress);
  });

  it("§9.2 / §14.2 a CANCEL for the peer's unanswered re-INVITE: 487, and the session stays as it was", async () => {
    const { clock, rec, peer, h, inDialog, dumAddress } = await scripted();
    const before = h.get().offerAnswer.state;
    await peer.send(inDialog('INVITE', 2, 'r1', { body: B2 }), dumAddress);
    await until(clock, () => rec.count('offer') === 1);
    const cancel = inDialog('INVITE', 2, 'r1')
      .replace(/INVITE/g, 'CANCEL')
      .replace(/Contact: [^\r]*\r\n/, '');
    await peer.send(cancel, dumAddress);
    await peer.expectResponse(200, 'CANCEL');
    await peer.expectResponse(487, 'INVITE');
    expect(h.get().offerAnswer.state).toEqual(before);
    expect(() => h.get().provideAnswer(A2)).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    expect(h.get().state).toBe('connected');
  });

  it("RFC 3311 §5.2 an UPDATE offer while the peer's re-INVITE waits for its ACK gets 500 with Retry-After", async () => {
    const { peer, rec, inDialog, dumAddress } = await scripted();
    rec.answer = A2;
    await peer.send(inDialog('INVITE', 2, 'r1', { body: B2 }), dumAddress);
    await peer.expectResponse(200, 'INVITE');
    await peer.send(inDialog('UPDATE', 3, 'u1', { body: sdp('bob', 5003, 3) }), dumAddress);
    const refused = await peer.expectResponse(500, 'UPDATE');
    expect(refused.message.has('Retry-After')).toBe(true);
    await peer.send(inDialog('ACK', 2, 'r1ack'), dumAddress);
    expect(rec.count('offer')).toBe(1);
  });

  it('RFC 3261 §17.1.2.2 an UPDATE offer the application leaves unanswered gets 500 after 64*T1, and the session takes offers again', async () => {
    const { clock, peer, rec, h, inDialog, dumAddress } = await scripted();
    await peer.send(inDialog('UPDATE', 2, 'u1', { body: B2 }), dumAddress);
    await until(clock, () => rec.count('offer') === 1);
    const t0 = clock.now();
    await peer.expectResponse(500, 'UPDATE', { withinMs: 40_000, stepMs: 100 });
    expect(clock.now() - t0).toBeGreaterThanOrEqual(32_000);
    expect(h.get().isModifying).toBe(false);
    expect(h.get().offerAnswer.phase).toBe('stable');
    rec.answer = A2;
    await peer.send(inDialog('UPDATE', 3, 'u2', { body: sdp('bob', 5003, 3) }), dumAddress);
    await peer.expectResponse(200, 'UPDATE');
  });

  it('RFC 3311 §5.2 an UPDATE without a body is a target refresh, answered 200 at once', async () => {
    const { peer, h, inDialog, dumAddress } = await scripted();
    await peer.send(
      inDialog('UPDATE', 2, 'u1', { contact: '<sip:bob@127.0.0.1:5090;gen=2>' }),
      dumAddress,
    );
    const ok = await peer.expectResponse(200, 'UPDATE');
    expect(ok.message.body.length).toBe(0);
    expect(h.get().dialog?.remoteTarget.params.get('gen')).toBe('2');
  });

  it('RFC 3262 §4 a reliable 183 to our re-INVITE is PRACKed; its description is the answer, the 200 has none', async () => {
    const { clock, rec, peer, h } = await scripted();
    h.get().provideOffer(A2);
    const ours = await peer.expectRequest('INVITE');
    expect(ours.message.headers('Supported').join(',')).toContain('100rel');
    const r183 = createResponse(ours.message, 183, undefined, {
      toTag: 'b1',
      headers: [
        ['Contact', '<sip:bob@127.0.0.1:5090>'],
        ['Require', '100rel'],
        ['RSeq', '42'],
      ],
      body: B2,
      contentType: 'application/sdp',
    });
    await peer.send(r183, ours.source);
    const prack = await peer.expectRequest('PRACK');
    expect(prack.message.header('RAck')).toBe(`42 ${ours.message.cseq.seq} INVITE`);
    await peer.respond(prack, 200, { toTag: 'b1' });
    await answerWith(peer, ours, 200);
    await peer.expectRequest('ACK');
    await until(clock, () => rec.count('answer') === 2);
    expect(rec.bodies.get('answer')).toBe(B2);
    expect(rec.has('rejected:200')).toBe(false);
    expect(h.get().offerAnswer.phase).toBe('stable');
  });

  it('§12.2.1.2 a 481 to our re-INVITE ends the session with a BYE', async () => {
    const { rec, peer, h } = await scripted();
    h.get().provideOffer(A2);
    const ours = await peer.expectRequest('INVITE');
    await peer.respond(ours, 481);
    await peer.expectRequest('ACK');
    const bye = await peer.expectRequest('BYE');
    await peer.respond(bye, 481);
    expect(rec.has('terminated:error')).toBe(true);
  });

  it('RFC 6337 §3.1 an offerless re-INVITE while the peer has an unanswered UPDATE offer gets 500', async () => {
    const { clock, rec, peer, inDialog, dumAddress } = await scripted();
    await peer.send(inDialog('UPDATE', 2, 'u1', { body: B2 }), dumAddress);
    await until(clock, () => rec.count('offer') === 1);
    await peer.send(inDialog('INVITE', 3, 'r1'), dumAddress);
    await peer.expectResponse(500, 'INVITE');
  });
});

describe('BYE with a Reason header (RFC 3326)', () => {
  it('§2 end({ reason }) from the callee puts the Reason in its BYE; a value that does not parse throws before anything is sent', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    expect(() => callee.get().end({ reason: 'SIP ;cause=200\r\nX-Injected: 1' })).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    expect(() => callee.get().end({ reason: ';;' })).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    expect(callee.get().state).toBe('connected');
    callee.get().end({ reason: 'Q.850 ;cause=16 ;text="Normal call clearing"' });
    await until(clock, () => !caller.isValid());
    const bye = a.rec.messages.get('terminated') as SipRequest;
    expect(bye.method).toBe('BYE');
    expect(bye.header('Reason')).toBe('Q.850 ;cause=16 ;text="Normal call clearing"');
  });
});

describe('re-INVITE from the callee, on the wire', () => {
  it("§13.2.2.4 a 2xx to the callee's re-INVITE retransmitted after its transaction ended is ACKed again", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 21 });
    const stack = new SipStack({ clock });
    await stack.addTransport(new MemoryTransport({ network, port: 5080 }));
    await stack.start();
    const dum = new DialogUsageManager({ stack });
    const rec = new SessionRecorder();
    dum.setInviteSessionHandler(rec);
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    const dumAddress = { address: '127.0.0.1', port: 5080 };
    const head = (method: string, cseq: number, branch: string, toTag?: string) =>
      `${method} sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${branch}\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:bob@example.test>;tag=peer\r\nTo: <sip:alice@example.test>${toTag ? `;tag=${toTag}` : ''}\r\n` +
      `Call-ID: callee-reinvite@test\r\nCSeq: ${cseq} ${method}\r\nContact: <sip:bob@127.0.0.1:5090>\r\n`;
    const offer = sdp('bob', 5000);
    await peer.send(
      `${head('INVITE', 1, 'i1')}Content-Type: application/sdp\r\nContent-Length: ${offer.length}\r\n\r\n${offer}`,
      dumAddress,
    );
    await until(clock, () => rec.server !== undefined);
    const callee = rec.server as NonNullable<typeof rec.server>;
    callee.get().accept({ body: sdp('alice', 4000) });
    const ok = await peer.expectResponse(200, 'INVITE');
    const tag = ok.message.to.tag as string;
    await peer.send(`${head('ACK', 1, 'a1', tag)}Content-Length: 0\r\n\r\n`, dumAddress);
    await until(clock, () => rec.has('connected'));
    callee.get().provideOffer(A2);
    const reinvite = await peer.expectRequest('INVITE');
    expect(reinvite.message.from.tag).toBe(tag);
    const answer = createResponse(reinvite.message, 200, undefined, {
      headers: [['Contact', '<sip:bob@127.0.0.1:5090>']],
      body: B2,
      contentType: 'application/sdp',
    });
    await peer.send(answer, reinvite.source);
    const ack = await peer.expectRequest('ACK');
    expect(ack.message.cseq.seq).toBe(reinvite.message.cseq.seq);
    // Long after the transaction: the same 2xx again.
    await peer.expectNothing(40_000, 100);
    await peer.send(answer, reinvite.source);
    const again = await peer.expectRequest('ACK');
    expect(again.message.cseq.seq).toBe(reinvite.message.cseq.seq);
    expect(rec.count('answer')).toBe(1);
  });
});

describe('cancelling our re-INVITE and rolling back (RFC 3261 §9.1, §14.1; RFC 6337 §3.3.3)', () => {
  const ALICE1 = sdp('alice', 4000);
  const BOB1 = sdp('bob', 5000);

  /** A reliable 183 to `ours` carrying `body` (RFC 3262 §3). */
  function reliable183(ours: SipRequest, body: string, rseq = 7) {
    return createResponse(ours, 183, undefined, {
      toTag: 'b1',
      headers: [
        ['Contact', '<sip:bob@127.0.0.1:5090>'],
        ['Require', '100rel'],
        ['RSeq', String(rseq)],
      ],
      body,
      contentType: 'application/sdp',
    });
  }

  it('§9.1 + §14.1 cancelModification() before any provisional waits for one; then CANCEL, 487, onOfferRejected; the session and its descriptions stay', async () => {
    const { clock, rec, peer, h } = await scripted();
    h.get().provideOffer(A2);
    const ours = await peer.expectRequest('INVITE');
    expect(h.get().cancelModification()).toBe(true);
    // §9.1: no CANCEL before a provisional response (the re-INVITE is retransmitted at T1).
    await peer.expectNothing(400);
    await peer.respond(ours, 100);
    const cancel = await peer.expectRequest('CANCEL');
    expect(cancel.message.cseq.seq).toBe(ours.message.cseq.seq);
    expect(cancel.message.headers('Via')[0]).toBe(ours.message.headers('Via')[0]);
    await peer.respond(cancel, 200, { toTag: 'b1' });
    await answerWith(peer, ours, 487);
    // The INVITE transaction ACKs the 487 itself (§17.1.1.3).
    const ack = await peer.expectRequest('ACK');
    expect(ack.message.cseq.seq).toBe(ours.message.cseq.seq);
    await until(clock, () => rec.has('rejected:487'));
    const s = h.get();
    expect(s.isConnected).toBe(true);
    expect(s.isModifying).toBe(false);
    const oa = s.offerAnswer.state;
    expect(oa.phase).toBe('stable');
    if (oa.phase === 'stable') {
      expect(new TextDecoder().decode(oa.local.body)).toBe(ALICE1);
      expect(new TextDecoder().decode(oa.remote.body)).toBe(BOB1);
    }
    // The session takes a new re-INVITE.
    s.provideOffer(sdp('alice', 4004, 3));
    const next = await peer.expectRequest('INVITE');
    expect(next.message.cseq.seq).toBe(ours.message.cseq.seq + 1);
  });

  it('RFC 6337 §3.3.3 the answer came in a reliable 183, then the re-INVITE fails (500): the previous descriptions are restored', async () => {
    const { clock, rec, peer, h } = await scripted();
    h.get().provideOffer(A2);
    const ours = await peer.expectRequest('INVITE');
    await peer.send(reliable183(ours.message, B2), ours.source);
    const prack = await peer.expectRequest('PRACK');
    await peer.respond(prack, 200, { toTag: 'b1' });
    await until(clock, () => h.get().offerAnswer.phase === 'stable');
    // The early answer made the new descriptions current for a moment...
    const early = h.get().offerAnswer.state;
    expect(early.phase === 'stable' && new TextDecoder().decode(early.remote.body)).toBe(B2);
    await answerWith(peer, ours, 500);
    await peer.expectRequest('ACK');
    await until(clock, () => rec.has('rejected:500'));
    // ...and the failure takes them back (§14.1: the session is as before the re-INVITE).
    const oa = h.get().offerAnswer.state;
    expect(oa.phase).toBe('stable');
    if (oa.phase === 'stable') {
      expect(new TextDecoder().decode(oa.local.body)).toBe(ALICE1);
      expect(new TextDecoder().decode(oa.remote.body)).toBe(BOB1);
    }
    expect(rec.has('answer')).toBe(true); // the INVITE's answer only
    expect(rec.count('answer')).toBe(1);
    expect(h.get().isConnected).toBe(true);
  });

  it('§9.1 + RFC 6337 §3.3.3 cancelModification() after a reliable 183 with the answer: CANCEL at once, 487, the old descriptions restored', async () => {
    const { clock, rec, peer, h } = await scripted();
    h.get().provideOffer(A2);
    const ours = await peer.expectRequest('INVITE');
    await peer.send(reliable183(ours.message, B2), ours.source);
    const prack = await peer.expectRequest('PRACK');
    await peer.respond(prack, 200, { toTag: 'b1' });
    await until(clock, () => h.get().offerAnswer.phase === 'stable');
    expect(h.get().cancelModification()).toBe(true);
    expect(h.get().cancelModification()).toBe(true); // once asked, asking again does nothing
    const cancel = await peer.expectRequest('CANCEL');
    await peer.respond(cancel, 200, { toTag: 'b1' });
    await answerWith(peer, ours, 487);
    await until(clock, () => rec.has('rejected:487'));
    const oa = h.get().offerAnswer.state;
    expect(oa.phase === 'stable' && new TextDecoder().decode(oa.remote.body)).toBe(BOB1);
    expect(oa.phase === 'stable' && new TextDecoder().decode(oa.local.body)).toBe(ALICE1);
  });

  it('§9.1 a 2xx crossing our CANCEL wins: the re-INVITE is ACKed and its answer taken', async () => {
    const { clock, rec, peer, h } = await scripted();
    h.get().provideOffer(A2);
    const ours = await peer.expectRequest('INVITE');
    await peer.respond(ours, 100);
    h.get().cancelModification();
    const cancel = await peer.expectRequest('CANCEL');
    // The peer had answered already: 200 to the CANCEL, and the 2xx to the re-INVITE.
    await peer.respond(cancel, 200, { toTag: 'b1' });
    await answerWith(peer, ours, 200, B2);
    const ack = await peer.expectRequest('ACK');
    expect(ack.message.cseq.seq).toBe(ours.message.cseq.seq);
    await until(clock, () => rec.count('answer') === 2);
    expect(rec.bodies.get('answer')).toBe(B2);
    expect(rec.events.some((e) => e.startsWith('rejected'))).toBe(false);
  });

  it('§14.1 cancelModification() while our re-INVITE waits to be sent again after a 491: it is not sent; a 491 after our CANCEL is not retried', async () => {
    const { clock, rec, peer, h } = await scripted();
    h.get().provideOffer(A2);
    const ours = await peer.expectRequest('INVITE');
    await answerWith(peer, ours, 491);
    await peer.expectRequest('ACK');
    expect(h.get().isModifying).toBe(true); // waiting for the retry
    expect(h.get().cancelModification()).toBe(true);
    expect(h.get().isModifying).toBe(false);
    await peer.expectNothing(5000);
    // Again, cancelled after a 100; the peer answers 491 rather than 487: no retry either.
    h.get().provideOffer(sdp('alice', 4004, 3));
    const second = await peer.expectRequest('INVITE');
    await peer.respond(second, 100);
    h.get().cancelModification();
    const cancel = await peer.expectRequest('CANCEL');
    await peer.respond(cancel, 200, { toTag: 'b1' });
    await answerWith(peer, second, 491);
    await peer.expectRequest('ACK');
    await until(clock, () => rec.has('rejected:491'));
    await peer.expectNothing(5000);
    expect(h.get().offerAnswer.phase).toBe('stable');
  });

  it('§9 cancelModification() returns false with nothing pending and throws for an UPDATE', async () => {
    const { peer, h } = await scripted();
    expect(h.get().cancelModification()).toBe(false);
    h.get().provideOffer(A2, 'application/sdp', { method: 'UPDATE' });
    await peer.expectRequest('UPDATE');
    expect(() => h.get().cancelModification()).toThrow(/UPDATE cannot be cancelled/);
  });

  it('§14.1 between two DUMs: the caller cancels its re-INVITE the callee has not answered; 487, both sessions stay and the callee offers next', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    b.rec.answer = undefined; // the callee's application does not answer
    caller.get().provideOffer(A2);
    await until(clock, () => b.rec.count('offer') === 2);
    expect(caller.get().cancelModification()).toBe(true);
    // The callee's transaction sends 100 Trying after 200 ms; the CANCEL follows it.
    await until(clock, () => a.rec.has('rejected:487'), { steps: 2000 });
    expect(caller.get().isConnected).toBe(true);
    expect(callee.get().isConnected).toBe(true);
    expect(callee.get().isModifying).toBe(false);
    expect(callee.get().offerAnswer.phase).toBe('stable');
    a.rec.answer = sdp('alice', 4006, 3);
    callee.get().provideOffer(B2);
    await until(clock, () => b.rec.count('answer') === 1);
    expect(b.rec.bodies.get('answer')).toBe(sdp('alice', 4006, 3));
  });
});

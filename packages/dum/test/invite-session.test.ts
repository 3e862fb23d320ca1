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
  type DialogId,
  DialogUsageManager,
  type Handle,
  type InviteSession,
  type InviteSessionHandler,
  OfferAnswer,
  ServerAuthManager,
  type ServerInviteSession,
  toDescription,
  type UserProfile,
} from '../src/index.ts';
import { node as dumNode, until } from './support.ts';

const OFFER =
  'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER =
  'v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** An InviteSessionHandler that records what happens, as short strings, and keeps the handles. */
class Recorder implements InviteSessionHandler {
  readonly events: string[] = [];
  readonly bodies = new Map<string, string>();
  server: Handle<ServerInviteSession> | undefined;
  /** What to do with a new incoming session (nothing by default: the test drives it). */
  onIncoming: ((h: Handle<ServerInviteSession>, invite: SipRequest) => void) | undefined;
  /** How to answer an offer in a 2xx (late offer); no answer when unset. */
  answerInAck: string | undefined;

  has(e: string): boolean {
    return this.events.includes(e);
  }
  onNewSession(h: Handle<ServerInviteSession>, invite: SipRequest): void {
    this.server = h;
    this.events.push('new');
    this.onIncoming?.(h, invite);
  }
  onProvisional(_h: Handle<ClientInviteSession>, r: SipResponse): void {
    this.events.push(`provisional:${r.status}`);
  }
  onEarlyMedia(_h: Handle<ClientInviteSession>, r: SipResponse): void {
    this.events.push('early-media');
    this.bodies.set('early-media', r.bodyText);
  }
  onOffer(h: Handle<InviteSession>, _m: SipRequest | SipResponse, body: Uint8Array): void {
    this.events.push('offer');
    this.bodies.set('offer', text(body));
    const s = h.get();
    if (this.answerInAck !== undefined && 'provideAnswer' in s)
      (s as ClientInviteSession).provideAnswer(this.answerInAck);
  }
  onOfferRequired(): void {
    this.events.push('offer-required');
  }
  onAnswer(_h: Handle<InviteSession>, _m: SipRequest | SipResponse, body: Uint8Array): void {
    this.events.push('answer');
    this.bodies.set('answer', text(body));
  }
  onConnected(): void {
    this.events.push('connected');
  }
  onFailure(_h: Handle<ClientInviteSession>, r: SipResponse): void {
    this.events.push(`failure:${r.status}`);
  }
  onForkDestroyed(): void {
    this.events.push('fork-destroyed');
  }
  onAckReceived(): void {
    this.events.push('ack');
  }
  onAckNotReceived(): void {
    this.events.push('ack-not-received');
  }
  onInfo(h: Handle<InviteSession>, info: SipRequest): void {
    this.events.push(`info:${info.bodyText}`);
    h.get().acceptNit();
  }
  onTerminated(_h: Handle<InviteSession>, reason: string): void {
    this.events.push(`terminated:${reason}`);
  }
}

interface Node {
  dum: DialogUsageManager;
  profile: UserProfile;
  port: number;
  rec: Recorder;
}

async function node(
  network: MemoryNetwork,
  clock: VirtualClock,
  port: number,
  user: string,
): Promise<Node> {
  const n = await dumNode(network, clock, port, user);
  const rec = new Recorder();
  n.dum.setInviteSessionHandler(rec);
  return { ...n, rec };
}

async function pair(): Promise<{ a: Node; b: Node; clock: VirtualClock }> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 5 });
  const a = await node(network, clock, 5061, 'alice');
  const b = await node(network, clock, 5062, 'bob');
  return { a, b, clock };
}

/** A call from a to b; `offer: null` for a late offer. */
function call(a: Node, b: Node, offer: string | null = OFFER): Handle<ClientInviteSession> {
  const req = a.dum.makeInviteSession(
    `sip:bob@127.0.0.1:${b.port}`,
    a.profile,
    offer === null ? undefined : { body: offer },
  );
  return a.dum.send<ClientInviteSession>(req);
}

/** A call from a to b, up on both sides. */
async function connected(a: Node, b: Node, clock: VirtualClock) {
  const caller = call(a, b);
  await until(clock, () => b.rec.server !== undefined);
  b.rec.server?.get().provisional(180);
  await until(clock, () => a.rec.has('provisional:180'));
  b.rec.server?.get().accept({ body: ANSWER });
  await until(clock, () => a.rec.has('connected') && b.rec.has('connected'));
  return { caller, callee: b.rec.server as Handle<ServerInviteSession> };
}

describe('InviteSession between two DUMs', () => {
  it('RFC 3261 §13 basic call: INVITE, 180, 200, ACK; then BYE from the caller (§15.1.1)', async () => {
    const { a, b, clock } = await pair();
    const { caller, callee } = await connected(a, b, clock);
    expect(b.rec.events).toEqual(['new', 'offer', 'ack', 'connected']);
    expect(b.rec.bodies.get('offer')).toBe(OFFER);
    expect(a.rec.events).toEqual(['provisional:180', 'answer', 'connected']);
    expect(a.rec.bodies.get('answer')).toBe(ANSWER);
    const id = caller.get().dialog?.id as DialogId;
    expect(a.dum.findInviteSession(id)?.id).toBe(caller.id);
    expect(b.dum.findInviteSession(callee.get().dialog?.id as DialogId)?.id).toBe(callee.id);
    caller.get().end();
    await until(clock, () => b.rec.has('terminated:remote-bye') && !caller.isValid());
    expect(a.rec.events.at(-1)).toBe('terminated:local-bye');
    expect(callee.isValid()).toBe(false);
    expect(a.dum.dialogCount + b.dum.dialogCount).toBe(0);
  });

  it('RFC 3261 §12.1.2: the caller hears of its new session once, at the first dialog-making response (a 1xx with a To tag, or the 2xx)', async () => {
    for (const ring of [true, false]) {
      const { a, b, clock } = await pair();
      const seen: string[] = [];
      Object.assign(a.rec, {
        onNewClientSession: (h: Handle<ClientInviteSession>, r: SipResponse) => {
          seen.push(`new:${r.status}:${h.get().state}`);
          a.rec.events.push('new-client');
        },
      });
      const caller = call(a, b);
      await until(clock, () => b.rec.server !== undefined);
      if (ring) {
        b.rec.server?.get().provisional(180);
        await until(clock, () => a.rec.has('provisional:180'));
      }
      b.rec.server?.get().accept({ body: ANSWER });
      await until(clock, () => a.rec.has('connected'));
      expect(seen).toEqual([ring ? 'new:180:early' : 'new:200:calling']);
      expect(caller.get().isConnected).toBe(true);
      expect(a.rec.events).toEqual(
        ring
          ? ['new-client', 'provisional:180', 'answer', 'connected']
          : ['new-client', 'answer', 'connected'],
      );
    }
  });

  it('RFC 3261 §13.3.1.4 once the ACK came, the INVITE the callee keeps holds only its bytes: what was parsed to answer it is read again on use', async () => {
    const { a, b, clock } = await pair();
    let seen: { from: unknown; to: unknown } | undefined;
    b.rec.onIncoming = (_h, invite) => {
      seen = { from: invite.from, to: invite.to };
    };
    const { caller, callee } = await connected(a, b, clock);
    const invite = callee.get().request;
    expect(invite.from).not.toBe(seen?.from);
    expect(invite.to).not.toBe(seen?.to);
    expect(String(invite.from)).toBe(String(seen?.from));
    expect(invite.bodyText).toBe(OFFER);
    // The call goes on as before: a BYE from the caller ends it.
    caller.get().end();
    await until(clock, () => b.rec.has('terminated:remote-bye') && !caller.isValid());
  });

  it('RFC 3261 §15.1.1 basic call ended by the callee: BYE, 200', async () => {
    const { a, b, clock } = await pair();
    const { caller, callee } = await connected(a, b, clock);
    callee.get().end();
    await until(clock, () => a.rec.has('terminated:remote-bye') && !callee.isValid());
    expect(b.rec.events.at(-1)).toBe('terminated:local-bye');
    expect(caller.isValid()).toBe(false);
  });

  it('RFC 3261 §13.3.1.3 busy: 486 reaches onFailure, then onTerminated(rejected)', async () => {
    const { a, b, clock } = await pair();
    b.rec.onIncoming = (h) => h.get().reject(486);
    const caller = call(a, b);
    await until(clock, () => a.rec.has('terminated:rejected'));
    expect(a.rec.events).toEqual(['failure:486', 'terminated:rejected']);
    expect(b.rec.events).toEqual(['new', 'terminated:rejected']);
    expect(caller.isValid()).toBe(false);
  });

  it('RFC 3261 §9 no answer, the caller cancels: CANCEL, 487 to the INVITE, onTerminated(cancelled) on both sides', async () => {
    const { a, b, clock } = await pair();
    b.rec.onIncoming = (h) => h.get().provisional(180);
    const caller = call(a, b);
    await until(clock, () => a.rec.has('provisional:180'));
    caller.get().end();
    await until(
      clock,
      () => a.rec.has('terminated:cancelled') && b.rec.has('terminated:cancelled'),
    );
    expect(a.rec.events).toEqual(['provisional:180', 'terminated:cancelled']);
    expect(caller.isValid()).toBe(false);
    expect(b.rec.server?.isValid()).toBe(false);
  });

  it('RFC 3261 §13.2.1 late offer: the offer in the 200, the answer in the ACK', async () => {
    const { a, b, clock } = await pair();
    a.rec.answerInAck = ANSWER;
    b.rec.onIncoming = (h) => h.get().accept({ body: OFFER });
    call(a, b, null);
    await until(clock, () => b.rec.has('connected'));
    expect(b.rec.events).toEqual(['new', 'ack', 'answer', 'connected']);
    expect(b.rec.bodies.get('answer')).toBe(ANSWER);
    expect(a.rec.events).toEqual(['offer', 'connected']);
    expect(a.rec.bodies.get('offer')).toBe(OFFER);
  });

  it('RFC 3261 §13.2.1 late offer left unanswered: the ACK goes without a body and the callee ends the session', async () => {
    const { a, b, clock } = await pair();
    b.rec.onIncoming = (h) => h.get().accept({ body: OFFER });
    const caller = call(a, b, null);
    await until(clock, () => b.rec.has('terminated:error') && !caller.isValid());
    expect(a.rec.events).toEqual(['offer', 'connected', 'terminated:remote-bye']);
    expect(b.rec.events).toEqual(['new', 'terminated:error']);
  });

  it('RFC 3261 §15 the callee ends the call before the ACK: its BYE waits for the ACK', async () => {
    const { a, b, clock } = await pair();
    b.rec.onIncoming = (h) => {
      h.get().accept({ body: ANSWER });
      h.get().end();
      expect(h.get().state).toBe('accepted');
    };
    call(a, b);
    await until(clock, () => a.rec.has('terminated:remote-bye'));
    expect(a.rec.events).toEqual(['answer', 'connected', 'terminated:remote-bye']);
    expect(b.rec.events).toEqual(['new', 'ack', 'terminated:local-bye']);
  });

  it('RFC 3261 §13.2.1 early media: a 183 with SDP, its description is the answer', async () => {
    const { a, b, clock } = await pair();
    b.rec.onIncoming = (h) => h.get().provisional(183, { body: ANSWER });
    call(a, b);
    await until(clock, () => a.rec.has('early-media'));
    expect(a.rec.bodies.get('early-media')).toBe(ANSWER);
    b.rec.server?.get().accept({ body: ANSWER });
    await until(clock, () => a.rec.has('connected'));
    expect(a.rec.events).toEqual(['provisional:183', 'early-media', 'answer', 'connected']);
  });

  it('RFC 3261 §12.2.2 INFO within the dialog reaches onInfo; a lower CSeq gets 500', async () => {
    const { a, b, clock } = await pair();
    const { caller } = await connected(a, b, clock);
    const dialog = caller.get().dialog;
    if (!dialog) throw new Error('no dialog');
    const results: number[] = [];
    const info = dialog.makeRequest('INFO', { body: 'one', contentType: 'text/plain' });
    a.dum.sendClient(info, a.profile, (r) => results.push(r.status));
    await until(clock, () => results.length === 1);
    expect(results).toEqual([200]);
    expect(b.rec.has('info:one')).toBe(true);
    const old = dialog.makeRequest('INFO', { cseq: 1, body: 'old', contentType: 'text/plain' });
    a.dum.sendClient(old, a.profile, (r) => results.push(r.status));
    await until(clock, () => results.length === 2);
    expect(results[1]).toBe(500);
  });

  it('a handle is stale after the call ended: get() throws, findInviteSession finds nothing', async () => {
    const { a, b, clock } = await pair();
    const { caller, callee } = await connected(a, b, clock);
    const id = caller.get().dialog?.id as DialogId;
    callee.get().end();
    await until(clock, () => !caller.isValid() && !callee.isValid());
    expect(() => caller.get()).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STALE_HANDLE' }),
    );
    expect(a.dum.findInviteSession(id)).toBeUndefined();
    expect(a.dum.handles.size + b.dum.handles.size).toBe(0);
  });

  it('RFC 3261 §8.2 without an InviteSessionHandler an INVITE gets 501; makeInviteSession needs one', async () => {
    const { a, b, clock } = await pair();
    b.dum.setInviteSessionHandler(undefined);
    call(a, b);
    await until(clock, () => a.rec.has('terminated:rejected'));
    expect(a.rec.events[0]).toBe('failure:501');
    a.dum.setInviteSessionHandler(undefined);
    expect(() => a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile)).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_NO_HANDLER' }),
    );
  });
});

// ---- wire transcripts against a scripted peer ----

async function scripted() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 13 });
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, port: 5080 }));
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  const rec = new Recorder();
  dum.setInviteSessionHandler(rec);
  const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
  const profile = dum.makeUserProfile({ aor: '<sip:alice@example.test>' });
  return { clock, dum, rec, peer, profile, dumAddress: { address: '127.0.0.1', port: 5080 } };
}

const PEER_CONTACT: [string, string] = ['Contact', '<sip:bob@127.0.0.1:5090>'];

/** A response from the scripted peer, with a Contact and optionally a body. */
function answer(
  step: ScriptStep & { message: SipRequest },
  status: number,
  toTag: string,
  body?: string,
): SipResponse {
  return createResponse(step.message, status, undefined, {
    toTag,
    headers: [PEER_CONTACT],
    ...(body !== undefined ? { body, contentType: 'application/sdp' } : {}),
  });
}

function inviteFromPeer(branch: string, callId: string, body = OFFER): string {
  return (
    `INVITE sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${branch}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:bob@example.test>;tag=peer\r\nTo: <sip:alice@example.test>\r\n` +
    `Call-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.1:5090>\r\n` +
    `Content-Type: application/sdp\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  );
}

function ackFromPeer(branch: string, callId: string, toTag: string): string {
  return (
    `ACK sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${branch}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:bob@example.test>;tag=peer\r\nTo: <sip:alice@example.test>;tag=${toTag}\r\n` +
    `Call-ID: ${callId}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`
  );
}

describe('InviteSession wire transcripts (scripted peer, virtual clock)', () => {
  it('RFC 3261 §9.1 caller cancels: no CANCEL before a provisional; CANCEL, 200, 487, ACK', async () => {
    const { dum, rec, peer, profile } = await scripted();
    dum.masterProfile.set('supportedOptionTags', ['x-test']);
    const h = dum.send<ClientInviteSession>(
      dum.makeInviteSession('sip:bob@127.0.0.1:5090', profile, { body: OFFER }),
    );
    const invite = await peer.expectRequest('INVITE');
    expect(invite.message.headers('Allow')).toContain('INVITE');
    expect(invite.message.headers('Supported')).toEqual(['x-test', '100rel']);
    expect(invite.message.contacts.length).toBe(1);
    expect(invite.message.bodyText).toBe(OFFER);
    h.get().end();
    // §9.1: the CANCEL waits for a provisional response.
    await peer.expectNothing(100);
    await peer.send(answer(invite, 180, 'b1'), invite.source);
    const cancel = await peer.expectRequest('CANCEL');
    expect(cancel.message.cseq.seq).toBe(invite.message.cseq.seq);
    expect(cancel.message.via[0]?.branch).toBe(invite.message.via[0]?.branch);
    await peer.respond(cancel, 200, { toTag: 'b1' });
    await peer.send(answer(invite, 487, 'b1'), invite.source);
    const ack = await peer.expectRequest('ACK');
    expect(ack.message.to.tag).toBe('b1');
    expect(rec.events.at(-1)).toBe('terminated:cancelled');
    expect(h.isValid()).toBe(false);
  });

  it('RFC 3261 §9.1 a 200 crossing the CANCEL wins: ACK, then BYE', async () => {
    const { dum, rec, peer, profile } = await scripted();
    const h = dum.send<ClientInviteSession>(
      dum.makeInviteSession('sip:bob@127.0.0.1:5090', profile, { body: OFFER }),
    );
    const invite = await peer.expectRequest('INVITE');
    await peer.send(answer(invite, 180, 'b1'), invite.source);
    await peer.expectNothing(50);
    h.get().end();
    const cancel = await peer.expectRequest('CANCEL');
    await peer.send(answer(invite, 200, 'b1', ANSWER), invite.source);
    await peer.respond(cancel, 200, { toTag: 'b1' });
    const ack = await peer.expectRequest('ACK');
    expect(ack.message.cseq.seq).toBe(invite.message.cseq.seq);
    expect(ack.message.uri.toString()).toBe('sip:bob@127.0.0.1:5090');
    const bye = await peer.expectRequest('BYE');
    expect(bye.message.to.tag).toBe('b1');
    expect(bye.message.cseq.seq).toBe(invite.message.cseq.seq + 1);
    expect(h.isValid()).toBe(true);
    await peer.respond(bye, 200);
    await peer.expectNothing(100);
    expect(rec.events).toEqual(['provisional:180', 'terminated:local-bye']);
    expect(h.isValid()).toBe(false);
  });

  it('RFC 3261 §9.2 callee side: a CANCEL after the 200 is answered 200 and the call stays up until BYE', async () => {
    const { clock, rec, peer, dumAddress } = await scripted();
    rec.onIncoming = (h) => h.get().accept({ body: ANSWER });
    await peer.send(inviteFromPeer('x1', 'cx1@peer'), dumAddress);
    const ok = await peer.expectResponse(200, 'INVITE');
    const tag = ok.message.to.tag as string;
    expect(ok.message.contacts.length).toBe(1);
    expect(ok.message.bodyText).toBe(ANSWER);
    await peer.send(
      'CANCEL sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKx1\r\n' +
        'Max-Forwards: 70\r\nFrom: <sip:bob@example.test>;tag=peer\r\nTo: <sip:alice@example.test>\r\n' +
        'Call-ID: cx1@peer\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n',
      dumAddress,
    );
    await peer.expectResponse(200, 'CANCEL');
    await peer.send(ackFromPeer('x2', 'cx1@peer', tag), dumAddress);
    await until(clock, () => rec.has('connected'));
    expect(rec.events).toEqual(['new', 'ack', 'connected']);
    await peer.send(
      `BYE sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKx3\r\n` +
        `Max-Forwards: 70\r\nFrom: <sip:bob@example.test>;tag=peer\r\nTo: <sip:alice@example.test>;tag=${tag}\r\n` +
        'Call-ID: cx1@peer\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n',
      dumAddress,
    );
    await peer.expectResponse(200, 'BYE');
    expect(rec.events.at(-1)).toBe('terminated:remote-bye');
  });

  it('RFC 3261 §13.3.1.4 once ACKed, the callee keeps only the INVITE bytes: request reads back an equal INVITE, the dialog goes on (§12.2.2 CSeq, §15 BYE)', async () => {
    const { clock, rec, peer, dumAddress, dum } = await scripted();
    let given: SipRequest | undefined;
    rec.onIncoming = (h, invite) => {
      given = invite;
      h.get().accept({ body: ANSWER });
    };
    const wire = inviteFromPeer('k1', 'ck1@peer');
    await peer.send(wire, dumAddress);
    const ok = await peer.expectResponse(200, 'INVITE');
    const tag = ok.message.to.tag as string;
    const session = rec.server?.get() as ServerInviteSession;
    expect(session.request).toBe(given);
    await peer.send(ackFromPeer('k2', 'ck1@peer', tag), dumAddress);
    await until(clock, () => rec.has('connected'));
    // The parsed INVITE is gone; what request gives is parsed again from the same bytes.
    const again = session.request;
    expect(again).not.toBe(given);
    expect(again.toString()).toBe(wire);
    expect(again.from.tag).toBe('peer');
    expect(session.request).toBe(again);
    expect(session.dialogSet.creator).toBe(again);
    // A retransmitted ACK (same CSeq as the INVITE) changes nothing.
    await peer.send(ackFromPeer('k2', 'ck1@peer', tag), dumAddress);
    await peer.expectNothing(1_000, 50);
    await peer.send(
      `BYE sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKk3\r\n` +
        `Max-Forwards: 70\r\nFrom: <sip:bob@example.test>;tag=peer\r\nTo: <sip:alice@example.test>;tag=${tag}\r\n` +
        'Call-ID: ck1@peer\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n',
      dumAddress,
    );
    await peer.expectResponse(200, 'BYE');
    expect(rec.events).toEqual(['new', 'ack', 'connected', 'terminated:remote-bye']);
    expect(dum.dialogCount).toBe(0);
  });

  it('RFC 3261 §13.3.1.4 the UAS retransmits its 2xx over UDP (T1, 2*T1, ... up to T2) until the ACK', async () => {
    const { clock, rec, peer, dumAddress } = await scripted();
    rec.onIncoming = (h) => h.get().accept({ body: ANSWER });
    await peer.send(inviteFromPeer('r1', 'cr1@peer'), dumAddress);
    const first = await peer.expectResponse(200, 'INVITE');
    const times = [first.at];
    for (let i = 0; i < 4; i++) times.push((await peer.expectResponse(200, 'INVITE')).at);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps).toEqual([500, 1000, 2000, 4000]);
    await peer.send(ackFromPeer('r2', 'cr1@peer', first.message.to.tag as string), dumAddress);
    await until(clock, () => rec.has('connected'));
    await peer.expectNothing(10_000, 50);
    expect(rec.events).toEqual(['new', 'ack', 'connected']);
  });

  it('RFC 3261 §13.3.1.4 no ACK within 64*T1: BYE, onAckNotReceived, onTerminated(timeout)', async () => {
    const { clock, rec, peer, dumAddress } = await scripted();
    rec.onIncoming = (h) => h.get().accept({ body: ANSWER });
    await peer.send(inviteFromPeer('t1', 'ct1@peer'), dumAddress);
    const ok = await peer.expectResponse(200, 'INVITE');
    const bye = await peer.expectRequest('BYE', { withinMs: 40_000, stepMs: 100 });
    expect(bye.at - ok.at).toBe(32_000);
    expect(bye.message.to.tag).toBe('peer');
    expect(bye.message.from.tag).toBe(ok.message.to.tag);
    expect(bye.message.uri.toString()).toBe('sip:bob@127.0.0.1:5090');
    expect(rec.events).toEqual(['new', 'ack-not-received', 'terminated:timeout']);
    const h = rec.server as Handle<ServerInviteSession>;
    expect(h.isValid()).toBe(true);
    await peer.respond(bye, 200);
    await until(clock, () => !h.isValid());
  });

  it('RFC 3261 §13.2.2.4 a retransmitted 2xx is ACKed again, in and after its transaction (Timer M)', async () => {
    const { rec, peer, profile, dum } = await scripted();
    dum.send(dum.makeInviteSession('sip:bob@127.0.0.1:5090', profile, { body: OFFER }));
    const invite = await peer.expectRequest('INVITE');
    const ok = answer(invite, 200, 'b1', ANSWER);
    await peer.send(ok, invite.source);
    const ack1 = await peer.expectRequest('ACK');
    expect(rec.events).toEqual(['answer', 'connected']);
    await peer.send(ok, invite.source);
    const ack2 = await peer.expectRequest('ACK');
    expect(ack2.message.cseq.seq).toBe(ack1.message.cseq.seq);
    expect(ack2.message.via[0]?.branch).toBe(ack1.message.via[0]?.branch);
    // After Timer M (64*T1) the transaction is gone: the 2xx is a stray response.
    await peer.expectNothing(33_000, 500);
    await peer.send(ok, invite.source);
    await peer.expectRequest('ACK');
    expect(rec.events).toEqual(['answer', 'connected']);
  });

  it('RFC 3261 §13.2.2.4 forking: a second 2xx with another To tag is ACKed and ended with BYE', async () => {
    const { rec, peer, profile, dum } = await scripted();
    const h = dum.send<ClientInviteSession>(
      dum.makeInviteSession('sip:bob@127.0.0.1:5090', profile, { body: OFFER }),
    );
    const invite = await peer.expectRequest('INVITE');
    await peer.send(answer(invite, 180, 'fork1'), invite.source);
    await peer.send(answer(invite, 180, 'fork2'), invite.source);
    await peer.send(answer(invite, 200, 'fork1', ANSWER), invite.source);
    const ack1 = await peer.expectRequest('ACK');
    expect(ack1.message.to.tag).toBe('fork1');
    await peer.send(answer(invite, 200, 'fork2', ANSWER), invite.source);
    const ack2 = await peer.expectRequest('ACK');
    expect(ack2.message.to.tag).toBe('fork2');
    const bye = await peer.expectRequest('BYE');
    expect(bye.message.to.tag).toBe('fork2');
    await peer.respond(bye, 200);
    await peer.expectNothing(100);
    expect(rec.events).toEqual([
      'provisional:180',
      'provisional:180',
      'answer',
      'connected',
      'fork-destroyed',
    ]);
    expect(h.get().state).toBe('connected');
    expect(h.get().dialog?.id.remoteTag).toBe('fork1');
    expect(dum.dialogCount).toBe(1);
  });

  it('RFC 3261 §22.2 a challenged INVITE is sent again with credentials (CSeq + 1); the ACK has its CSeq', async () => {
    const { rec, peer, profile, dum } = await scripted();
    profile.addCredentials({ realm: 'example.test', username: 'alice', password: 'pw' });
    dum.send(dum.makeInviteSession('sip:bob@127.0.0.1:5090', profile, { body: OFFER }));
    const first = await peer.expectRequest('INVITE');
    const auth = new ServerAuthManager(async () => ({ password: 'pw' }), {
      realm: 'example.test',
    });
    await peer.send(auth.challenge(first.message), first.source);
    await peer.expectRequest('ACK');
    const second = await peer.expectRequest('INVITE');
    expect(second.message.cseq.seq).toBe(first.message.cseq.seq + 1);
    expect(second.message.from.tag).toBe(first.message.from.tag);
    expect((await auth.verify(second.message)).outcome).toBe('ok');
    await peer.send(answer(second, 200, 'b1', ANSWER), second.source);
    const ack = await peer.expectRequest('ACK');
    expect(ack.message.cseq.seq).toBe(second.message.cseq.seq);
    expect(ack.message.has('Authorization')).toBe(true);
    expect(rec.events).toEqual(['answer', 'connected']);
  });
});

describe('InviteSession wire transcripts, in dialog', () => {
  it('RFC 3261 §13 basic call as the UAC on the wire, then BYE from the peer (§15.1.2); an offerless re-INVITE between (§14.2)', async () => {
    const { rec, peer, profile, dum, dumAddress } = await scripted();
    const h = dum.send<ClientInviteSession>(
      dum.makeInviteSession('sip:bob@127.0.0.1:5090', profile, { body: OFFER }),
    );
    const invite = await peer.expectRequest('INVITE');
    await peer.send(answer(invite, 180, 'b1'), invite.source);
    await peer.send(answer(invite, 200, 'b1', ANSWER), invite.source);
    const ack = await peer.expectRequest('ACK');
    expect(ack.message.from.tag).toBe(invite.message.from.tag);
    expect(ack.message.to.tag).toBe('b1');
    expect(ack.message.body.length).toBe(0);
    const inDialog = (method: string, cseq: number, branch: string, body = '') =>
      `${method} sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${branch}\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1:5090>;tag=b1\r\nTo: ${invite.message.header('From')}\r\n` +
      `Call-ID: ${invite.message.callId}\r\nCSeq: ${cseq} ${method}\r\nContact: <sip:bob@127.0.0.1:5090>\r\n` +
      (body ? 'Content-Type: application/sdp\r\n' : '') +
      `Content-Length: ${body.length}\r\n\r\n${body}`;
    // §14.2: a re-INVITE without an offer: onOfferRequired, our offer in the 200, the answer in the ACK.
    await peer.send(inDialog('INVITE', 5, 'ri1'), dumAddress);
    await until(peer.clock, () => rec.has('offer-required'));
    h.get().provideOffer(OFFER);
    const ok = await peer.expectResponse(200, 'INVITE');
    expect(ok.message.bodyText).toBe(OFFER);
    expect(ok.message.contacts.length).toBe(1);
    await peer.send(inDialog('ACK', 5, 'ri1ack', ANSWER), dumAddress);
    await until(peer.clock, () => rec.events.filter((e) => e === 'answer').length === 2);
    expect(h.get().state).toBe('connected');
    expect(h.get().offerAnswer.phase).toBe('stable');
    await peer.send(inDialog('BYE', 6, 'bye1'), dumAddress);
    await peer.expectResponse(200, 'BYE');
    expect(rec.events).toEqual([
      'provisional:180',
      'answer',
      'connected',
      'offer-required',
      'answer',
      'terminated:remote-bye',
    ]);
    expect(h.isValid()).toBe(false);
    await peer.send(inDialog('BYE', 7, 'bye2'), dumAddress);
    await peer.expectResponse(481, 'BYE');
  });
});

describe('OfferAnswer (RFC 3264)', () => {
  it('RFC 3264 §5 a description given as text keeps it: its body reads as the text encoded, each time alike', () => {
    const sd = toDescription(ANSWER);
    expect(sd.contentType).toBe('application/sdp');
    expect(text(sd.body)).toBe(ANSWER);
    expect(sd.body).toEqual(sd.body);
    const bytes = new TextEncoder().encode(OFFER);
    expect(toDescription(bytes, 'application/sdp').body).toBe(bytes);
    const oa = new OfferAnswer();
    oa.receiveOffer(toDescription(bytes));
    oa.sendAnswer(sd);
    const st = oa.state;
    expect(st.phase === 'stable' && text(st.local.body)).toBe(ANSWER);
  });

  const sd = (s: string) => toDescription(s);
  it('offer then answer is stable; a crossing offer is glare (491); a second remote offer is 500', () => {
    const oa = new OfferAnswer();
    oa.sendOffer(sd(OFFER));
    expect(oa.receiveOffer(sd(ANSWER))).toBe(491);
    expect(oa.receiveAnswer(sd(ANSWER))).toBe(true);
    expect(oa.phase).toBe('stable');
    expect(oa.receiveOffer(sd(OFFER))).toBeUndefined();
    expect(oa.receiveOffer(sd(OFFER))).toBe(500);
    oa.sendAnswer(sd(ANSWER));
    expect(oa.phase).toBe('stable');
  });
  it('misuse throws a coded error; an answer without an offer changes nothing', () => {
    const oa = new OfferAnswer();
    expect(() => oa.sendAnswer(sd(ANSWER))).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    expect(oa.receiveAnswer(sd(ANSWER))).toBe(false);
    expect(oa.phase).toBe('none');
    oa.sendOffer(sd(OFFER));
    expect(() => oa.sendOffer(sd(OFFER))).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_DUM_STATE' }),
    );
    oa.abandon();
    expect(oa.phase).toBe('none');
  });
});

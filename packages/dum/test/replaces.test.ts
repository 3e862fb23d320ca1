import type { NameAddr, Replaces, SipRequest } from '@sipworks/message';
import { type MemoryTransport, ScriptedPeer } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type ClientInviteSession,
  DialogId,
  type Handle,
  type InviteSession,
  replacesValue,
} from '../src/index.ts';
import { until } from './support.ts';
import { call, OFFER, three } from './transfer-support.ts';

/** An INVITE from a raw peer at 5090 to the DUM at `port`, with `replaces` as its Replaces header. */
function inviteWithReplaces(port: number, callId: string, replaces: string): string {
  return (
    `INVITE sip:carol@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${callId}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:mallory@127.0.0.1:5090>;tag=m1\r\nTo: <sip:carol@127.0.0.1:${port}>\r\n` +
    `Call-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContact: <sip:mallory@127.0.0.1:5090>\r\n` +
    `Replaces: ${replaces}\r\nContent-Type: application/sdp\r\nContent-Length: ${OFFER.length}\r\n\r\n${OFFER}`
  );
}

/** Where C's DUM listens. */
const C_ADDR = { address: '127.0.0.1', port: 5063 };

describe('Replaces (RFC 3891)', () => {
  it('RFC 5589 §7.1 attended transfer: B refers A to C with Replaces; C takes the new call and ends the replaced one (§3)', async () => {
    const { clock, a, b, c } = await three(21);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { callee: ba } = await call(a, b, wait);
    const { caller: bc, callee: cb } = await call(b, c, wait);
    a.party.onReferDo = ({ sub }) => {
      sub.get().acceptRefer();
      a.dum.send(a.dum.makeInviteSessionFromRefer(sub, a.profile, { body: OFFER }));
    };
    b.party.onProgressDo = (session, s) => {
      if (s?.final && s.status === 200) session.get().end();
    };
    const refer = ba.get().refer(c.uri, { replaces: bc });
    // §6.1: the Replaces goes in the Refer-To URI, as B sees its dialog with C.
    const referTo = refer.get<NameAddr>('Refer-To');
    const embedded = referTo?.uri.headers.get('Replaces');
    const bcId = bc.get().dialog?.id as DialogId;
    expect(embedded).toBe(replacesValue(bcId));
    expect(referTo?.toString()).toContain('?Replaces=');

    await wait(() => c.party.incoming.length === 2 && c.party.up.length === 2);
    const invite = c.party.incoming[1]?.invite as SipRequest;
    const r = invite.get<Replaces>('Replaces');
    expect(r?.callId).toBe(bcId.callId);
    expect(r?.toTag).toBe(bcId.remoteTag);
    expect(r?.fromTag).toBe(bcId.localTag);
    // The new session says which one it replaces.
    const replacing = c.party.incoming[1]?.h.get();
    expect(replacing?.replaces?.id).toBe(cb.id);
    // §3: once the new dialog is up, the replaced one is ended with a BYE.
    await wait(() => c.party.ended.has(cb.id) && b.party.ended.has(bc.id));
    expect(c.party.ended.get(cb.id)).toBe('replaced');
    expect(b.party.ended.get(bc.id)).toBe('remote-bye');
    // The transfer is reported, and B leaves the call with A.
    await wait(() => b.party.ended.has(ba.id));
    expect(b.party.progress.map((s) => s?.status)).toEqual([100, 200]);
    // The session the transfer moved ends as `referred`.
    expect(b.party.ended.get(ba.id)).toBe('referred');
    const ac = c.party.incoming[1]?.h as Handle<InviteSession>;
    expect(ac.get().isConnected).toBe(true);
    await wait(() => b.dum.dialogCount === 0);
  });

  it('§4, §7.1 call pickup: an INVITE made with replaces ends an early dialog we started with a CANCEL', async () => {
    const { clock, a, b, c } = await three(22);
    const wait = (cond: () => boolean) => until(clock, cond);
    c.party.autoAnswer = false;
    // A calls C, which rings.
    const ac = a.dum.send<ClientInviteSession>(
      a.dum.makeInviteSession(c.uri, a.profile, { body: OFFER }),
    );
    await wait(() => c.party.incoming.length === 1);
    c.party.incoming[0]?.h.get().provisional(180);
    await wait(() => ac.get().state === 'early');
    const early = ac.get().dialog?.id as DialogId;
    // B picks up: its INVITE to A names A's early dialog (to-tag: A's tag, from-tag: C's).
    const seenAs = new DialogId(early.callId, early.remoteTag, early.localTag);
    const req = b.dum.makeInviteSession(a.uri, b.profile, { body: OFFER, replaces: seenAs });
    expect(req.header('Replaces')).toBe(
      `${early.callId};to-tag=${early.localTag};from-tag=${early.remoteTag}`,
    );
    const ba = b.dum.send<ClientInviteSession>(req);
    await wait(() => ba.get().isConnected === true && a.party.ended.has(ac.id));
    expect(a.party.incoming[0]?.h.get().replaces?.id).toBe(ac.id);
    expect(a.party.ended.get(ac.id)).toBe('replaced');
    // C's ringing call was cancelled.
    await wait(() => c.party.ended.size === 1);
    expect([...c.party.ended.values()]).toEqual(['cancelled']);
  });

  it('§3: an INVITE whose Replaces names no dialog of ours is answered 481', async () => {
    const { clock, network, c } = await three(23);
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    await peer.send(inviteWithReplaces(5063, 'r481', 'nosuch@x;to-tag=a;from-tag=b'), C_ADDR);
    const res = await peer.expectResponse(481, 'INVITE');
    expect(res.message.status).toBe(481);
    expect(c.party.incoming).toHaveLength(0);
  });

  it('§3: early-only naming a confirmed dialog is answered 486; the dialog is untouched', async () => {
    const { clock, network, a, c } = await three(24);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { callee: ca } = await call(a, c, wait);
    const id = ca.get().dialog?.id as DialogId;
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    const value = `${id.callId};to-tag=${id.localTag};from-tag=${id.remoteTag};early-only`;
    await peer.send(inviteWithReplaces(5063, 'r486', value), C_ADDR);
    await peer.expectResponse(486, 'INVITE');
    expect(ca.get().isConnected).toBe(true);
    expect(c.party.incoming).toHaveLength(1);
  });

  it('§3: an early dialog this UA did not start (we are its UAS) cannot be replaced: 481', async () => {
    const { clock, network, a, c } = await three(25);
    const wait = (cond: () => boolean) => until(clock, cond);
    c.party.autoAnswer = false;
    a.dum.send(a.dum.makeInviteSession(c.uri, a.profile, { body: OFFER }));
    await wait(() => c.party.incoming.length === 1);
    const ringing = c.party.incoming[0]?.h.get();
    ringing?.provisional(180);
    const id = ringing?.dialog?.id as DialogId;
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    await peer.send(
      inviteWithReplaces(
        5063,
        'rearly',
        `${id.callId};to-tag=${id.localTag};from-tag=${id.remoteTag}`,
      ),
      C_ADDR,
    );
    await peer.expectResponse(481, 'INVITE');
    expect(ringing?.state).toBe('proceeding');
  });

  it('§3: a dialog whose session is ending is answered 603; a malformed Replaces 400', async () => {
    const { clock, network, a, c } = await three(26);
    const wait = (cond: () => boolean) => until(clock, cond);
    const { callee: ca } = await call(a, c, wait);
    const id = ca.get().dialog?.id as DialogId;
    const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
    // C hangs up; before the BYE has its answer, the INVITE with Replaces arrives.
    network.detach(a.dum.stack.transports[0] as MemoryTransport);
    ca.get().end();
    expect(ca.get().state).toBe('terminating');
    await peer.send(
      inviteWithReplaces(
        5063,
        'r603',
        `${id.callId};to-tag=${id.localTag};from-tag=${id.remoteTag}`,
      ),
      C_ADDR,
    );
    await peer.expectResponse(603, 'INVITE', { withinMs: 2000 });
    await peer.send(inviteWithReplaces(5063, 'r400', ';;;'), C_ADDR);
    await peer.expectResponse(400, 'INVITE', { withinMs: 2000 });
  });
});

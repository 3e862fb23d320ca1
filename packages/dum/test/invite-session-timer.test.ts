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

/** Both DUMs with session timers on, asking for `interval` seconds. */
async function timedPair(interval = 120) {
  const p = await sessionPair();
  for (const n of [p.a, p.b]) {
    n.dum.masterProfile.set('sessionTimers', true);
    n.dum.masterProfile.set('sessionExpires', interval);
  }
  return p;
}

/** Run the virtual clock to `ms` in 1 s steps. */
function runTo(clock: VirtualClock, ms: number) {
  return until(clock, () => clock.now() >= ms, { steps: Math.ceil(ms / 1000) + 10, stepMs: 1000 });
}

describe('session timers between two DUMs (RFC 4028)', () => {
  it('§4 with timers off no Session-Expires goes either way and no timer runs', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    expect(b.rec.messages.get('new')?.has('Session-Expires')).toBe(false);
    expect(caller.get().sessionTimerState).toEqual({ interval: 0, refresher: undefined });
    expect(callee.get().sessionTimerState).toEqual({ interval: 0, refresher: undefined });
  });

  it('§7.1 / §9 the callee lets the caller refresh (refresher=uac); the caller refreshes at half the interval and the session lives on', async () => {
    const { a, b, clock } = await timedPair(120);
    const caller = a.dum.send<ClientInviteSession>(
      a.dum.makeInviteSession('sip:bob@127.0.0.1:5062', a.profile, { body: sdp('alice', 4000) }),
    );
    await until(clock, () => b.rec.server !== undefined);
    const invite = b.rec.messages.get('new') as SipRequest;
    expect(invite.header('Session-Expires')).toBe('120');
    expect(invite.header('Min-SE')).toBe('90');
    expect(invite.headers('Supported').join(',')).toContain('timer');
    const callee = b.rec.server as NonNullable<typeof b.rec.server>;
    const ok = callee.get().accept({ body: sdp('bob', 5000) });
    expect(ok.header('Session-Expires')).toBe('120;refresher=uac');
    expect(ok.header('Require')).toBe('timer');
    await until(clock, () => a.rec.has('connected') && b.rec.has('connected'));
    expect(caller.get().sessionTimerState).toEqual({ interval: 120, refresher: 'local' });
    expect(callee.get().sessionTimerState).toEqual({ interval: 120, refresher: 'remote' });
    const start = clock.now();
    // Five minutes: past two expiries of an unrefreshed session.
    await runTo(clock, start + 300_000);
    expect(caller.isValid() && callee.isValid()).toBe(true);
    expect(a.rec.has('session-expired') || b.rec.has('session-expired')).toBe(false);
    // One refresh per 60 s, each a request in the dialog from the caller.
    const refreshes = (callee.get().dialog?.remoteSeq ?? 0) - invite.cseq.seq;
    expect(refreshes).toBe(5);
    // No offer reached the applications.
    expect(a.rec.has('offer')).toBe(false);
    expect(b.rec.count('offer')).toBe(1);
  });

  it('§9 a callee whose profile asks for refresher=uas refreshes itself; the caller only watches the expiry', async () => {
    const { a, b, clock } = await timedPair(120);
    b.dum.masterProfile.set('sessionRefresher', 'uas');
    const { caller, callee } = await establish(a, b, clock);
    expect(callee.get().sessionTimerState).toEqual({ interval: 120, refresher: 'local' });
    expect(caller.get().sessionTimerState).toEqual({ interval: 120, refresher: 'remote' });
    const seq0 = caller.get().dialog?.remoteSeq ?? 0;
    await runTo(clock, clock.now() + 200_000);
    expect(caller.isValid() && callee.isValid()).toBe(true);
    expect((caller.get().dialog?.remoteSeq ?? 0) - seq0).toBe(3);
  });

  it('§7.1 a caller asking for refresher=uas in its INVITE gets it', async () => {
    const { a, b, clock } = await timedPair(100);
    a.profile.set('sessionRefresher', 'uas');
    const { caller, callee } = await establish(a, b, clock);
    expect((b.rec.messages.get('new') as SipRequest).header('Session-Expires')).toBe(
      '100;refresher=uas',
    );
    expect(callee.get().sessionTimerState.refresher).toBe('local');
    expect(caller.get().sessionTimerState.refresher).toBe('remote');
  });

  it("§7.3 / §8.1 a Session-Expires below the callee's Min-SE gets 422; the caller retries asking for the larger Min-SE", async () => {
    const { a, b, clock } = await timedPair(90);
    b.dum.masterProfile.set('minSE', 300);
    const { caller } = await establish(a, b, clock);
    const invite = b.rec.messages.get('new') as SipRequest;
    expect(invite.header('Session-Expires')).toBe('300');
    expect(invite.header('Min-SE')).toBe('300');
    expect(invite.cseq.seq).toBe(2);
    expect(caller.get().sessionTimerState.interval).toBe(300);
    expect(a.rec.has('failure:422')).toBe(false);
  });

  it('§4 a profile minSE below 90 s (tests, labs) is honoured: a 4 s session refreshed every 2 s', async () => {
    const { a, b, clock } = await timedPair(4);
    for (const n of [a, b]) n.dum.masterProfile.set('minSE', 2);
    const { caller, callee } = await establish(a, b, clock);
    const invite = b.rec.messages.get('new') as SipRequest;
    expect(invite.header('Session-Expires')).toBe('4');
    expect(invite.header('Min-SE')).toBe('2');
    expect(caller.get().sessionTimerState).toEqual({ interval: 4, refresher: 'local' });
    const seq0 = callee.get().dialog?.remoteSeq ?? 0;
    await runTo(clock, clock.now() + 10_000);
    expect(caller.isValid() && callee.isValid()).toBe(true);
    expect((callee.get().dialog?.remoteSeq ?? 0) - seq0).toBe(5);
  });

  it('§4 the default minSE stays 90 s: a 30 s Session-Expires is raised to it', async () => {
    const { a, b, clock } = await timedPair(30);
    await establish(a, b, clock);
    const invite = b.rec.messages.get('new') as SipRequest;
    expect(invite.header('Session-Expires')).toBe('90');
    expect(invite.header('Min-SE')).toBe('90');
  });

  it('§7.3 a 422 to a refresh UPDATE: sent again with the larger Min-SE', async () => {
    const { a, b, clock } = await timedPair(120);
    const { caller, callee } = await establish(a, b, clock);
    // The callee now insists on more than the session's interval.
    b.dum.masterProfile.set('minSE', 200);
    await runTo(clock, clock.now() + 61_000);
    await until(clock, () => caller.get().sessionTimerState.interval === 200);
    expect(callee.get().sessionTimerState.interval).toBe(200);
    expect(caller.isValid() && callee.isValid()).toBe(true);
  });

  it('§10 refresh by re-INVITE when the peer does not allow UPDATE: the unchanged offer is answered without the application', async () => {
    const { a, b, clock } = await timedPair(120);
    a.dum.masterProfile.set(
      'supportedMethods',
      a.dum.masterProfile.get('supportedMethods').filter((m) => m !== 'UPDATE'),
    );
    b.dum.masterProfile.set('sessionRefresher', 'uas');
    const { caller, callee } = await establish(a, b, clock);
    await runTo(clock, clock.now() + 61_000);
    await until(clock, () => !callee.get().isModifying);
    expect(caller.get().dialog?.remoteSeq).toBe(1);
    expect(a.rec.has('offer')).toBe(false);
    expect(callee.get().offerAnswer.phase).toBe('stable');
    expect(caller.isValid()).toBe(true);
  });
});

// ---- wire transcripts against a scripted callee ----

async function callScripted(okHeaders: [string, string][]) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 17 });
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, port: 5080 }));
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  dum.masterProfile.set('sessionTimers', true);
  dum.masterProfile.set('sessionExpires', 90);
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
      headers: [['Contact', '<sip:bob@127.0.0.1:5090>'], ...okHeaders],
      body: sdp('bob', 5000),
      contentType: 'application/sdp',
    }),
    invite.source,
  );
  await peer.expectRequest('ACK');
  return { clock, dum, rec, peer, h, invite };
}

function okTo(
  step: ScriptStep & { message: SipRequest },
  headers: [string, string][] = [],
  body?: string,
) {
  return createResponse(step.message, 200, undefined, {
    headers: [['Contact', '<sip:bob@127.0.0.1:5090>'], ...headers],
    ...(body !== undefined ? { body, contentType: 'application/sdp' } : {}),
  });
}

describe('session timers on the wire (RFC 4028)', () => {
  it('§10 refresher=uac and the peer allows UPDATE: an UPDATE at half the interval, with Session-Expires;refresher=uac', async () => {
    const { clock, peer } = await callScripted([
      ['Session-Expires', '90;refresher=uac'],
      ['Require', 'timer'],
      ['Allow', 'INVITE, ACK, BYE, CANCEL, UPDATE'],
    ]);
    const t0 = clock.now();
    const update = await peer.expectRequest('UPDATE', { withinMs: 50_000, stepMs: 100 });
    expect(clock.now() - t0).toBeGreaterThanOrEqual(44_900);
    expect(clock.now() - t0).toBeLessThanOrEqual(45_200);
    expect(update.message.header('Session-Expires')).toBe('90;refresher=uac');
    expect(update.message.body.length).toBe(0);
    await peer.send(okTo(update, [['Session-Expires', '90;refresher=uac']]), update.source);
    await peer.expectRequest('UPDATE', { withinMs: 50_000, stepMs: 100 });
  });

  it("§10 refresher=uac and no UPDATE in the peer's Allow: a re-INVITE with the session unchanged", async () => {
    const { peer } = await callScripted([
      ['Session-Expires', '90;refresher=uac'],
      ['Allow', 'INVITE, ACK, BYE, CANCEL'],
    ]);
    const reinvite = await peer.expectRequest('INVITE', { withinMs: 50_000, stepMs: 100 });
    expect(reinvite.message.bodyText).toBe(sdp('alice', 4000));
    expect(reinvite.message.header('Session-Expires')).toBe('90;refresher=uac');
    await peer.send(
      okTo(reinvite, [['Session-Expires', '90;refresher=uac']], sdp('bob', 5000)),
      reinvite.source,
    );
    const ack = await peer.expectRequest('ACK');
    expect(ack.message.cseq.seq).toBe(reinvite.message.cseq.seq);
  });

  it('§7.2 a 2xx without Session-Expires (the peer has no timers): we refresh at the interval we asked for', async () => {
    const { peer, h } = await callScripted([['Allow', 'INVITE, ACK, BYE, UPDATE']]);
    expect(h.get().sessionTimerState).toEqual({ interval: 90, refresher: 'local' });
    await peer.expectRequest('UPDATE', { withinMs: 50_000, stepMs: 100 });
  });

  it('§10 the peer refreshes (refresher=uas) but never does: BYE at interval - min(32, interval/3), onSessionExpired', async () => {
    const { clock, peer, rec, h } = await callScripted([['Session-Expires', '90;refresher=uas']]);
    const t0 = clock.now();
    const bye = await peer.expectRequest('BYE', { withinMs: 70_000, stepMs: 100 });
    // 90 - min(32, 30) = 60 s.
    expect(clock.now() - t0).toBeGreaterThanOrEqual(59_900);
    expect(clock.now() - t0).toBeLessThanOrEqual(60_200);
    await peer.respond(bye, 200);
    await until(clock, () => !h.isValid());
    expect(rec.events.slice(-2)).toEqual(['session-expired', 'terminated:timeout']);
  });
});

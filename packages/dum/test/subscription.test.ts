import type { SipRequest, SubscriptionState } from '@sipworks/message';
import { MemoryNetwork, ScriptedPeer, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type ClientSubscription,
  type ClientSubscriptionHandler,
  type Handle,
  NOTIFY_WAIT_MS,
  ServerAuthManager,
  type ServerSubscription,
} from '../src/index.ts';
import { node, until } from './support.ts';

/** A tiny presence document (RFC 3863 §4). */
function pidf(basic: 'open' | 'closed'): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:bob@127.0.0.1">\n' +
    `  <tuple id="t1"><status><basic>${basic}</basic></status></tuple>\n` +
    '</presence>\n'
  );
}
const PIDF = 'application/pidf+xml';

interface Seen {
  pending: SipRequest[];
  active: SipRequest[];
  terminated: (SipRequest | undefined)[];
  forks: Handle<ClientSubscription>[];
}

function subscriber(extra?: Partial<ClientSubscriptionHandler>) {
  const seen: Seen = { pending: [], active: [], terminated: [], forks: [] };
  const handler: ClientSubscriptionHandler = {
    onUpdatePending: (_h, n) => seen.pending.push(n),
    onUpdateActive: (_h, n) => seen.active.push(n),
    onTerminated: (_h, n) => seen.terminated.push(n),
    onNewSubscription: (h) => seen.forks.push(h),
    ...extra,
  };
  return { seen, handler };
}

/** alice (5061) subscribes to bob's presence; bob's DUM (5062) is the notifier. */
async function twoDums() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 21 });
  const alice = await node(network, clock, 5061, 'alice');
  const bob = await node(network, clock, 5062, 'bob');
  const served: Handle<ServerSubscription>[] = [];
  const serverEvents: string[] = [];
  bob.dum.addServerSubscriptionHandler('presence', {
    onNewSubscription: (h) => served.push(h),
    onRefresh: () => serverEvents.push('refresh'),
    onTerminated: () => serverEvents.push('terminated'),
    onExpired: () => serverEvents.push('expired'),
  });
  return { clock, network, alice, bob, served, serverEvents };
}

function state(n: SipRequest | undefined): SubscriptionState | undefined {
  return n?.get<SubscriptionState>('Subscription-State');
}

describe('subscriptions between two DUMs (RFC 6665)', () => {
  it('§4.1.2.1, §4.2.1: SUBSCRIBE carries Event, Expires, Accept, Contact; pending then active with a PIDF body', async () => {
    const { clock, alice, bob, served } = await twoDums();
    expect(bob.dum.masterProfile.get('supportedEvents')).toContain('presence');
    const { seen, handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    const req = alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'presence', alice.profile, {
      expires: 600,
    });
    expect(req.method).toBe('SUBSCRIBE');
    expect(req.header('Event')).toBe('presence');
    expect(req.expires).toBe(600);
    expect(req.headers('Accept').join(', ')).toContain(PIDF);
    expect(req.contacts).toHaveLength(1);
    const h = alice.dum.send<ClientSubscription>(req);
    await until(clock, () => served.length > 0);
    const s = served[0]?.get() as ServerSubscription;
    s.accept(202);
    s.send(s.neutralNotify());
    await until(clock, () => seen.pending.length > 0);
    expect(state(seen.pending[0])?.state).toBe('pending');
    expect(h.get().state).toBe('pending');

    s.setSubscriptionState('active');
    s.send(s.update(pidf('open'), PIDF));
    await until(clock, () => seen.active.length > 0);
    const n = seen.active[0] as SipRequest;
    expect(n.contentType?.mimeType).toBe(PIDF);
    expect(new TextDecoder().decode(n.body)).toContain('<basic>open</basic>');
    expect(state(n)?.expires).toBeGreaterThan(590);
    expect(h.get().state).toBe('active');
    expect(alice.dum.dialogCount).toBe(1);
    expect(bob.dum.dialogCount).toBe(1);
  });

  it('§4.1.2.2: the subscriber refreshes before expiry in the same dialog (CSeq + 1) and gets a NOTIFY', async () => {
    const { clock, alice, served, serverEvents } = await twoDums();
    const { seen, handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'presence', alice.profile, {
        expires: 60,
      }),
    );
    await until(clock, () => served.length > 0);
    const s = served[0]?.get() as ServerSubscription;
    s.accept(200);
    s.send(s.update(pidf('open'), PIDF));
    await until(clock, () => seen.active.length === 1);
    // 60 s granted: refreshed after 54 s.
    await until(clock, () => serverEvents.includes('refresh'), { steps: 6000, stepMs: 10 });
    expect(clock.now()).toBeGreaterThanOrEqual(54_000);
    await until(clock, () => seen.active.length === 2);
    expect(new TextDecoder().decode(seen.active[1]?.body)).toContain('open');
    expect(s.isEnded).toBe(false);
    expect(seen.terminated).toHaveLength(0);
  });

  it('§4.1.2.3, §4.2.1.4: end() unsubscribes with Expires: 0; the final NOTIFY ends both sides', async () => {
    const { clock, alice, bob, served, serverEvents } = await twoDums();
    const { seen, handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    const h = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'presence', alice.profile),
    );
    await until(clock, () => served.length > 0);
    const s = served[0]?.get() as ServerSubscription;
    s.accept(200);
    s.send(s.update(pidf('open'), PIDF));
    await until(clock, () => seen.active.length === 1);
    h.get().end();
    await until(clock, () => seen.terminated.length === 1 && !h.isValid());
    expect(state(seen.terminated[0])?.state).toBe('terminated');
    await until(clock, () => !served[0]?.isValid());
    expect(serverEvents).toEqual(['terminated']);
    expect(alice.dum.dialogCount).toBe(0);
    expect(bob.dum.dialogCount).toBe(0);
  });

  it('§4.1.2.3, RFC 3261 §12.2.1.1: after a challenged SUBSCRIBE, the unsubscribe takes the CSeq after the retried one', async () => {
    const { clock, alice, bob, served, serverEvents } = await twoDums();
    bob.dum.setServerAuthManager(
      new ServerAuthManager(async () => ({ password: 'pw' }), { realm: 'r' }),
    );
    alice.profile.addCredentials({ realm: 'r', username: 'alice', password: 'pw' });
    const { seen, handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    const h = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'presence', alice.profile),
    );
    await until(clock, () => served.length > 0);
    // The SUBSCRIBE that passed the challenge is the second one (CSeq 2).
    expect(served[0]?.get().subscribe.cseq.seq).toBe(2);
    const s = served[0]?.get() as ServerSubscription;
    s.accept(200);
    s.send(s.update(pidf('open'), PIDF));
    await until(clock, () => seen.active.length === 1);
    h.get().end();
    await until(clock, () => seen.terminated.length === 1 && !h.isValid());
    expect(state(seen.terminated[0])?.state).toBe('terminated');
    expect(serverEvents).toEqual(['terminated']);
  });

  it('§4.1.3: the notifier ends with reason and retry-after; onRequestRetry subscribes again', async () => {
    const { clock, alice, served } = await twoDums();
    const retries: number[] = [];
    const { seen, handler } = subscriber({
      onRequestRetry: (_h, secs) => {
        retries.push(secs);
        return secs;
      },
    });
    alice.dum.addClientSubscriptionHandler('presence', handler);
    const h = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'presence', alice.profile),
    );
    await until(clock, () => served.length > 0);
    const s = served[0]?.get() as ServerSubscription;
    s.accept(200);
    s.send(s.update(pidf('open'), PIDF));
    await until(clock, () => seen.active.length === 1);
    const firstCallId = s.subscribe.callId;
    s.end('probation', 30);
    await until(clock, () => retries.length === 1);
    expect(retries).toEqual([30]);
    expect(seen.terminated).toHaveLength(0);
    expect(h.isValid()).toBe(true);
    // A new SUBSCRIBE 30 s later, a new dialog.
    await until(clock, () => served.length === 2, { steps: 4000 });
    expect(clock.now()).toBeGreaterThanOrEqual(30_000);
    expect(served[1]?.get().subscribe.callId).not.toBe(firstCallId);
    const s2 = served[1]?.get() as ServerSubscription;
    s2.accept(200);
    s2.send(s2.update(pidf('closed'), PIDF));
    await until(clock, () => seen.active.length === 2);
    expect(h.get().state).toBe('active');
  });

  it('§4.1.3: a terminated NOTIFY with reason=rejected ends the subscription (onTerminated)', async () => {
    const { clock, alice, served } = await twoDums();
    const { seen, handler } = subscriber({ onRequestRetry: () => 5 });
    alice.dum.addClientSubscriptionHandler('presence', handler);
    const h = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'presence', alice.profile),
    );
    await until(clock, () => served.length > 0);
    const s = served[0]?.get() as ServerSubscription;
    s.accept(202);
    s.send(s.neutralNotify());
    await until(clock, () => seen.pending.length === 1);
    s.end('rejected');
    await until(clock, () => seen.terminated.length === 1);
    expect(state(seen.terminated[0])?.reason).toBe('rejected');
    expect(h.isValid()).toBe(false);
  });

  it('§4.2.1.1: an unknown event package gets 489 Bad Event with Allow-Events', async () => {
    const { clock, alice } = await twoDums();
    const { seen, handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('dialog', handler);
    const h = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'dialog', alice.profile),
    );
    await until(clock, () => seen.terminated.length === 1);
    expect(seen.terminated[0]).toBeUndefined();
    expect(h.isValid()).toBe(false);
  });
});

// ---- wire transcripts ----

async function scripted() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 23 });
  const alice = await node(network, clock, 5080, 'alice');
  const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
  return { clock, network, alice, peer, dumAddress: { address: '127.0.0.1', port: 5080 } };
}

function notifyText(
  sub: SipRequest,
  o: { toTag: string; cseq: number; state: string; branch: string; body?: string },
): string {
  const body = o.body ?? '';
  return (
    `NOTIFY ${sub.contacts[0]?.uri} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${o.branch}\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:bob@127.0.0.1:5090>;tag=${o.toTag}\r\n` +
    `To: ${sub.from}\r\n` +
    `Call-ID: ${sub.callId}\r\n` +
    `CSeq: ${o.cseq} NOTIFY\r\n` +
    'Contact: <sip:bob@127.0.0.1:5090>\r\n' +
    'Event: presence\r\n' +
    `Subscription-State: ${o.state}\r\n` +
    (body ? `Content-Type: ${PIDF}\r\n` : '') +
    `Content-Length: ${new TextEncoder().encode(body).length}\r\n\r\n${body}`
  );
}

describe('subscriptions against a scripted notifier (RFC 6665)', () => {
  it('§4.1.2.4: a NOTIFY before the 2xx makes the dialog; the 2xx then matches it', async () => {
    const { alice, peer, dumAddress } = await scripted();
    const { seen, handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    const h = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5090', 'presence', alice.profile),
    );
    const sub = await peer.expectRequest('SUBSCRIBE');
    await peer.send(
      notifyText(sub.message, {
        toTag: 'n1',
        cseq: 1,
        state: 'active;expires=3600',
        branch: 'nb1',
        body: pidf('open'),
      }),
      dumAddress,
    );
    await peer.expectResponse(200, 'NOTIFY');
    expect(seen.active).toHaveLength(1);
    expect(alice.dum.dialogCount).toBe(1);
    await peer.respond(sub, 202, {
      toTag: 'n1',
      headers: [
        ['Contact', '<sip:bob@127.0.0.1:5090>'],
        ['Expires', '3600'],
      ],
    });
    await peer.expectNothing(NOTIFY_WAIT_MS + 1000, 500);
    expect(h.get().state).toBe('active');
    expect(alice.dum.dialogCount).toBe(1);
    expect(seen.forks).toHaveLength(0);
  });

  it('§4.1.2.4: no NOTIFY within 64*T1 of the 2xx: the subscription is terminated', async () => {
    const { clock, alice, peer } = await scripted();
    const { seen, handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    const h = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5090', 'presence', alice.profile),
    );
    const sub = await peer.expectRequest('SUBSCRIBE');
    await peer.respond(sub, 202, {
      toTag: 'n1',
      headers: [
        ['Contact', '<sip:bob@127.0.0.1:5090>'],
        ['Expires', '3600'],
      ],
    });
    await until(clock, () => seen.terminated.length === 1, { steps: 100, stepMs: 500 });
    expect(clock.now()).toBeGreaterThanOrEqual(NOTIFY_WAIT_MS);
    expect(seen.terminated[0]).toBeUndefined();
    expect(h.isValid()).toBe(false);
    expect(alice.dum.dialogCount).toBe(0);
  });

  it('§4.1.2.4, §5.4.9: NOTIFYs with two To tags (a forked SUBSCRIBE) make two subscriptions', async () => {
    const { alice, peer, dumAddress } = await scripted();
    const { seen, handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    const h = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5090', 'presence', alice.profile),
    );
    const sub = await peer.expectRequest('SUBSCRIBE');
    await peer.respond(sub, 202, {
      toTag: 'f1',
      headers: [
        ['Contact', '<sip:bob@127.0.0.1:5090>'],
        ['Expires', '3600'],
      ],
    });
    await peer.send(
      notifyText(sub.message, { toTag: 'f1', cseq: 1, state: 'active;expires=3600', branch: 'a1' }),
      dumAddress,
    );
    await peer.expectResponse(200, 'NOTIFY');
    await peer.send(
      notifyText(sub.message, {
        toTag: 'f2',
        cseq: 1,
        state: 'pending;expires=3600',
        branch: 'a2',
      }),
      dumAddress,
    );
    await peer.expectResponse(200, 'NOTIFY');
    expect(seen.active).toHaveLength(1);
    expect(seen.pending).toHaveLength(1);
    expect(seen.forks).toHaveLength(1);
    const fork = seen.forks[0] as Handle<ClientSubscription>;
    expect(fork.id).not.toBe(h.id);
    expect(fork.get().state).toBe('pending');
    expect(h.get().state).toBe('active');
    expect(alice.dum.dialogCount).toBe(2);
    // Each ends on its own: the fork's unsubscribe goes to its own dialog.
    fork.get().end();
    const unsub = await peer.expectRequest('SUBSCRIBE');
    expect(unsub.message.to.tag).toBe('f2');
    expect(unsub.message.expires).toBe(0);
  });

  it('§4.1.2.2: the refresh goes in the dialog with CSeq + 1 and the same Event, before the expiry the NOTIFY gives', async () => {
    const { clock, alice, peer, dumAddress } = await scripted();
    const { seen, handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    alice.dum.send(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5090', 'presence', alice.profile, {
        expires: 3600,
      }),
    );
    const sub = await peer.expectRequest('SUBSCRIBE');
    await peer.respond(sub, 200, {
      toTag: 'r1',
      headers: [
        ['Contact', '<sip:bob@127.0.0.1:5090>'],
        ['Expires', '3600'],
      ],
    });
    // The notifier grants less in the NOTIFY: 100 s, so the refresh comes after 90 s.
    await peer.send(
      notifyText(sub.message, { toTag: 'r1', cseq: 1, state: 'active;expires=100', branch: 'r1' }),
      dumAddress,
    );
    await peer.expectResponse(200, 'NOTIFY');
    expect(seen.active).toHaveLength(1);
    const start = clock.now();
    const refresh = await peer.expectRequest('SUBSCRIBE', { withinMs: 100_000, stepMs: 500 });
    expect(clock.now() - start).toBeGreaterThanOrEqual(89_000);
    expect(refresh.message.to.tag).toBe('r1');
    expect(refresh.message.callId).toBe(sub.message.callId);
    expect(refresh.message.cseq.seq).toBe(sub.message.cseq.seq + 1);
    expect(refresh.message.header('Event')).toBe('presence');
    expect(refresh.message.expires).toBe(3600);
    expect(refresh.message.uri.toString()).toBe('sip:bob@127.0.0.1:5090');
  });

  it('shutdown ends subscriptions: the subscriber unsubscribes', async () => {
    const { alice, peer, dumAddress } = await scripted();
    const { handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    alice.dum.send(alice.dum.makeSubscription('sip:bob@127.0.0.1:5090', 'presence', alice.profile));
    const sub = await peer.expectRequest('SUBSCRIBE');
    await peer.respond(sub, 202, {
      toTag: 's1',
      headers: [['Contact', '<sip:bob@127.0.0.1:5090>']],
    });
    await peer.send(
      notifyText(sub.message, { toTag: 's1', cseq: 1, state: 'pending', branch: 's1' }),
      dumAddress,
    );
    await peer.expectResponse(200, 'NOTIFY');
    const done = alice.dum.shutdown({ timeoutMs: 60_000 });
    const unsub = await peer.expectRequest('SUBSCRIBE');
    expect(unsub.message.expires).toBe(0);
    await peer.respond(unsub, 200, { toTag: 's1' });
    await peer.send(
      notifyText(sub.message, { toTag: 's1', cseq: 2, state: 'terminated', branch: 's2' }),
      dumAddress,
    );
    await peer.expectResponse(200, 'NOTIFY');
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    await peer.expectNothing(100);
    expect(finished).toBe(true);
  });

  it('§4.1.3: a NOTIFY without Subscription-State gets 400', async () => {
    const { alice, peer, dumAddress } = await scripted();
    const { handler } = subscriber();
    alice.dum.addClientSubscriptionHandler('presence', handler);
    alice.dum.send(alice.dum.makeSubscription('sip:bob@127.0.0.1:5090', 'presence', alice.profile));
    const sub = await peer.expectRequest('SUBSCRIBE');
    await peer.respond(sub, 202, {
      toTag: 'x',
      headers: [['Contact', '<sip:bob@127.0.0.1:5090>']],
    });
    const text = notifyText(sub.message, {
      toTag: 'x',
      cseq: 1,
      state: 'active',
      branch: 'q',
    }).replace('Subscription-State: active\r\n', '');
    await peer.send(text, dumAddress);
    await peer.expectResponse(400, 'NOTIFY');
  });
});

function subscribeText(o: {
  event: string;
  expires: number;
  branch: string;
  toTag?: string;
  cseq?: number;
}): string {
  return (
    'SUBSCRIBE sip:bob@127.0.0.1:5080 SIP/2.0\r\n' +
    `Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${o.branch}\r\n` +
    'Max-Forwards: 70\r\n' +
    'From: <sip:carol@127.0.0.1:5090>;tag=carol1\r\n' +
    `To: <sip:bob@127.0.0.1:5080>${o.toTag ? `;tag=${o.toTag}` : ''}\r\n` +
    'Call-ID: sub-wire-1\r\n' +
    `CSeq: ${o.cseq ?? 1} SUBSCRIBE\r\n` +
    'Contact: <sip:carol@127.0.0.1:5090>\r\n' +
    `Event: ${o.event}\r\n` +
    `Expires: ${o.expires}\r\n` +
    'Content-Length: 0\r\n\r\n'
  );
}

describe('a DUM notifier against a scripted subscriber (RFC 6665 §4.2)', () => {
  it('§4.2.1.1, §8.3.2: SUBSCRIBE for an event nobody serves gets 489 Bad Event with Allow-Events', async () => {
    const { alice, peer, dumAddress } = await scripted();
    alice.dum.addServerSubscriptionHandler('presence', {});
    await peer.send(subscribeText({ event: 'dialog', expires: 60, branch: 's0' }), dumAddress);
    const res = await peer.expectResponse(489, 'SUBSCRIBE');
    expect(res.message.header('Allow-Events')).toContain('presence');
  });

  it('§4.2.1.2, §4.2.2: an unrefreshed subscription expires: terminated NOTIFY with reason=timeout, onExpired', async () => {
    const { alice, peer, dumAddress } = await scripted();
    const events: string[] = [];
    alice.dum.addServerSubscriptionHandler('presence', {
      onNewSubscription: (h) => {
        h.get().accept(200);
        h.get().send(h.get().update(pidf('open'), PIDF));
      },
      onExpired: () => events.push('expired'),
      onTerminated: () => events.push('terminated'),
    });
    await peer.send(subscribeText({ event: 'presence', expires: 60, branch: 's1' }), dumAddress);
    const ok = await peer.expectResponse(200, 'SUBSCRIBE');
    expect(ok.message.expires).toBe(60);
    const first = await peer.expectRequest('NOTIFY');
    expect(state(first.message)?.state).toBe('active');
    expect(state(first.message)?.expires).toBe(60);
    await peer.respond(first, 200, { toTag: 'carol1' });
    const last = await peer.expectRequest('NOTIFY', { withinMs: 61_000, stepMs: 500 });
    expect(state(last.message)?.state).toBe('terminated');
    expect(state(last.message)?.reason).toBe('timeout');
    await peer.respond(last, 200, { toTag: 'carol1' });
    await peer.expectNothing(1000);
    expect(events).toEqual(['expired']);
    expect(alice.dum.dialogCount).toBe(0);
  });

  it('§4.2.1.2: a refresh in the dialog gets 200 with Expires, onRefresh and a NOTIFY with the state', async () => {
    const { alice, peer, dumAddress } = await scripted();
    const events: string[] = [];
    alice.dum.addServerSubscriptionHandler('presence', {
      onNewSubscription: (h) => {
        h.get().accept(200);
        h.get().send(h.get().update(pidf('open'), PIDF));
      },
      onRefresh: () => events.push('refresh'),
    });
    await peer.send(subscribeText({ event: 'presence', expires: 60, branch: 's2' }), dumAddress);
    const ok = await peer.expectResponse(200, 'SUBSCRIBE');
    const n1 = await peer.expectRequest('NOTIFY');
    await peer.respond(n1, 200, { toTag: 'carol1' });
    await peer.send(
      subscribeText({
        event: 'presence',
        expires: 120,
        branch: 's3',
        toTag: ok.message.to.tag ?? '',
        cseq: 2,
      }),
      dumAddress,
    );
    const ok2 = await peer.expectResponse(200, 'SUBSCRIBE');
    expect(ok2.message.expires).toBe(120);
    const n2 = await peer.expectRequest('NOTIFY');
    expect(new TextDecoder().decode(n2.message.body)).toContain('open');
    expect(n2.message.cseq.seq).toBe(n1.message.cseq.seq + 1);
    expect(events).toEqual(['refresh']);
  });
});

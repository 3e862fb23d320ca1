import type { SipRequest, SipResponse } from '@sipworks/message';
import { MemoryNetwork, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import type { ClientSubscription, Handle, ServerSubscription } from '../src/index.ts';
import { node, until } from './support.ts';

/** alice (5061) subscribes to bob (5062), who serves presence and message-summary. */
async function setup() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 51 });
  const alice = await node(network, clock, 5061, 'alice');
  const bob = await node(network, clock, 5062, 'bob');
  const served: Handle<ServerSubscription>[] = [];
  const ended: string[] = [];
  for (const event of ['presence', 'message-summary'])
    bob.dum.addServerSubscriptionHandler(event, {
      onNewSubscription: (h) => {
        served.push(h);
        const s = h.get();
        s.accept(200);
        s.send(s.update(`${s.event};${s.eventId ?? ''} first`, 'text/plain'));
      },
      onTerminated: (h) => ended.push(h.get().event),
    });
  const got: { event: string; id: string | undefined; body: string }[] = [];
  const terminated: string[] = [];
  for (const event of ['presence', 'message-summary'])
    alice.dum.addClientSubscriptionHandler(event, {
      onUpdateActive: (h, n) =>
        got.push({ event: h.get().event, id: h.get().eventId, body: n.bodyText }),
      onTerminated: (h) => terminated.push(`${h.get().event};${h.get().eventId ?? ''}`),
    });
  return { clock, alice, bob, served, ended, got, terminated };
}

describe('several subscriptions in one dialog (RFC 6665 §4.5.2)', () => {
  it('§4.5.2: a SUBSCRIBE in the dialog with another Event/id pair makes a second subscription; NOTIFYs go by Event and id', async () => {
    const { clock, alice, bob, served, got, terminated, ended } = await setup();
    const first = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'presence', alice.profile),
    );
    await until(clock, () => got.length === 1);
    const req = alice.dum.makeSubscriptionInDialog(first, 'message-summary');
    // Same dialog: Call-ID, tags and the next CSeq.
    expect(req.callId).toBe(first.get().lastNotify?.callId);
    expect(req.to.tag).toBeDefined();
    expect(req.cseq.seq).toBe(2);
    const second = alice.dum.send<ClientSubscription>(req);
    await until(clock, () => got.length === 2);
    const third = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscriptionInDialog(first, 'presence;id=2'),
    );
    await until(clock, () => got.length === 3);
    expect(got.map((g) => [g.event, g.id, g.body])).toEqual([
      ['presence', undefined, 'presence; first'],
      ['message-summary', undefined, 'message-summary; first'],
      ['presence', '2', 'presence;2 first'],
    ]);
    // One dialog on each side, shared by three subscriptions.
    expect(alice.dum.dialogCount).toBe(1);
    expect(bob.dum.dialogCount).toBe(1);
    const [p1, mwi, p2] = served.map((h) => h.get());
    expect(mwi?.dialog).toBe(p1?.dialog);
    expect(p1?.dialogSubscriptions).toHaveLength(3);
    expect(p2?.resource).toBe(p1?.resource);

    // Each NOTIFY reaches the subscription of its Event/id pair.
    mwi?.send(mwi.update('Messages-Waiting: yes\r\n', 'application/simple-message-summary'));
    p2?.send(p2.update('second presence', 'text/plain'));
    await until(clock, () => got.length === 5);
    expect(got.slice(3).map((g) => [g.event, g.id])).toEqual([
      ['message-summary', undefined],
      ['presence', '2'],
    ]);

    // §4.5.2: a NOTIFY for an Event/id pair with no subscription in the dialog: 481.
    const stray = (p1 as ServerSubscription).dialog.makeRequest('NOTIFY');
    stray.setHeader('Event', 'presence;id=9');
    stray.setHeader('Subscription-State', 'active;expires=60');
    let strayAnswer: SipResponse | undefined;
    bob.dum.stack.sendRequest(stray, { onResponse: (r) => (strayAnswer = r) });
    await until(clock, () => strayAnswer !== undefined);
    expect(strayAnswer?.status).toBe(481);

    // Ending one leaves the others and the dialog.
    second.get().end();
    await until(clock, () => terminated.length === 1);
    expect(terminated).toEqual(['message-summary;']);
    expect(ended).toEqual(['message-summary']);
    expect(alice.dum.dialogCount).toBe(1);
    expect(bob.dum.dialogCount).toBe(1);
    p1?.send(p1.update('still here', 'text/plain'));
    await until(clock, () => got.length === 6);
    expect(got[5]).toEqual({ event: 'presence', id: undefined, body: 'still here' });

    // The last one gone, the dialog goes.
    first.get().end();
    third.get().end();
    await until(clock, () => terminated.length === 3);
    await until(clock, () => alice.dum.dialogCount === 0 && bob.dum.dialogCount === 0);
  });

  it('§4.5.2: a SUBSCRIBE in the dialog for an event the notifier does not serve gets 489, and the dialog stays', async () => {
    const { clock, alice, bob, got } = await setup();
    alice.dum.addClientSubscriptionHandler('dialog', {});
    const first = alice.dum.send<ClientSubscription>(
      alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'presence', alice.profile),
    );
    await until(clock, () => got.length === 1);
    const terminated: (SipRequest | undefined)[] = [];
    alice.dum.addClientSubscriptionHandler('dialog', {
      onTerminated: (_h, n) => terminated.push(n),
    });
    alice.dum.send(alice.dum.makeSubscriptionInDialog(first, 'dialog'));
    await until(clock, () => terminated.length === 1);
    expect(first.get().state).toBe('active');
    expect(bob.dum.dialogCount).toBe(1);
  });
});

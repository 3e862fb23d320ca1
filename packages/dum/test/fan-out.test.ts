import type { SipRequest, SubscriptionState } from '@sipworks/message';
import type { Transport } from '@sipworks/stack';
import { MemoryNetwork, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  buildPidf,
  type ClientPublication,
  type Handle,
  type InMemoryPublicationStore,
  PIDF_CONTENT_TYPE,
  parsePidf,
} from '../src/index.ts';
import { node, until } from './support.ts';

const ALICE = 'sip:alice@127.0.0.1:5062';

function doc(basic: 'open' | 'closed', note: string, id = 'a1'): string {
  return buildPidf({ entity: 'pres:alice@127.0.0.1:5062', tuples: [{ id, basic, note }] });
}

/**
 * alice (5061) publishes her presence to a presence server DUM (5062), which is both
 * state agent (RFC 3903) and notifier (RFC 6665); bob (5063) subscribes to alice.
 */
async function setup() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 41 });
  const alice = await node(network, clock, 5061, 'alice', 5062);
  const server = await node(network, clock, 5062, 'presence');
  const bob = await node(network, clock, 5063, 'bob');
  server.dum.addServerPublicationHandler('presence', {});
  server.dum.addServerSubscriptionHandler('presence', {
    // Authorized at once: 200, and the current state (RFC 6665 §4.2.1.2).
    onNewSubscription: (h) => {
      const s = h.get();
      s.accept(200);
      void s.publishedState().then((n) => s.send(n));
    },
  });
  const notifies: SipRequest[] = [];
  bob.dum.addClientSubscriptionHandler('presence', {
    onUpdateActive: (_h, n) => notifies.push(n),
  });
  alice.dum.addClientPublicationHandler('presence', {});
  const publish = (body: string): Handle<ClientPublication> =>
    alice.dum.send(
      alice.dum.makePublication(ALICE, 'presence', alice.profile, body, PIDF_CONTENT_TYPE, {
        expires: 120,
      }),
    );
  return { clock, alice, server, bob, notifies, publish };
}

function basicOf(n: SipRequest | undefined): string[] {
  return parsePidf(n?.body ?? new Uint8Array())?.tuples.map((t) => t.basic) ?? [];
}

describe('publication to subscription fan-out (RFC 3903 §2, RFC 3856)', () => {
  it('RFC 3903 §4.1-§4.5: bob gets the PIDF alice publishes, each modification, and a closed state when she removes it', async () => {
    const { clock, bob, server, notifies, publish } = await setup();
    bob.dum.send(bob.dum.makeSubscription(ALICE, 'presence', bob.profile, { expires: 600 }));
    // Nothing published yet: the default compositor says closed.
    await until(clock, () => notifies.length === 1);
    expect(notifies[0]?.contentType?.mimeType).toBe(PIDF_CONTENT_TYPE);
    expect(basicOf(notifies[0])).toEqual(['closed']);
    expect(parsePidf(notifies[0]?.body as Uint8Array)?.entity).toBe('pres:alice@127.0.0.1:5062');

    const pub = publish(doc('open', 'available'));
    await until(clock, () => notifies.length === 2);
    expect(basicOf(notifies[1])).toEqual(['open']);
    expect(parsePidf(notifies[1]?.body as Uint8Array)?.tuples[0]?.note).toBe('available');
    expect(notifies[1]?.get<SubscriptionState>('Subscription-State')?.state).toBe('active');

    // §4.4: a modification is fanned out too.
    await until(clock, () => pub.get().state === 'published');
    pub.get().update(doc('open', 'in a meeting'));
    await until(clock, () => notifies.length === 3);
    expect(parsePidf(notifies[2]?.body as Uint8Array)?.tuples[0]?.note).toBe('in a meeting');

    // §4.3: a refresh without a body changes no state: no NOTIFY.
    await until(clock, () => pub.get().state === 'published');
    pub.get().refresh();
    const sentAt = notifies.length;
    for (let i = 0; i < 50; i++) {
      clock.advance(10);
      await new Promise((r) => setImmediate(r));
    }
    expect(notifies.length).toBe(sentAt);
    expect((server.dum.publicationStore as InMemoryPublicationStore).size).toBe(1);

    // §4.5: removal: back to closed.
    pub.get().end();
    await until(clock, () => notifies.length === sentAt + 1);
    expect(basicOf(notifies.at(-1))).toEqual(['closed']);
    expect((server.dum.publicationStore as InMemoryPublicationStore).size).toBe(0);
  });

  it('RFC 3903 §6: a publication that expires is fanned out as closed', async () => {
    const { clock, alice, bob, notifies } = await setup();
    bob.dum.send(bob.dum.makeSubscription(ALICE, 'presence', bob.profile, { expires: 3600 }));
    await until(clock, () => notifies.length === 1);
    const req = alice.dum.makePublication(
      ALICE,
      'presence',
      alice.profile,
      doc('open', 'here'),
      PIDF_CONTENT_TYPE,
      { expires: 60 },
    );
    const pub = alice.dum.send<ClientPublication>(req);
    await until(clock, () => notifies.length === 2);
    expect(basicOf(notifies[1])).toEqual(['open']);
    // alice drops off the network: her refresh never arrives, the state expires after 60 s.
    await until(clock, () => pub.get().state === 'published');
    await alice.dum.stack.removeTransport(alice.dum.stack.transports[0] as Transport);
    await until(clock, () => notifies.length === 3, { steps: 700, stepMs: 100 });
    expect(basicOf(notifies[2])).toEqual(['closed']);
  });

  it('a compositor hook merges every publication of the resource; false turns the fan-out off', async () => {
    const { clock, server, bob, notifies, publish } = await setup();
    server.dum.setPublicationComposer('presence', (resource, _event, states) => {
      const tuples = states.flatMap((s) => parsePidf(s.body)?.tuples ?? []);
      tuples.sort((a, b) => a.id.localeCompare(b.id));
      return {
        body: buildPidf({ entity: `pres:${resource.slice(4)}`, tuples }),
        contentType: PIDF_CONTENT_TYPE,
      };
    });
    bob.dum.send(bob.dum.makeSubscription(ALICE, 'presence', bob.profile));
    await until(clock, () => notifies.length === 1);
    expect(basicOf(notifies[0])).toEqual([]);
    publish(doc('open', 'phone', 'a1'));
    await until(clock, () => notifies.length === 2);
    publish(doc('closed', 'laptop', 'a2'));
    await until(clock, () => notifies.length === 3);
    const p = parsePidf(notifies[2]?.body as Uint8Array);
    expect(p?.tuples.map((t) => [t.id, t.basic, t.note])).toEqual([
      ['a1', 'open', 'phone'],
      ['a2', 'closed', 'laptop'],
    ]);

    server.dum.setPublicationComposer('presence', false);
    publish(doc('open', 'tablet', 'a3'));
    await until(clock, () => (server.dum.publicationStore as InMemoryPublicationStore).size === 3);
    for (let i = 0; i < 20; i++) {
      clock.advance(10);
      await new Promise((r) => setImmediate(r));
    }
    expect(notifies).toHaveLength(3);
  });
});

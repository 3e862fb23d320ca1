import type { SipRequest, SipResponse } from '@sipworks/message';
import { MemoryNetwork, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import type {
  ClientInviteSession,
  ClientRegistration,
  ClientSubscription,
  Handle,
  InviteSessionHandler,
  ServerInviteSession,
  ServerRegistration,
  ServerSubscription,
} from '../src/index.ts';
import { type Node, node, until } from './support.ts';

/**
 * Calls, registrations and subscriptions over a lossy datagram network: 10% and 30% of
 * datagrams dropped in both directions, several seeds each. Every usage must complete
 * through the retransmissions of RFC 3261 §17 (Timer A, E, G and the 2xx retransmission
 * of §13.3.1.4) within Timer B / F (64·T1 = 32 s), and leave no dialog or transaction.
 */
const T1 = 500;
const TIMER_B = 64 * T1;
const OFFER =
  'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER =
  'v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';
const PIDF =
  '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:bob@127.0.0.1">' +
  '<tuple id="t"><status><basic>open</basic></status></tuple></presence>';

/** Usages run one after another in each case, so that some datagrams are surely lost. */
const ROUNDS = 6;
const CASES = [0.1, 0.3].flatMap((drop) => [3, 17, 42].map((seed) => ({ drop, seed })));

async function lossy(drop: number, seed: number) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed, conditions: { drop } });
  const alice = await node(network, clock, 5061, 'alice', 5062);
  const bob = await node(network, clock, 5062, 'bob');
  return { clock, network, alice, bob };
}

/** Wait out Timer J / K / H so that every transaction has ended, then check nothing is left. */
async function nothingLeft(clock: VirtualClock, ...nodes: Node[]): Promise<void> {
  await until(
    clock,
    () =>
      nodes.every((n) => {
        const t = n.dum.stack.transactionCount;
        return t.client + t.server === 0 && n.dum.dialogCount === 0;
      }),
    { steps: 800, stepMs: 100 },
  );
}

describe('packet loss: every usage completes through retransmissions (RFC 3261 §17.1.1.2, §17.1.2.2, §13.3.1.4)', () => {
  it.each(CASES)(
    'REGISTER with $drop loss (seed $seed): 200 within Timer F, then removal',
    async ({ drop, seed }) => {
      const { clock, network, alice, bob } = await lossy(drop, seed);
      bob.dum.setServerRegistrationHandler({
        onAdd: (h: Handle<ServerRegistration>) => void h.get().accept(),
        onRefresh: (h: Handle<ServerRegistration>) => void h.get().accept(),
        onRemove: (h: Handle<ServerRegistration>) => void h.get().accept(),
        onRemoveAll: (h: Handle<ServerRegistration>) => void h.get().accept(),
        onQuery: (h: Handle<ServerRegistration>) => void h.get().accept(),
      });
      const out: string[] = [];
      alice.dum.setClientRegistrationHandler({
        onSuccess: () => out.push('success'),
        onRemoved: () => out.push('removed'),
        onFailure: (_h, r: SipResponse) => out.push(`failure:${r.status}`),
      });
      for (let round = 0; round < ROUNDS; round++) {
        out.length = 0;
        const started = clock.now();
        const h = alice.dum.send<ClientRegistration>(
          alice.dum.makeRegistration(undefined, alice.profile, { expires: 600 }),
        );
        await until(clock, () => out.length > 0, { steps: 400, stepMs: 100 });
        expect(out).toEqual(['success']);
        expect(clock.now() - started).toBeLessThanOrEqual(TIMER_B);
        h.get().end();
        await until(clock, () => out.length > 1, { steps: 400, stepMs: 100 });
        expect(out).toEqual(['success', 'removed']);
        await nothingLeft(clock, alice, bob);
      }
      expect(network.stats.dropped).toBeGreaterThan(0);
    },
  );

  it.each(CASES)(
    'INVITE, 180, 200, ACK, BYE with $drop loss (seed $seed): connected and ended on both sides',
    async ({ drop, seed }) => {
      const { clock, network, alice, bob } = await lossy(drop, seed);
      const events = { alice: [] as string[], bob: [] as string[] };
      const handler = (who: 'alice' | 'bob'): InviteSessionHandler => ({
        onNewSession: (h: Handle<ServerInviteSession>) => {
          events[who].push('new');
          h.get().provisional(180);
          h.get().accept({ body: ANSWER });
        },
        onConnected: () => events[who].push('connected'),
        onFailure: (_h, r: SipResponse) => events[who].push(`failure:${r.status}`),
        onTerminated: (_h, reason: string) => events[who].push(`terminated:${reason}`),
      });
      alice.dum.setInviteSessionHandler(handler('alice'));
      bob.dum.setInviteSessionHandler(handler('bob'));
      for (let round = 0; round < ROUNDS; round++) {
        events.alice.length = 0;
        events.bob.length = 0;
        const started = clock.now();
        const call = alice.dum.send<ClientInviteSession>(
          alice.dum.makeInviteSession('sip:bob@127.0.0.1:5062', alice.profile, { body: OFFER }),
        );
        await until(
          clock,
          () =>
            (events.alice.includes('connected') && events.bob.includes('connected')) ||
            events.alice.some((e) => e.startsWith('terminated')),
          { steps: 400, stepMs: 100 },
        );
        expect(events.alice).toContain('connected');
        expect(events.bob).toEqual(['new', 'connected']);
        // Connected on both sides (the ACK got through) within Timer B / Timer H.
        expect(clock.now() - started).toBeLessThanOrEqual(TIMER_B);
        call.get().end();
        await until(
          clock,
          () =>
            events.bob.some((e) => e.startsWith('terminated')) &&
            events.alice.some((e) => e.startsWith('terminated')),
          { steps: 400, stepMs: 100 },
        );
        expect(events.bob.at(-1)).toBe('terminated:remote-bye');
        expect(events.alice.at(-1)).toBe('terminated:local-bye');
        await nothingLeft(clock, alice, bob);
      }
      expect(network.stats.dropped).toBeGreaterThan(0);
    },
  );

  it.each(CASES)(
    'SUBSCRIBE, NOTIFY, unsubscribe with $drop loss (seed $seed): active, then terminated on both sides',
    async ({ drop, seed }) => {
      const { clock, network, alice, bob } = await lossy(drop, seed);
      const served: Handle<ServerSubscription>[] = [];
      const serverEvents: string[] = [];
      bob.dum.addServerSubscriptionHandler('presence', {
        onNewSubscription: (h) => {
          served.push(h);
          const s = h.get();
          s.accept(200);
          s.send(s.update(PIDF, 'application/pidf+xml'));
        },
        onTerminated: () => serverEvents.push('terminated'),
      });
      const seen: string[] = [];
      alice.dum.addClientSubscriptionHandler('presence', {
        onUpdateActive: (_h, n: SipRequest) => seen.push(`active:${n.bodyText.includes('open')}`),
        onUpdatePending: () => seen.push('pending'),
        onTerminated: () => seen.push('terminated'),
      });
      for (let round = 0; round < ROUNDS; round++) {
        seen.length = 0;
        serverEvents.length = 0;
        const started = clock.now();
        const h = alice.dum.send<ClientSubscription>(
          alice.dum.makeSubscription('sip:bob@127.0.0.1:5062', 'presence', alice.profile, {
            expires: 600,
          }),
        );
        await until(clock, () => seen.length > 0, { steps: 400, stepMs: 100 });
        expect(seen[0]).toBe('active:true');
        expect(clock.now() - started).toBeLessThanOrEqual(TIMER_B);
        h.get().end();
        await until(clock, () => seen.includes('terminated') && serverEvents.length > 0, {
          steps: 400,
          stepMs: 100,
        });
        expect(serverEvents).toEqual(['terminated']);
        await nothingLeft(clock, alice, bob);
        expect(served[round]?.isValid()).toBe(false);
      }
      expect(network.stats.dropped).toBeGreaterThan(0);
    },
  );
});

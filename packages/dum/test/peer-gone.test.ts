import type { SipResponse } from '@sipworks/message';
import { type DnsResolver, SipStack, type SrvRecord } from '@sipworks/stack';
import { MemoryNetwork, MemoryTransport, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type ClientInviteSession,
  type ClientPagerMessage,
  DialogUsageManager,
  type Handle,
  type InviteSessionHandler,
  type ServerInviteSession,
} from '../src/index.ts';
import { type Node, node, until } from './support.ts';

/**
 * Peers that vanish: the usage ends with the reason the RFC gives, the application's
 * handler hears of it, and neither the DUM (dialogs) nor the stack (transactions) keeps
 * anything afterwards. (No ACK: invite-session.test.ts §13.3.1.4; no NOTIFY:
 * subscription.test.ts §4.1.2.4.)
 */
const T1 = 500;
const OFFER =
  'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER =
  'v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';

function empty(n: { dum: DialogUsageManager }): boolean {
  const t = n.dum.stack.transactionCount;
  return n.dum.dialogCount === 0 && t.client + t.server === 0;
}

/** Records the callbacks of an InviteSessionHandler as strings; a callee answers at once. */
function sessions(events: string[]): InviteSessionHandler {
  return {
    onNewSession: (h: Handle<ServerInviteSession>) => {
      events.push('new');
      h.get().accept({ body: ANSWER });
    },
    onConnected: () => events.push('connected'),
    onFailure: (_h, r: SipResponse) => events.push(`failure:${r.status}`),
    onTerminated: (_h, reason: string) => events.push(`terminated:${reason}`),
  };
}

function noRecords(): Promise<never> {
  return Promise.reject(Object.assign(new Error('no data'), { code: 'ENODATA' }));
}

/** A DNS that knows some SRV and A records and nothing else (ENOTFOUND for the rest). */
function dns(srv: Record<string, SrvRecord[]>, a: Record<string, string[]>): DnsResolver {
  const unknown = (name: string): Promise<never> =>
    Promise.reject(Object.assign(new Error(`queryA ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
  return {
    resolveNaptr: () => noRecords(),
    resolveSrv: (name) => {
      const r = srv[name];
      return r ? Promise.resolve(r) : noRecords();
    },
    resolve4: (name) => {
      const r = a[name];
      return r ? Promise.resolve(r) : unknown(name);
    },
    resolve6: () => noRecords(),
  };
}

/** alice on a stack with `resolver`, bob at 127.0.0.1:5062, on one memory network. */
async function withDns(resolver: DnsResolver) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 9 });
  const stack = new SipStack({ clock, resolver });
  await stack.addTransport(new MemoryTransport({ network, port: 5061 }));
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  const alice = { dum, profile: dum.makeUserProfile({ aor: '<sip:alice@127.0.0.1>' }), port: 5061 };
  const bob = await node(network, clock, 5062, 'bob');
  return { clock, network, alice, bob };
}

describe('a peer that vanishes (RFC 3261 §17.1.2.2 Timer F, §15.1.1, RFC 3263 §4.3)', () => {
  it('§15.1.1 a BYE nobody answers: the application hears the end at once; the BYE gives up at Timer F and nothing is left', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 4 });
    const alice = await node(network, clock, 5061, 'alice');
    const bob = await node(network, clock, 5062, 'bob');
    const a: string[] = [];
    const b: string[] = [];
    alice.dum.setInviteSessionHandler(sessions(a));
    bob.dum.setInviteSessionHandler(sessions(b));
    const call = alice.dum.send<ClientInviteSession>(
      alice.dum.makeInviteSession('sip:bob@127.0.0.1:5062', alice.profile, { body: OFFER }),
    );
    await until(clock, () => a.includes('connected') && b.includes('connected'));
    // bob's phone drops off the network: every datagram to or from it is lost.
    network.conditions = { drop: 1 };
    call.get().end();
    // The session is over for the application at once (§15.1.1: the BYE ends it);
    // the BYE transaction itself gives up after Timer F.
    expect(a.at(-1)).toBe('terminated:local-bye');
    const ended = clock.now();
    await until(clock, () => empty(alice), { steps: 400, stepMs: 100 });
    expect(clock.now() - ended).toBeGreaterThanOrEqual(64 * T1);
    expect(call.isValid()).toBe(false);
    // bob, cut off, learns nothing: his side ends only by its own means (a session
    // timer, or the application); his dialog is still there.
    expect(bob.dum.dialogCount).toBe(1);
  });

  it('§4.3 a name that does not resolve: the MESSAGE fails at once (a local 503), nothing is left', async () => {
    const { clock, alice } = await withDns(dns({}, {}));
    const outcomes: number[] = [];
    alice.dum.setClientPagerMessageHandler({
      onSuccess: (_h, r) => outcomes.push(r.status),
      onFailure: (_h, r) => outcomes.push(r.status),
    });
    alice.dum.makePagerMessage('sip:bob@nowhere.test', alice.profile).get().page('hi');
    await until(clock, () => outcomes.length > 0);
    expect(outcomes).toEqual([503]);
    expect(clock.now()).toBeLessThan(T1);
    await until(clock, () => empty(alice));
  });

  it('§4.3 a name that does not resolve: the INVITE fails, onFailure then onTerminated, no dialog left', async () => {
    const { clock, alice } = await withDns(dns({}, {}));
    const a: string[] = [];
    alice.dum.setInviteSessionHandler(sessions(a));
    const call = alice.dum.send<ClientInviteSession>(
      alice.dum.makeInviteSession('sip:bob@nowhere.test', alice.profile, { body: OFFER }),
    );
    await until(clock, () => a.some((e) => e.startsWith('terminated')));
    expect(a[0]).toBe('failure:503');
    expect(a.at(-1)).toMatch(/^terminated:/);
    expect(call.isValid()).toBe(false);
    await until(clock, () => empty(alice));
  });

  it('§4.3 the first SRV target is dead: after Timer B the INVITE goes to the second, and the call is made', async () => {
    const resolver = dns(
      {
        '_sip._udp.example.test': [
          { name: 'dead.example.test', port: 5062, priority: 10, weight: 0 },
          { name: 'bob.example.test', port: 5062, priority: 20, weight: 0 },
        ],
      },
      { 'dead.example.test': ['127.0.0.9'], 'bob.example.test': ['127.0.0.1'] },
    );
    const { clock, alice, bob } = await withDns(resolver);
    const a: string[] = [];
    const b: string[] = [];
    alice.dum.setInviteSessionHandler(sessions(a));
    bob.dum.setInviteSessionHandler(sessions(b));
    const call = alice.dum.send<ClientInviteSession>(
      alice.dum.makeInviteSession('sip:bob@example.test', alice.profile, { body: OFFER }),
    );
    await until(clock, () => a.includes('connected'), { steps: 500, stepMs: 100 });
    // Timer B (64·T1) on the dead target first, then the second one answers.
    expect(clock.now()).toBeGreaterThanOrEqual(64 * T1);
    expect(b).toEqual(['new', 'connected']);
    call.get().end();
    await until(clock, () => empty(alice) && empty(bob as Node), { steps: 500, stepMs: 100 });
  });

  it('§4.3 every SRV target dead: one failure for the application, after trying each', async () => {
    const resolver = dns(
      {
        '_sip._udp.example.test': [
          { name: 'dead1.example.test', port: 5062, priority: 10, weight: 0 },
          { name: 'dead2.example.test', port: 5062, priority: 20, weight: 0 },
        ],
      },
      { 'dead1.example.test': ['127.0.0.8'], 'dead2.example.test': ['127.0.0.9'] },
    );
    const { clock, alice } = await withDns(resolver);
    const outcomes: number[] = [];
    alice.dum.setClientPagerMessageHandler({
      onSuccess: (_h, r) => outcomes.push(r.status),
      onFailure: (_h, r) => outcomes.push(r.status),
    });
    const h: Handle<ClientPagerMessage> = alice.dum.makePagerMessage(
      'sip:bob@example.test',
      alice.profile,
    );
    h.get().page('hi');
    await until(clock, () => outcomes.length > 0, { steps: 1000, stepMs: 100 });
    expect(outcomes).toHaveLength(1);
    expect([408, 503]).toContain(outcomes[0]);
    expect(clock.now()).toBeGreaterThanOrEqual(2 * 64 * T1);
    await until(clock, () => empty(alice), { steps: 500, stepMs: 100 });
  });
});

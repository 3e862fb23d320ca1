import { DialogUsageManager, type UserProfile } from '@sipworks/dum';
import { SipStack } from '@sipworks/stack';
import { MemoryNetwork, MemoryTransport, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type PeerConnectionLike,
  type SessionDescriptionInit,
  type TransceiverDirection,
  type TransceiverLike,
  type WebRtcCall,
  WebRtcCalls,
  WebRtcError,
} from '../src/index.ts';

/**
 * A peer connection double: descriptions are SDP with one audio section whose direction
 * is the transceiver's, ICE gathering completes a tick after setLocalDescription, and
 * every call is recorded so the tests can check the RFC 3264 mapping.
 */
class FakePeerConnection implements PeerConnectionLike {
  localDescription: { type: string; sdp: string } | null = null;
  remoteDescription: SessionDescriptionInit | null = null;
  iceGatheringState = 'new';
  signalingState = 'stable';
  closed = false;
  readonly log: string[] = [];
  private readonly transceiver: TransceiverLike = { direction: 'sendrecv' };
  private readonly listeners = new Set<() => void>();
  private version = 0;

  readonly name: string;

  constructor(name: string) {
    this.name = name;
  }

  private sdp(direction: TransceiverDirection): string {
    this.version++;
    return (
      `v=0\r\no=${this.name} 1 ${this.version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n` +
      `m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=${direction}\r\na=candidate:1 1 udp 1 127.0.0.1 4000${this.version} typ host\r\n`
    );
  }

  async createOffer(): Promise<SessionDescriptionInit> {
    this.log.push('createOffer');
    return { type: 'offer', sdp: this.sdp(this.transceiver.direction) };
  }

  async createAnswer(): Promise<SessionDescriptionInit> {
    this.log.push('createAnswer');
    const offered = /a=(sendrecv|sendonly|recvonly|inactive)/.exec(
      this.remoteDescription?.sdp ?? '',
    )?.[1];
    const answer: TransceiverDirection =
      offered === 'sendonly'
        ? 'recvonly'
        : offered === 'inactive'
          ? 'inactive'
          : offered === 'recvonly'
            ? 'sendonly'
            : 'sendrecv';
    return { type: 'answer', sdp: this.sdp(answer) };
  }

  async setLocalDescription(d?: SessionDescriptionInit): Promise<void> {
    this.log.push(`setLocal:${d?.type}`);
    if (d?.type === 'rollback') {
      this.signalingState = 'stable';
      return;
    }
    this.localDescription = { type: d?.type ?? 'offer', sdp: d?.sdp ?? '' };
    this.signalingState = d?.type === 'offer' ? 'have-local-offer' : 'stable';
    this.iceGatheringState = 'gathering';
    setTimeout(() => {
      this.iceGatheringState = 'complete';
      for (const l of this.listeners) l();
    }, 0);
  }

  /** Refuse remote offers after the first (a browser that cannot take a re-offer). */
  refuseOffers = false;

  async setRemoteDescription(d: SessionDescriptionInit): Promise<void> {
    this.log.push(`setRemote:${d.type}`);
    if (d.type === 'rollback') {
      this.signalingState = 'stable';
      return;
    }
    if (this.refuseOffers && d.type === 'offer') throw new Error('refused by the test');
    this.remoteDescription = d;
    this.signalingState = d.type === 'offer' ? 'have-remote-offer' : 'stable';
  }

  getTransceivers(): TransceiverLike[] {
    return [this.transceiver];
  }

  addEventListener(_type: 'icegatheringstatechange', l: () => void): void {
    this.listeners.add(l);
  }

  removeEventListener(_type: 'icegatheringstatechange', l: () => void): void {
    this.listeners.delete(l);
  }

  close(): void {
    this.closed = true;
  }
}

interface Phone {
  calls: WebRtcCalls;
  profile: UserProfile;
  pcs: FakePeerConnection[];
  incoming: WebRtcCall[];
}

async function phone(
  network: MemoryNetwork,
  clock: VirtualClock,
  port: number,
  user: string,
  answer = true,
): Promise<Phone> {
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, port }));
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  const profile = dum.makeUserProfile({ aor: `<sip:${user}@127.0.0.1:${port}>` });
  const pcs: FakePeerConnection[] = [];
  const incoming: WebRtcCall[] = [];
  const calls = new WebRtcCalls(dum, {
    createPeerConnection: () => {
      const pc = new FakePeerConnection(user);
      pcs.push(pc);
      return pc;
    },
    onIncoming: (call) => {
      incoming.push(call);
      if (answer) void call.answer();
    },
  });
  return { calls, profile, pcs, incoming };
}

async function until(clock: VirtualClock, cond: () => boolean, steps = 500): Promise<void> {
  for (let i = 0; i < steps && !cond(); i++) {
    clock.advance(10);
    await new Promise((r) => setTimeout(r, 0));
  }
  if (!cond()) throw new Error('condition not reached');
}

async function pair(answer = true) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 9 });
  const alice = await phone(network, clock, 5081, 'alice');
  const bob = await phone(network, clock, 5082, 'bob', answer);
  return { clock, alice, bob };
}

describe('WebRtcCalls: an invite session on an RTCPeerConnection (RFC 3264 offer/answer, RFC 3261 §13)', () => {
  it('a call: local offer with ICE gathered in the INVITE, answer in the 200, both connected, BYE closes both', async () => {
    const { clock, alice, bob } = await pair();
    const call = await alice.calls.call('sip:bob@127.0.0.1:5082', alice.profile);
    expect(call.state).toBe('calling');
    await until(clock, () => call.state === 'connected' && bob.incoming[0]?.state === 'connected');
    const a = alice.pcs[0] as FakePeerConnection;
    const b = bob.pcs[0] as FakePeerConnection;
    expect(a.log).toEqual(['createOffer', 'setLocal:offer', 'setRemote:answer']);
    expect(b.log).toEqual(['setRemote:offer', 'createAnswer', 'setLocal:answer']);
    // The offer that went out is the local description after gathering: it has candidates.
    expect(b.remoteDescription?.sdp).toBe(a.localDescription?.sdp);
    expect(b.remoteDescription?.sdp).toMatch(/a=candidate:/);
    expect(a.remoteDescription?.sdp).toBe(b.localDescription?.sdp);
    expect(bob.incoming[0]?.remote).toMatch(/^sip:alice@/);
    call.hangup();
    await until(clock, () => call.state === 'ended' && bob.incoming[0]?.state === 'ended');
    expect(call.endReason).toBe('local-bye');
    expect(bob.incoming[0]?.endReason).toBe('remote-bye');
    expect(a.closed && b.closed).toBe(true);
  });

  it('hold and resume by re-INVITE (RFC 3264 §8.4): sendonly offered, recvonly answered, then sendrecv again', async () => {
    const { clock, alice, bob } = await pair();
    const call = await alice.calls.call('sip:bob@127.0.0.1:5082', alice.profile);
    await until(clock, () => call.state === 'connected' && bob.incoming[0]?.state === 'connected');
    const a = alice.pcs[0] as FakePeerConnection;
    const b = bob.pcs[0] as FakePeerConnection;
    let done = false;
    const held = call.hold().then(() => {
      done = true;
    });
    await until(clock, () => done);
    await held;
    expect(a.remoteDescription?.sdp).toMatch(/a=recvonly/);
    expect(call.held).toBe(true);
    expect(b.remoteDescription?.sdp).toMatch(/a=sendonly/);
    expect(b.log.slice(3)).toEqual(['setRemote:offer', 'createAnswer', 'setLocal:answer']);
    done = false;
    const resumed = call.resume().then(() => {
      done = true;
    });
    await until(clock, () => done);
    await resumed;
    expect(a.remoteDescription?.sdp).toMatch(/a=sendrecv/);
    expect(call.held).toBe(false);
    expect(b.remoteDescription?.sdp).toMatch(/a=sendrecv/);
    expect(call.state).toBe('connected');
  });

  it('a re-INVITE the peer cannot take is refused with 488 (RFC 3264 §8): hold() rejects, the transceivers and the call stay as they were', async () => {
    const { clock, alice, bob } = await pair();
    const call = await alice.calls.call('sip:bob@127.0.0.1:5082', alice.profile);
    await until(clock, () => call.state === 'connected' && bob.incoming[0]?.state === 'connected');
    const a = alice.pcs[0] as FakePeerConnection;
    const b = bob.pcs[0] as FakePeerConnection;
    b.refuseOffers = true;
    let outcome: unknown;
    const held = call.hold().catch((e: unknown) => {
      outcome = e;
    });
    await until(clock, () => outcome !== undefined);
    await held;
    expect(outcome).toBeInstanceOf(WebRtcError);
    expect(String(outcome)).toMatch(/488/);
    expect(call.held).toBe(false);
    expect(a.getTransceivers()[0]?.direction).toBe('sendrecv');
    expect(a.log.at(-1)).toBe('setLocal:rollback');
    expect(call.state).toBe('connected');
    expect(bob.incoming[0]?.state).toBe('connected');
  });

  it('an incoming call waits for answer(); reject() sends 486 and the caller ends failed', async () => {
    const { clock, alice, bob } = await pair(false);
    const call = await alice.calls.call('sip:bob@127.0.0.1:5082', alice.profile);
    await until(clock, () => bob.incoming.length === 1 && call.state === 'ringing');
    const incoming = bob.incoming[0] as WebRtcCall;
    expect(incoming.state).toBe('incoming');
    expect(bob.pcs).toHaveLength(0);
    await expect(call.answer()).rejects.toThrow(WebRtcError);
    incoming.reject();
    await until(clock, () => call.state === 'ended');
    expect(call.endReason).toBe('failed');
    expect(call.failure?.status).toBe(486);
    expect((alice.pcs[0] as FakePeerConnection).closed).toBe(true);
  });

  it('hanging up before the answer CANCELs (RFC 3261 §9.1)', async () => {
    const { clock, alice, bob } = await pair(false);
    const call = await alice.calls.call('sip:bob@127.0.0.1:5082', alice.profile);
    await until(clock, () => call.state === 'ringing');
    call.hangup();
    await until(clock, () => call.state === 'ended' && bob.incoming[0]?.state === 'ended');
    expect(call.endReason).toBe('cancelled');
    await expect(call.hold()).rejects.toThrow(WebRtcError);
  });
});

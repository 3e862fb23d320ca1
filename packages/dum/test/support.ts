import type { SipRequest, SipResponse } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import { MemoryNetwork, MemoryTransport, VirtualClock } from '@sipworks/stack/testing';
import {
  type ClientInviteSession,
  DialogUsageManager,
  type Handle,
  type InviteSession,
  type InviteSessionHandler,
  type ServerInviteSession,
  type UserProfile,
} from '../src/index.ts';

/** One DUM on the memory network, with a user profile for `user`. */
export interface Node {
  dum: DialogUsageManager;
  profile: UserProfile;
  port: number;
}

/** A DUM on its own stack at `port`; the profile's AOR is `sip:user@127.0.0.1:aorPort` (default: `port`). */
export async function node(
  network: MemoryNetwork,
  clock: VirtualClock,
  port: number,
  user: string,
  aorPort = port,
): Promise<Node> {
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, port }));
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  const profile = dum.makeUserProfile({ aor: `<sip:${user}@127.0.0.1:${aorPort}>` });
  return { dum, profile, port };
}

/** Move the virtual clock in steps until `cond` holds; throw after `steps` steps (default 1000 of 10 ms). */
export async function until(
  clock: VirtualClock,
  cond: () => boolean,
  options?: { steps?: number; stepMs?: number; each?: () => void },
): Promise<void> {
  const steps = options?.steps ?? 1000;
  for (let i = 0; i < steps && !cond(); i++) {
    options?.each?.();
    clock.advance(options?.stepMs ?? 10);
    await new Promise((r) => setImmediate(r));
  }
  if (!cond()) throw new Error('condition not reached');
}

/** An SDP body for tests; `version` changes the o= line, as a new offer does. */
export function sdp(user: string, port: number, version = 1): string {
  return (
    `v=0\r\no=${user} 1 ${version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n` +
    `m=audio ${port} RTP/AVP 0\r\n`
  );
}

const decoder = new TextDecoder();

/**
 * An InviteSessionHandler that records events as short strings (`offer:<o= user>`,
 * `answer`, `rejected:<status>` ...), keeps the last message of each, and answers
 * offers as told: `answer` (a body, or a function of the offer) answers every offer
 * (in a 2xx, or in the ACK for an offer in a 2xx); `offerOnRequest` answers
 * `onOfferRequired`; `onIncoming` sees each new session.
 */
export class SessionRecorder implements InviteSessionHandler {
  readonly events: string[] = [];
  readonly messages = new Map<string, SipRequest | SipResponse>();
  readonly bodies = new Map<string, string>();
  server: Handle<ServerInviteSession> | undefined;
  onIncoming: ((h: Handle<ServerInviteSession>, invite: SipRequest) => void) | undefined;
  answer: string | ((offer: string) => string) | undefined;
  offerOnRequest: string | undefined;
  /** Reject offers in re-INVITE / UPDATE with this status instead of answering. */
  rejectWith: number | undefined;

  has(e: string): boolean {
    return this.events.includes(e);
  }
  count(e: string): number {
    return this.events.filter((x) => x === e).length;
  }
  private note(e: string, m?: SipRequest | SipResponse, body?: Uint8Array): void {
    this.events.push(e);
    const key = e.split(':')[0] as string;
    if (m) this.messages.set(key, m);
    if (body) this.bodies.set(key, decoder.decode(body));
  }
  onNewSession(h: Handle<ServerInviteSession>, invite: SipRequest): void {
    this.server = h;
    this.note('new', invite);
    this.onIncoming?.(h, invite);
  }
  onProvisional(_h: Handle<ClientInviteSession>, r: SipResponse): void {
    this.note(`provisional:${r.status}`, r);
  }
  onEarlyMedia(_h: Handle<ClientInviteSession>, r: SipResponse): void {
    this.note('early-media', r);
  }
  onOffer(h: Handle<InviteSession>, m: SipRequest | SipResponse, body: Uint8Array): void {
    this.note('offer', m, body);
    const s = h.get();
    // The offer in the initial INVITE is answered by the test, through accept().
    if (s.kind === 'ServerInviteSession' && m === (s as ServerInviteSession).request) return;
    if (this.rejectWith !== undefined && 'method' in m) {
      s.reject(this.rejectWith);
      return;
    }
    const a = typeof this.answer === 'function' ? this.answer(decoder.decode(body)) : this.answer;
    if (a !== undefined) s.provideAnswer(a);
  }
  onOfferRequired(h: Handle<InviteSession>, m: SipRequest): void {
    this.note('offer-required', m);
    const s = h.get();
    if (this.offerOnRequest !== undefined && s.isConnected) s.provideOffer(this.offerOnRequest);
  }
  onOfferRejected(_h: Handle<InviteSession>, r: SipResponse | undefined): void {
    this.note(`rejected:${r?.status ?? 'ack'}`, r);
  }
  onAnswer(_h: Handle<InviteSession>, m: SipRequest | SipResponse, body: Uint8Array): void {
    this.note('answer', m, body);
  }
  onConnected(_h: Handle<InviteSession>, m: SipRequest | SipResponse): void {
    this.note('connected', m);
  }
  onFailure(_h: Handle<ClientInviteSession>, r: SipResponse): void {
    this.note(`failure:${r.status}`, r);
  }
  onPrack(_h: Handle<InviteSession>, prack: SipRequest): void {
    this.note('prack', prack);
  }
  onSessionExpired(): void {
    this.note('session-expired');
  }
  onTerminated(_h: Handle<InviteSession>, reason: string, m?: SipRequest | SipResponse): void {
    this.note(`terminated:${reason}`, m);
  }
}

/** Two DUMs on one memory network: a (alice, port 5061) and b (bob, port 5062), each with a SessionRecorder. */
export async function sessionPair(seed = 7): Promise<{
  a: Node & { rec: SessionRecorder };
  b: Node & { rec: SessionRecorder };
  clock: VirtualClock;
  network: MemoryNetwork;
}> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed });
  const a = { ...(await node(network, clock, 5061, 'alice')), rec: new SessionRecorder() };
  const b = { ...(await node(network, clock, 5062, 'bob')), rec: new SessionRecorder() };
  a.dum.setInviteSessionHandler(a.rec);
  b.dum.setInviteSessionHandler(b.rec);
  return { a, b, clock, network };
}

/** Call from a to b with `offer` (none: late offer); b accepts with `answer`. Resolves when both are connected. */
export async function establish(
  a: Node & { rec: SessionRecorder },
  b: Node & { rec: SessionRecorder },
  clock: VirtualClock,
  offer: string = sdp('alice', 4000),
  answer: string = sdp('bob', 5000),
): Promise<{ caller: Handle<ClientInviteSession>; callee: Handle<ServerInviteSession> }> {
  const caller = a.dum.send<ClientInviteSession>(
    a.dum.makeInviteSession(`sip:bob@127.0.0.1:${b.port}`, a.profile, { body: offer }),
  );
  await until(clock, () => b.rec.server !== undefined);
  const callee = b.rec.server as Handle<ServerInviteSession>;
  callee.get().accept({ body: answer });
  await until(clock, () => a.rec.has('connected') && b.rec.has('connected'));
  return { caller, callee };
}

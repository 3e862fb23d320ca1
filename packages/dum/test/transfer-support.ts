import type { SipRequest, SipResponse } from '@sipworks/message';
import { MemoryNetwork, VirtualClock } from '@sipworks/stack/testing';
import type {
  ClientSubscription,
  Handle,
  InviteSession,
  InviteSessionHandler,
  ServerInviteSession,
  ServerReferSubscription,
  SipfragStatus,
} from '../src/index.ts';
import { type Node, node } from './support.ts';

export const OFFER =
  'v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
export const ANSWER =
  'v=0\r\no=b 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';

/** An InviteSessionHandler for transfer tests: answers calls, records what happens. */
export class Party implements InviteSessionHandler {
  readonly events: string[] = [];
  /** Incoming sessions, in order, with their INVITE. */
  readonly incoming: { h: Handle<ServerInviteSession>; invite: SipRequest }[] = [];
  /** Sessions that came up. */
  readonly up: Handle<InviteSession>[] = [];
  readonly refers: {
    session: Handle<InviteSession>;
    sub: Handle<ServerReferSubscription>;
    refer: SipRequest;
    noSub: boolean;
  }[] = [];
  readonly progress: (SipfragStatus | undefined)[] = [];
  readonly notifies: SipRequest[] = [];
  readonly accepted: { sub: Handle<ClientSubscription> | undefined; res: SipResponse }[] = [];
  readonly rejected: SipResponse[] = [];
  readonly ended = new Map<number, string>();
  /** Accept incoming calls at once (default). */
  autoAnswer = true;
  /** What to do with a REFER (nothing by default). */
  onReferDo: ((entry: Party['refers'][number]) => void) | undefined;
  /** Called for each sipfrag status. */
  onProgressDo:
    | ((session: Handle<InviteSession>, s: SipfragStatus | undefined) => void)
    | undefined;

  has(e: string): boolean {
    return this.events.includes(e);
  }
  onNewSession(h: Handle<ServerInviteSession>, invite: SipRequest): void {
    this.incoming.push({ h, invite });
    this.events.push('new');
    if (this.autoAnswer) h.get().accept({ body: ANSWER });
  }
  onConnected(h: Handle<InviteSession>): void {
    this.up.push(h);
    this.events.push('connected');
  }
  onRefer(
    session: Handle<InviteSession>,
    sub: Handle<ServerReferSubscription>,
    refer: SipRequest,
  ): void {
    const e = { session, sub, refer, noSub: false };
    this.refers.push(e);
    this.events.push('refer');
    this.onReferDo?.(e);
  }
  onReferNoSub(
    session: Handle<InviteSession>,
    sub: Handle<ServerReferSubscription>,
    refer: SipRequest,
  ): void {
    const e = { session, sub, refer, noSub: true };
    this.refers.push(e);
    this.events.push('refer-nosub');
    this.onReferDo?.(e);
  }
  onReferAccepted(
    _h: Handle<InviteSession>,
    sub: Handle<ClientSubscription> | undefined,
    res: SipResponse,
  ): void {
    this.accepted.push({ sub, res });
    this.events.push(`refer-accepted:${res.status}`);
  }
  onReferRejected(_h: Handle<InviteSession>, res: SipResponse): void {
    this.rejected.push(res);
    this.events.push(`refer-rejected:${res.status}`);
  }
  onReferProgress(
    h: Handle<InviteSession>,
    _sub: Handle<ClientSubscription>,
    s: SipfragStatus | undefined,
    notify: SipRequest,
  ): void {
    this.progress.push(s);
    this.notifies.push(notify);
    this.onProgressDo?.(h, s);
  }
  onTerminated(h: Handle<InviteSession>, reason: string): void {
    this.ended.set(h.id, reason);
    this.events.push(`terminated:${reason}`);
  }
}

export interface Peer extends Node {
  party: Party;
  uri: string;
}

/** Alice (5061), Bob (5062) and Carol (5063): three DUMs on one memory network. */
export async function three(seed = 7): Promise<{
  clock: VirtualClock;
  network: MemoryNetwork;
  a: Peer;
  b: Peer;
  c: Peer;
}> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed });
  const make = async (port: number, user: string): Promise<Peer> => {
    const n = await node(network, clock, port, user);
    const party = new Party();
    n.dum.setInviteSessionHandler(party);
    return { ...n, party, uri: `sip:${user}@127.0.0.1:${port}` };
  };
  return {
    clock,
    network,
    a: await make(5061, 'alice'),
    b: await make(5062, 'bob'),
    c: await make(5063, 'carol'),
  };
}

/** A call from `from` to `to` with an offer; resolves when both sides are up. */
export async function call(
  from: Peer,
  to: Peer,
  until: (cond: () => boolean) => Promise<void>,
): Promise<{ caller: Handle<InviteSession>; callee: Handle<InviteSession> }> {
  const before = to.party.incoming.length;
  const caller = from.dum.send<InviteSession>(
    from.dum.makeInviteSession(to.uri, from.profile, { body: OFFER }),
  );
  await until(
    () =>
      to.party.incoming.length > before &&
      from.party.up.some((h) => h.id === caller.id) &&
      to.party.up.some((h) => h.id === to.party.incoming[before]?.h.id),
  );
  return { caller, callee: to.party.incoming[before]?.h as Handle<InviteSession> };
}

import {
  type ClientInviteSession,
  type ContactBinding,
  type DialogUsageManager,
  type Handle,
  type InviteSession,
  type InviteSessionHandler,
  ServerInviteSession,
  type ServerReferSubscription,
  type UserProfile,
} from '@sipworks/dum';
import {
  type NameAddr,
  parseHeader,
  type SipRequest,
  type SipResponse,
  type Uri,
} from '@sipworks/message';
import { makeAnswer, makeOffer, withDirection } from './sdp.ts';

/** How the server's calls behave: the `serve` options that concern INVITE. */
export interface CallSettings {
  answer: 'auto' | 'ring' | 'busy';
  answerDelayMs: number;
  earlyMedia: boolean;
  /** The address written in our SDP bodies. */
  mediaAddress: string;
  /** The contacts registered for the user a URI names, ours excluded (none: we answer). */
  contactsOf: (uri: Uri) => Promise<ContactBinding[]>;
  log: (line: string, fields: Record<string, unknown>) => void;
}

/**
 * One bridged call (B2BUA): two legs whose media descriptions and end are tied. `a` is
 * the leg that came to us (a caller, or the transferee of a transfer), `b` the leg we
 * placed. Until `b` is answered, `b`'s progress is mirrored to `a` (a plain call) or
 * NOTIFYed to the referrer (a transfer).
 */
interface Bridge {
  kind: 'call' | 'transfer';
  a: Handle<InviteSession>;
  b: Handle<ClientInviteSession> | undefined;
  /** Who is at the end of each leg (the From of the INVITE we place, when transferring). */
  partyA: NameAddr;
  partyB: NameAddr;
  /** The SDP `b` answered with. */
  answer: string | undefined;
  failure: SipResponse | undefined;
  /** For a transfer: the leg of the referrer, ended once the transfer succeeds. */
  transferor?: Handle<InviteSession> | undefined;
}

const text = (body: Uint8Array) => new TextDecoder().decode(body);

/** Whether the request lists `tag` in Supported or Require. */
function hasTag(req: SipRequest, tag: string): boolean {
  return [...req.headers('Supported'), ...req.headers('Require')].some((v) =>
    v
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .includes(tag),
  );
}

/**
 * The INVITE side of `sipworks serve`: a B2BUA for registered users (re-INVITE and
 * UPDATE relayed from one leg to the other, REFER performed by the server), and an
 * endpoint for the rest (180 or 183, then 200; reliable when the caller supports 100rel,
 * RFC 3262; hold and other re-INVITEs answered; REFER performed).
 */
export class ServerCalls {
  private readonly bridges = new Map<number, Bridge>();
  /** An offer relayed to a leg (key), and the leg whose re-INVITE or UPDATE waits for its answer. */
  private readonly relays = new Map<number, Handle<InviteSession>>();
  /** The last description each leg sent us (offer or answer). */
  private readonly remoteSdp = new Map<number, string>();

  private readonly dum: DialogUsageManager;
  private readonly s: CallSettings;

  constructor(dum: DialogUsageManager, settings: CallSettings) {
    this.dum = dum;
    this.s = settings;
  }

  /** Register the handlers: invite sessions, and REFER outside a dialog. */
  install(): void {
    this.dum.setInviteSessionHandler(this.handler());
    this.dum.addServerSubscriptionHandler('refer', {
      onNewSubscriptionFromRefer: (sub, refer) => this.referOutOfDialog(sub, refer),
    });
  }

  private handler(): InviteSessionHandler {
    return {
      onNewSession: (h, invite) => {
        const fail = (e: unknown) => {
          this.s.log(`INVITE from ${invite.from.uri} failed: ${(e as Error).message}`, {});
          if (h.isValid() && h.get().state === 'proceeding') h.get().reject(500);
        };
        this.s
          .contactsOf(invite.uri)
          .then((contacts) => {
            if (!h.isValid() || h.get().state !== 'proceeding') return;
            if (contacts.length > 0) this.bridge(h, invite, contacts[0] as ContactBinding);
            else this.answerAsEndpoint(h, invite);
          })
          .catch(fail);
      },
      onProvisional: (h, res) => this.mirrorProvisional(h, res),
      onOffer: (h, msg, body) => this.receiveOffer(h, msg, body),
      onAnswer: (h, _m, body) => this.receiveAnswer(h, body),
      onOfferRejected: (h, res) => {
        const origin = this.relays.get(h.id);
        if (!origin) return;
        this.relays.delete(h.id);
        if (!origin.isValid()) return;
        try {
          origin.get().reject(res && res.status >= 300 ? res.status : 488);
        } catch (e) {
          this.s.log(`could not relay the refusal: ${(e as Error).message}`, {});
        }
      },
      onConnected: (h) => this.connected(h),
      onFailure: (h, res) => {
        const b = this.bridges.get(h.id);
        if (b && b.b?.id === h.id) b.failure = res;
      },
      onRefer: (h, sub, refer) => this.referInDialog(h, sub, refer),
      onTerminated: (h, reason) => this.terminated(h, reason),
    };
  }

  // ---- plain calls ----

  private bridge(h: Handle<ServerInviteSession>, invite: SipRequest, contact: ContactBinding) {
    const partyA = invite.from.clone();
    partyA.params.delete('tag');
    const partyB = invite.to.clone();
    partyB.params.delete('tag');
    const ct = invite.header('Content-Type');
    const req = this.dum.makeInviteSession(
      contact.contact.uri,
      relayProfile(this.dum, partyA, contact),
      invite.body.length > 0
        ? { body: invite.body, ...(ct ? { contentType: ct } : {}) }
        : undefined,
    );
    this.s.log(`bridging INVITE ${invite.from.uri} -> ${contact.contact.uri}`, {
      to: contact.contact.uri.toString(),
    });
    const b: Bridge = {
      kind: 'call',
      a: h,
      b: undefined,
      partyA,
      partyB,
      answer: undefined,
      failure: undefined,
    };
    this.bridges.set(h.id, b);
    b.b = this.dum.send<ClientInviteSession>(req);
    this.bridges.set(b.b.id, b);
  }

  private answerAsEndpoint(h: Handle<ServerInviteSession>, invite: SipRequest): void {
    const session = h.get();
    if (this.s.answer === 'busy') {
      session.reject(486);
      return;
    }
    let sdp: string;
    try {
      sdp =
        invite.body.length > 0
          ? makeAnswer(text(invite.body), this.s.mediaAddress)
          : makeOffer(this.s.mediaAddress);
    } catch (e) {
      session.reject(488, `Not Acceptable Here (${(e as Error).message})`);
      return;
    }
    // RFC 3262 §3: a provisional is sent reliably when the caller supports 100rel and
    // the profile does not say `never` (with `required` the DUM makes them reliable itself).
    const reliable = this.dum.masterProfile.get('prack') !== 'never' && hasTag(invite, '100rel');
    if (this.s.earlyMedia) session.provisional(183, { body: sdp, reliable });
    else session.provisional(180, { reliable });
    if (this.s.answer === 'ring') return;
    // accept() waits for the PRACK of every reliable provisional before the 2xx goes out;
    // an answer already sent in a reliable 183 is not sent again (RFC 3262 §5).
    const body = this.s.earlyMedia && reliable ? undefined : { body: sdp };
    const answer = (): void => {
      if (!h.isValid() || h.get().state !== 'proceeding') return;
      try {
        h.get().accept(body);
      } catch (e) {
        this.s.log(`could not answer: ${(e as Error).message}`, {});
        if (h.isValid() && h.get().state === 'proceeding') h.get().reject(500);
      }
    };
    // --answer-delay 0: the 200 right behind the provisional, without a timer per call.
    if (this.s.answerDelayMs === 0) {
      answer();
      return;
    }
    const t = setTimeout(answer, this.s.answerDelayMs);
    t.unref?.();
  }

  /** A 1xx on a leg we placed: mirrored to the caller of a plain bridged call. */
  private mirrorProvisional(h: Handle<ClientInviteSession>, res: SipResponse): void {
    const b = this.bridges.get(h.id);
    if (b?.kind !== 'call' || b.b?.id !== h.id || res.status === 100) return;
    const caller = this.proceedingCaller(b);
    if (!caller) return;
    try {
      if (res.body.length > 0)
        caller.provisional(res.status, {
          body: res.body,
          contentType: res.header('Content-Type') ?? 'application/sdp',
          reason: res.reason,
        });
      else caller.provisional(res.status, { reason: res.reason });
    } catch (e) {
      this.s.log(`could not mirror ${res.status}: ${(e as Error).message}`, {});
    }
  }

  /** The caller's session of a plain bridged call while it waits for its final response. */
  private proceedingCaller(b: Bridge): ServerInviteSession | undefined {
    if (!b.a.isValid()) return undefined;
    const s = b.a.get();
    return s instanceof ServerInviteSession && s.state === 'proceeding' ? s : undefined;
  }

  private connected(h: Handle<InviteSession>): void {
    const b = this.bridges.get(h.id);
    if (!b || b.b?.id !== h.id) return;
    if (b.kind === 'transfer') {
      this.completeTransfer(b);
      return;
    }
    const caller = this.proceedingCaller(b);
    if (!caller) {
      this.end(h);
      return;
    }
    try {
      caller.accept(b.answer !== undefined ? { body: b.answer } : undefined);
      this.s.log('call bridged', {});
    } catch (e) {
      this.s.log(`could not accept the caller: ${(e as Error).message}`, {});
      this.end(h);
      this.end(b.a);
    }
  }

  private terminated(h: Handle<InviteSession>, reason: string): void {
    this.relays.delete(h.id);
    this.remoteSdp.delete(h.id);
    const b = this.bridges.get(h.id);
    if (!b) return;
    this.bridges.delete(h.id);
    if (b.kind === 'transfer' && b.b?.id === h.id && this.bridges.get(b.a.id) !== b) {
      // The call to the transfer target failed before it was answered: the transferee
      // stays in its call (RFC 5589 §6.1), and the NOTIFYs told the referrer.
      this.s.log(`transfer failed (${reason})`, { reason });
      return;
    }
    // Both legs leave the bridge before the other one is ended: ending it reports its
    // own end at once, and that must not come back here for this leg.
    const other = b.a.id === h.id ? b.b : b.a;
    if (other && this.bridges.get(other.id) === b) this.bridges.delete(other.id);
    if (b.b?.id === h.id && b.kind === 'call') {
      // The callee's leg ended: end the caller's the same way.
      const caller = this.proceedingCaller(b);
      if (caller) {
        const st = b.failure && b.failure.status >= 300 ? b.failure : undefined;
        caller.reject(st?.status ?? 480, st?.reason);
      } else this.end(b.a);
    } else this.end(other);
    // A transfer still ringing for a leg that is gone has no one to connect.
    for (const [id, t] of this.bridges)
      if (t.kind === 'transfer' && t.a.id === h.id && t.b?.id === id) this.end(t.b);
    this.s.log(`call ended (${reason})`, { reason });
  }

  private end(h: Handle<InviteSession> | undefined): void {
    if (!h?.isValid() || h.get().isEnded) return;
    try {
      h.get().end();
    } catch (e) {
      this.s.log(`could not end a call: ${(e as Error).message}`, {});
    }
  }

  // ---- re-INVITE and UPDATE (RFC 3261 §14, RFC 3311) ----

  private receiveOffer(h: Handle<InviteSession>, msg: SipRequest | SipResponse, body: Uint8Array) {
    const sdp = text(body);
    this.remoteSdp.set(h.id, sdp);
    const session = h.get();
    // The INVITE's own offer is answered by accept() (endpoint) or relayed by bridge().
    if (!session.isConnected) return;
    const b = this.bridges.get(h.id);
    const other = b && this.bridges.get(b.a.id) === b ? (b.a.id === h.id ? b.b : b.a) : undefined;
    if (other?.isValid() && other.get().isConnected) {
      // A bridged call: the same offer goes to the other leg, and its answer comes back.
      const method = (msg as SipRequest).method === 'UPDATE' ? 'UPDATE' : 'INVITE';
      try {
        other.get().provideOffer(body, msg.header('Content-Type') ?? 'application/sdp', {
          method,
        });
        this.relays.set(other.id, h);
        this.s.log(`relayed a ${method === 'UPDATE' ? 'UPDATE' : 're-INVITE'} to the other leg`, {
          method,
        });
      } catch (e) {
        // The other leg is busy with its own offer: glare on our side (RFC 3261 §14.2).
        this.s.log(`could not relay the offer: ${(e as Error).message}`, {});
        session.reject(491);
      }
      return;
    }
    try {
      // An endpoint: the answer mirrors the offer's direction (hold: sendonly -> recvonly).
      session.provideAnswer(makeAnswer(sdp, this.s.mediaAddress));
      const hold = /a=(sendonly|inactive)/.test(sdp);
      this.s.log(hold ? 'call put on hold' : 'session changed', { hold });
    } catch {
      session.reject(488);
    }
  }

  private receiveAnswer(h: Handle<InviteSession>, body: Uint8Array): void {
    const sdp = text(body);
    this.remoteSdp.set(h.id, sdp);
    const origin = this.relays.get(h.id);
    if (origin) {
      this.relays.delete(h.id);
      if (!origin.isValid()) return;
      try {
        origin.get().provideAnswer(body);
      } catch (e) {
        // The leg that asked went on meanwhile (a CANCEL, a BYE): nothing to answer.
        this.s.log(`could not relay the answer: ${(e as Error).message}`, {});
      }
      return;
    }
    const b = this.bridges.get(h.id);
    if (b && b.b?.id === h.id) b.answer = sdp;
  }

  // ---- REFER (RFC 3515) and transfer (RFC 5589) ----

  /**
   * A REFER in a call. In a bridged call the party on the other leg is the transferee:
   * the server calls the target on its behalf and, once answered, joins the two (a
   * re-INVITE with the target's description) and hangs up on the referrer. In a call to
   * the server's endpoint the server itself calls the target and hangs up on the referrer.
   */
  private referInDialog(
    h: Handle<InviteSession>,
    sub: Handle<ServerReferSubscription>,
    refer: SipRequest,
  ): void {
    const r = sub.get();
    const b = this.bridges.get(h.id);
    const transferee = b && this.bridges.get(b.a.id) === b ? (b.a.id === h.id ? b.b : b.a) : h;
    if (!transferee?.isValid() || !transferee.get().isConnected) {
      r.rejectRefer(603);
      return;
    }
    const target = r.referTo;
    // With Refer-Sub: false (RFC 4488) the usage ends with the 2xx: the INVITE is made
    // from the REFER itself, and no NOTIFY follows.
    const source = r.referSub ? sub : refer;
    r.acceptRefer();
    const bridged = transferee.id !== h.id;
    const identity = bridged && b ? (b.a.id === h.id ? b.partyB : b.partyA) : ownIdentity(refer);
    // The target is offered the transferee's media, off hold (the referrer may have held
    // it before transferring, RFC 5589 §6.1).
    const theirs = bridged ? this.remoteSdp.get(transferee.id) : undefined;
    let offer = makeOffer(this.s.mediaAddress);
    try {
      if (theirs !== undefined) offer = withDirection(theirs, 'sendrecv');
    } catch {
      // Not SDP: the target gets our own offer.
    }
    this.s.log(`${refer.from.uri} transfers the call to ${target.uri}`, {
      referTo: target.uri.toString(),
    });
    this.placeReferredCall(source, target.uri, identity, offer)
      .then((leg) => {
        if (!leg) return;
        const t: Bridge = {
          kind: 'transfer',
          a: transferee,
          b: leg,
          partyA: identity,
          partyB: target,
          answer: undefined,
          failure: undefined,
          transferor: h,
        };
        this.bridges.set(leg.id, t);
      })
      .catch((e: unknown) => this.referFailed(source, e));
  }

  /** The referred call could not be placed: the referrer hears it as a final 503 (RFC 3515 §2.4.5). */
  private referFailed(source: Handle<ServerReferSubscription> | SipRequest, e: unknown): void {
    this.s.log(`the referred call could not be placed: ${(e as Error).message}`, {});
    if (!('isValid' in source) || !source.isValid()) return;
    try {
      source.get().notifyProgress(503, 'Service Unavailable');
    } catch {
      // The subscription ended meanwhile: nothing left to tell.
    }
  }

  /** The transfer target answered: join it with the transferee and release the referrer. */
  private completeTransfer(t: Bridge): void {
    const transferor = t.transferor;
    const old = transferor ? this.bridges.get(transferor.id) : undefined;
    if (transferor) this.bridges.delete(transferor.id);
    if (old) {
      // The transferee leaves the old bridge for the new one.
      this.bridges.set(t.a.id, t);
      if (t.a.isValid() && t.answer !== undefined)
        try {
          t.a.get().provideOffer(t.answer);
        } catch (e) {
          this.s.log(`could not re-INVITE the transferee: ${(e as Error).message}`, {});
        }
      t.kind = 'call';
      this.s.log('transfer done: call bridged to the target', {});
    } else {
      // The server was the transferee: the new call is its own.
      if (t.b) this.bridges.delete(t.b.id);
      this.s.log('transfer done: the server is in a call with the target', {});
    }
    this.end(transferor);
  }

  /** A REFER outside a dialog (RFC 3515 §2.4.2): the server calls the Refer-To target. */
  private referOutOfDialog(sub: Handle<ServerReferSubscription>, refer: SipRequest): void {
    const r = sub.get();
    const target = r.referTo.uri;
    const source = r.referSub ? sub : refer;
    r.acceptRefer();
    this.s.log(`${refer.from.uri} asks the server to call ${target}`, {
      referTo: target.toString(),
    });
    this.placeReferredCall(
      source,
      target,
      ownIdentity(refer),
      makeOffer(this.s.mediaAddress),
    ).catch((e: unknown) => this.referFailed(source, e));
  }

  /**
   * The INVITE a REFER asks for (`dum.makeInviteSessionFromRefer`, which NOTIFYs its
   * progress), from `identity`; to a registered user's contact directly when the
   * Refer-To names one. Resolves with its handle, or undefined when it could not be sent.
   */
  private async placeReferredCall(
    source: Handle<ServerReferSubscription> | SipRequest,
    target: Uri,
    identity: NameAddr,
    offer: string,
  ): Promise<Handle<ClientInviteSession> | undefined> {
    const contacts = await this.s.contactsOf(target);
    if ('isValid' in source && !source.isValid()) return undefined;
    const contact = contacts[0];
    const req = this.dum.makeInviteSessionFromRefer(
      source,
      relayProfile(this.dum, identity, contact),
      { body: offer },
    );
    if (contact) req.uri = contact.contact.uri.clone();
    return this.dum.send<ClientInviteSession>(req);
  }
}

/** The address a request was sent to, without a tag: who the server is to its sender. */
function ownIdentity(req: SipRequest): NameAddr {
  const to = req.to.clone();
  to.params.delete('tag');
  return to;
}

/**
 * The profile of a request the server sends on behalf of a party to one of a user's
 * bindings: the party as identity, and the binding's Path (RFC 3327 §5.3) as its
 * preloaded route, so the request goes back through the proxies the REGISTER came by.
 */
export function relayProfile(
  dum: DialogUsageManager,
  identity: NameAddr,
  binding: ContactBinding | undefined,
): UserProfile {
  const route = (binding?.path ?? []).flatMap((p) => parseHeader<NameAddr>('Route', p));
  return dum.makeUserProfile({
    aor: identity,
    ...(route.length > 0 ? { serviceRoute: route } : {}),
  });
}

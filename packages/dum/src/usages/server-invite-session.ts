import {
  createResponse,
  type NameAddr,
  parseHeader,
  parseMessage,
  type RAck,
  type SipRequest,
  type SipResponse,
  Uri,
} from '@sipworks/message';
import type { ReceivedInfo, ServerTransactionLike } from '@sipworks/stack';
import { Dialog } from '../dialog.ts';
import { DialogSet } from '../dialog-set.ts';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type { EndReason, InviteSessionHandler } from '../handlers.ts';
import { DialogSetId } from '../ids.ts';
import { descriptionOf, type SessionDescription, toDescription } from '../offer-answer.ts';
import type { Profile } from '../profile.ts';
import { type EndOptions, InviteSession } from './invite-session.ts';
import { hasOptionTag, ReliableProvisionals, supports100rel } from './prack.ts';
import type { ModificationPhase } from './session-modification.ts';

export type ServerInviteSessionState =
  | 'proceeding'
  | 'accepted'
  | 'connected'
  | 'terminating'
  | 'terminated';

/**
 * The callee's side of an invite session (RFC 3261 §13.3, §9.2, §15).
 *
 * ```
 *  state        event                         action                              next
 *  ----------   ---------------------------   ---------------------------------   -----------
 *  (new)        INVITE                        onNewSession, onOffer or            proceeding
 *                                             onOfferRequired
 *  (new)        INVITE without 100rel, prack  421 (RFC 3262 §3)                   terminated
 *               required
 *  (new)        INVITE below our Min-SE       422 (RFC 4028 §8.1)                 terminated
 *  proceeding   provisional()                 1xx (early dialog)                  proceeding
 *  proceeding   provisional({reliable})       1xx with RSeq, retransmitted until  proceeding
 *                                             its PRACK (RFC 3262 §3; see prack.ts)
 *  proceeding   PRACK                         200 (answer/offer as RFC 3262 §5),  proceeding
 *                                             onPrack; 481 when it matches none
 *  proceeding   64*T1 without PRACK           500, onTerminated(timeout)          terminated
 *  proceeding   accept()                      2xx, retransmitted (T1..T2) until   accepted
 *                                             the ACK, ACK timer 64*T1
 *  proceeding   reject() / redirect()         300-699, onTerminated(rejected)     terminated
 *  proceeding   CANCEL                        487, onTerminated(cancelled)        terminated
 *  proceeding   BYE (early dialog, §15.1.2)   487 to the INVITE, onTerminated     terminated
 *  accepted     ACK                           onAckReceived, onAnswer,            connected
 *                                             onConnected
 *  accepted     64*T1 without ACK             BYE, onAckNotReceived,              terminating
 *                                             onTerminated(timeout)
 *  accepted     end()                         BYE waits for the ACK (§15)         accepted
 *  proceeding/  UPDATE, provideOffer          SessionModification (UPDATE)        (same)
 *   accepted
 *  connected    re-INVITE, UPDATE, either     SessionModification                 connected
 *               way
 *  connected    session timer runs out        BYE, onSessionExpired,              terminating
 *                                             onTerminated(timeout)
 *  connected    end()                         BYE, onTerminated(local-bye)        terminating
 *  connected    BYE                           200, onTerminated(remote-bye)       terminated
 *  terminating  final response to the BYE     -                                   terminated
 * ```
 */
export class ServerInviteSession extends InviteSession {
  get kind(): 'ServerInviteSession' {
    return 'ServerInviteSession';
  }
  /**
   * The INVITE received, until the call is connected; then, when nothing in it was
   * changed, only its bytes (`inviteBytes`) stay, parsed again when `request` is read.
   */
  private invite: SipRequest | undefined;
  private inviteBytes: Uint8Array | undefined;
  /** The INVITE's CSeq number, kept with its bytes. */
  private inviteSeq = 0;
  /**
   * The INVITE's server transaction, until the ACK of our 2xx: then nothing is left to
   * send on it (the stack absorbs INVITE retransmissions until Timer L, RFC 6026 §8.7),
   * and holding it would keep its last response's bytes for the life of the call.
   */
  private tx: ServerTransactionLike | undefined;
  /** Where the INVITE came from, for resending the 2xx; dropped with the 2xx at the ACK. */
  private received: ReceivedInfo | undefined;
  private st: ServerInviteSessionState = 'proceeding';
  /** The 2xx, kept for retransmission until the ACK (§13.3.1.4). */
  private ok: SipResponse | undefined;
  /**
   * end() was called before the ACK came: the BYE goes when it does (§15), with this
   * Reason header (RFC 3326) if any.
   */
  private byeQueued: { reason: string | undefined } | undefined;
  /** Reliable provisional responses (RFC 3262 §3). */
  /** Reliable provisional responses (RFC 3262), made by the first one: most calls send none. */
  private reliableState: ReliableProvisionals | undefined;
  /** Set while `onOffer` runs for an offer in a PRACK: `provideAnswer` puts the answer in its 200. */
  private answerForPrack: { answer: SessionDescription | undefined } | undefined;

  constructor(
    dum: DialogUsageManager,
    request: SipRequest,
    tx: ServerTransactionLike,
    received: ReceivedInfo,
    profile: Profile,
    handler: InviteSessionHandler,
  ) {
    const localTag = dum.newTag();
    const set = new DialogSet(
      new DialogSetId(request.callId, localTag).compact(),
      'uas',
      request,
      dum.makeAppDialogSet(request),
    );
    super(dum, set, profile, handler);
    set.creatorFrom(this);
    this.invite = request;
    this.inviteBytes = undefined;
    this.tx = tx;
    this.received = received;
    this.ok = undefined;
    this.byeQueued = undefined;
    this.answerForPrack = undefined;
    dum.addDialogSet(set);
    const dialog = Dialog.asUas(
      request,
      localTag,
      dum.contactFor(profile, request.contacts[0]?.uri),
    );
    dialog.early = true;
    dum.addDialog(set, dialog);
    this.dialog = dialog;
    tx.handler = {
      onError: (err) => {
        if (this.isEnded) return;
        this.dum.logger.warn({ err, session: this.handleId }, 'a response to the INVITE failed');
        this.reportEnd('error');
        this.finish();
      },
    };
  }

  /**
   * The INVITE received. Once the call is connected the session keeps only its bytes
   * (RFC 3261 §12 state is in the dialog): reading it then parses it again, so it is an
   * equal request, not the same object `onNewSession` was given.
   */
  get request(): SipRequest {
    let invite = this.invite;
    if (invite === undefined) {
      const bytes = this.inviteBytes as Uint8Array;
      invite = parseMessage(bytes, {
        maxHeaderBytes: bytes.length,
        maxBodyBytes: bytes.length,
      }) as SipRequest;
      this.invite = invite;
      this.inviteBytes = undefined;
    }
    return invite;
  }

  get state(): ServerInviteSessionState {
    return this.st;
  }

  private get reliable(): ReliableProvisionals {
    this.reliableState ??= new ReliableProvisionals({
      respond: (res) => this.respond(res),
      startTimer: (name, ms, fire) => this.startTimer(name, ms, fire),
      stopTimer: (name) => this.stopTimer(name),
      t1: this.dum.stack.timers.t1,
      random: () => 1 + Math.floor(this.dum.random() * 0x7ffffffe),
      giveUp: () => this.prackTimeout(),
    });
    return this.reliableState;
  }

  /** @internal Tell the application about the new session and the offer (or its absence). */
  start(): void {
    if (this.profile.get('prack') === 'required' && !supports100rel(this.request)) {
      // RFC 3262 §3: we insist on reliable provisional responses; the caller does not take them.
      this.dum.logger.info({ session: this.handleId }, 'INVITE without 100rel refused with 421');
      this.respond(this.response(421, undefined, undefined, [['Require', '100rel']]));
      this.finish();
      return;
    }
    const refusal = this.sessionTimer?.check(this.request);
    if (refusal) {
      // RFC 4028 §8.1: a session interval below our Min-SE.
      this.respond(this.response(refusal.status, undefined, undefined, refusal.headers));
      this.finish();
      return;
    }
    const offer = descriptionOf(this.request);
    if (offer) this.offerAnswer.receiveOffer(offer);
    this.notify(() => this.handler.onNewSession?.(this.handle(), this.request));
    if (this.st !== 'proceeding') return;
    if (offer) {
      const body = offer.body;
      this.notify(() => this.handler.onOffer?.(this.handle(), this.request, body));
    } else this.notify(() => this.handler.onOfferRequired?.(this.handle(), this.request));
  }

  /**
   * Send a provisional response (180 by default), with a body for early media.
   *
   * It is sent reliably (RFC 3262) when `reliable` is set, when the INVITE has
   * Require: 100rel, or when the profile's `prack` is `required`: with RSeq, resent
   * until its PRACK, and after the PRACK of the reliable one before it. A body in a
   * reliable 1xx is the answer to the INVITE's offer, or the offer when the INVITE had
   * none (its answer comes in the PRACK, to `onAnswer`).
   */
  provisional(
    status = 180,
    options?: {
      body?: string | Uint8Array;
      contentType?: string;
      reason?: string;
      reliable?: boolean;
    },
  ): SipResponse {
    this.assertLive();
    if (status <= 100 || status >= 200)
      throw new DumError('SIP_ERR_DUM_STATE', `provisional takes 101-199, not ${status}`);
    this.assertState('proceeding', 'send a provisional response');
    const mustBeReliable =
      hasOptionTag(this.request, 'Require', '100rel') || this.profile.get('prack') === 'required';
    const reliable = options?.reliable ?? mustBeReliable;
    if (!reliable && mustBeReliable)
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        'every provisional response must be reliable here (100rel)',
      );
    if (reliable && (this.profile.get('prack') === 'never' || !supports100rel(this.request)))
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        'no reliable provisional response: the profile or the INVITE has no 100rel',
      );
    const res = this.response(status, options?.reason, options);
    if (!reliable) {
      this.respond(res);
      this.dum.observeInvite({ type: 'provisional', session: this, response: res });
      return res;
    }
    const sd = descriptionOf(res);
    if (sd) {
      this.assertNoModification('send a session description in a reliable 1xx');
      this.earlyDescription(sd);
    } else if (this.offerAnswer.phase === 'none')
      // RFC 3261 §13.2.1: the first reliable response to an INVITE without an offer carries one.
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        'the INVITE had no offer: this reliable 1xx must carry one',
      );
    this.reliable.send(res);
    this.dum.observeInvite({ type: 'provisional', session: this, response: res });
    return res;
  }

  /** The session description in a reliable 1xx: the answer, or the offer (RFC 3262 §5). */
  private earlyDescription(sd: SessionDescription): void {
    const oa = this.offerAnswer;
    switch (oa.state.phase) {
      case 'remote-offer':
        oa.sendAnswer(sd);
        return;
      case 'none':
        oa.sendOffer(sd);
        return;
      case 'stable':
        // The same description again (as 3GPP flows repeat it in each 18x) changes nothing.
        if (sameBody(oa.state.local.body, sd.body)) return;
        throw new DumError(
          'SIP_ERR_DUM_STATE',
          'a new offer in a reliable 1xx is not supported; use UPDATE (RFC 3311)',
        );
      case 'local-offer':
        throw new DumError(
          'SIP_ERR_DUM_STATE',
          'our offer in a reliable 1xx waits for its answer in the PRACK',
        );
      default:
        throw new Error(`invalid offer/answer phase ${(oa.state as { phase: string }).phase}`);
    }
  }

  /**
   * Accept the INVITE with a 2xx (200 by default) carrying the answer, or the offer when
   * the INVITE had none. The 2xx is retransmitted until the ACK comes (§13.3.1.4).
   */
  accept(options?: {
    body?: string | Uint8Array;
    contentType?: string;
    status?: number;
  }): SipResponse {
    this.assertLive();
    const status = options?.status ?? 200;
    if (status < 200 || status >= 300)
      throw new DumError('SIP_ERR_DUM_STATE', `accept takes a 2xx, not ${status}`);
    this.assertState('proceeding', 'accept');
    this.assertNoModification('accept');
    const sd: SessionDescription | undefined =
      options?.body !== undefined ? toDescription(options.body, options.contentType) : undefined;
    switch (this.offerAnswer.phase) {
      case 'remote-offer':
        if (!sd)
          throw new DumError('SIP_ERR_DUM_STATE', 'the 2xx must carry the answer to the offer');
        this.offerAnswer.sendAnswer(sd);
        break;
      case 'none':
        if (!sd)
          throw new DumError(
            'SIP_ERR_DUM_STATE',
            'the INVITE had no offer: the 2xx must carry one (§13.2.1)',
          );
        this.offerAnswer.sendOffer(sd);
        break;
      default:
        if (sd) throw new DumError('SIP_ERR_DUM_STATE', 'no session description is due now');
    }
    const res = this.response(
      status,
      undefined,
      sd,
      this.sessionTimer?.responseHeaders(this.request) ?? [],
    );
    this.addCapabilities(res);
    this.st = 'accepted';
    // RFC 3262 §3: the 2xx goes once every reliable 1xx has been PRACKed.
    if (this.reliableState) this.reliableState.final2xx(() => this.send2xx(res));
    else this.send2xx(res);
    return res;
  }

  /**
   * Refuse the INVITE (300-699; 486 Busy Here by default); once the session is up,
   * refuse the peer's re-INVITE or UPDATE instead (488 by default, RFC 3261 §14.2).
   */
  override reject(status?: number, reason?: string, headers?: [string, string][]): SipResponse {
    this.assertLive();
    if (this.st !== 'proceeding' || this.modificationIfAny?.pendingIncoming !== undefined)
      return super.reject(status ?? 488, reason, headers);
    return this.rejectInvite(status ?? 486, reason, headers);
  }

  private rejectInvite(status: number, reason?: string, headers?: [string, string][]): SipResponse {
    if (status < 300 || status > 699)
      throw new DumError('SIP_ERR_DUM_STATE', `reject takes 300-699, not ${status}`);
    this.assertState('proceeding', 'reject');
    const res = this.response(status, reason, undefined, headers);
    this.respond(res);
    this.reportEnd('rejected', res);
    this.finish();
    return res;
  }

  /** Redirect the caller (3xx; 302 by default) to these contacts (§8.3). */
  redirect(contacts: (NameAddr | Uri | string)[], status = 302): SipResponse {
    if (status < 300 || status > 399)
      throw new DumError('SIP_ERR_DUM_STATE', `redirect takes a 3xx, not ${status}`);
    const values = contacts.map((c) => {
      if (c instanceof Uri) return `<${c}>`;
      if (typeof c !== 'string') return c.toString();
      return c.includes('<') ? c : `<${c}>`;
    });
    for (const v of values) parseHeader('Contact', v);
    this.assertLive();
    this.assertState('proceeding', 'redirect');
    return this.rejectInvite(
      status,
      undefined,
      values.map((v) => ['Contact', v]),
    );
  }

  end(options?: EndOptions): void {
    const reason = this.reasonHeader(options);
    switch (this.st) {
      case 'proceeding':
        this.rejectInvite(480);
        return;
      case 'accepted':
        // §15: the callee sends no BYE on a confirmed dialog before the ACK (or its timeout).
        this.byeQueued = { reason };
        return;
      case 'connected':
        this.bye('local-bye', undefined, reason);
        return;
      case 'terminating':
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  /** Keep only the bytes of the INVITE, or (when something in it was changed) its unparsed form. */
  private releaseInvite(): void {
    const invite = this.invite;
    if (invite === undefined || !invite.releaseParsed()) return;
    this.inviteSeq = invite.cseq.seq;
    this.inviteBytes = invite.serialize();
    this.invite = undefined;
  }

  /** The INVITE's CSeq number, read without parsing it again. */
  private get cseqOfInvite(): number {
    return this.invite === undefined ? this.inviteSeq : this.invite.cseq.seq;
  }

  /** @internal */
  override receiveAck(ack: SipRequest): void {
    if (ack.cseq.seq !== this.cseqOfInvite) {
      // The ACK for a 2xx to a re-INVITE.
      super.receiveAck(ack);
      return;
    }
    switch (this.st) {
      case 'accepted': {
        this.stopTimer('retransmit-2xx');
        this.stopTimer('ack');
        this.ok = undefined;
        this.tx = undefined;
        this.received = undefined;
        // The INVITE stays for the call (the API exposes it, re-INVITEs read its CSeq),
        // but what was parsed out of it to answer it is read again on use; when nothing
        // in it was changed, only its bytes stay.
        this.releaseInvite();
        let answer: SessionDescription | undefined;
        if (this.offerAnswer.phase === 'local-offer') {
          answer = descriptionOf(ack);
          if (answer) this.offerAnswer.receiveAnswer(answer);
          else {
            // §13.2.1: the ACK had to carry the answer to our offer in the 2xx.
            this.dum.logger.warn({ session: this.handleId }, 'the ACK carries no answer');
            this.offerAnswer.abandon();
            this.st = 'connected';
            this.bye('error', ack);
            return;
          }
        }
        this.st = 'connected';
        this.notify(() => this.handler.onAckReceived?.(this.handle(), ack));
        if (answer) {
          const body = answer.body;
          this.notify(() => this.handler.onAnswer?.(this.handle(), ack, body));
        }
        if (this.st !== 'connected') return;
        if (this.byeQueued) {
          this.bye('local-bye', undefined, this.byeQueued.reason);
          return;
        }
        this.notify(() => this.handler.onConnected?.(this.handle(), ack));
        return;
      }
      case 'proceeding':
      case 'connected':
      case 'terminating':
      case 'terminated':
        // A retransmitted ACK, or one for no 2xx of ours.
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  /** @internal */
  override receiveCancel(cancel: SipRequest, tx: ServerTransactionLike): void {
    // Once the ACK came (tx dropped), a CANCEL of the INVITE changes nothing (§9.2).
    if (tx !== this.tx || this.tx === undefined) {
      super.receiveCancel(cancel, tx);
      return;
    }
    switch (this.st) {
      case 'proceeding':
        // §9.2: the INVITE is answered 487; the stack already answered the CANCEL.
        this.respond(this.response(487));
        this.reportEnd('cancelled', cancel);
        this.finish();
        return;
      case 'accepted':
        if (this.ok === undefined) {
          // The 2xx is still held for a PRACK (RFC 3262 §3): the CANCEL wins.
          this.reliableState?.stop();
          this.respond(this.response(487));
          this.reportEnd('cancelled', cancel);
          this.finish();
        }
        return;
      case 'connected':
      case 'terminating':
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  protected byeReceived(bye: SipRequest): void {
    switch (this.st) {
      case 'proceeding':
        // §15.1.2: a BYE on the early dialog ends the INVITE with 487.
        this.respond(this.response(487));
        this.reportEnd('remote-bye', bye);
        this.finish();
        return;
      case 'accepted':
      case 'connected':
      case 'terminating':
        this.reportEnd('remote-bye', bye);
        this.finish();
        return;
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  protected onFinish(): void {
    this.st = 'terminated';
  }

  private send2xx(res: SipResponse): void {
    if (this.st !== 'accepted' || this.isEnded) return;
    this.respond(res);
    if (this.dialog) this.dialog.early = false;
    this.ok = res;
    this.dum.observeInvite({ type: 'confirmed', session: this, response: res });
    const timers = this.dum.stack.timers;
    if (this.received !== undefined && !this.received.transport.reliable) {
      this.startTimer('retransmit-2xx', timers.t1, () => this.retransmit2xx(timers.t1));
    }
    this.startTimer('ack', 64 * timers.t1, () => this.ackTimeout());
    this.sessionTimer?.negotiated(this.request, res, false);
  }

  /** RFC 3262 §3: no PRACK for a reliable 1xx within 64*T1; the INVITE is refused with a 5xx. */
  private prackTimeout(): void {
    if (this.st !== 'proceeding' && !(this.st === 'accepted' && !this.ok)) return;
    this.respond(this.response(500, 'Server Internal Error (no PRACK)'));
    this.reportEnd('timeout');
    this.finish();
  }

  /**
   * A PRACK (RFC 3262 §3): 481 unless it acknowledges the reliable 1xx waiting for
   * one. Its body is the answer to our offer in the 1xx, or a new offer (§5) answered
   * in its 200 from `onOffer`.
   */
  protected override receivePrack(prack: SipRequest, tx: ServerTransactionLike): void {
    let rack: RAck | undefined;
    try {
      rack = prack.get<RAck>('RAck');
    } catch {
      rack = undefined;
    }
    if (!this.reliable.receivePrack(rack, this.cseqOfInvite)) {
      this.reply(
        prack,
        tx,
        481,
        undefined,
        'Call/Transaction Does Not Exist (no such reliable response)',
      );
      return;
    }
    const oa = this.offerAnswer;
    const sd = descriptionOf(prack);
    let answer: SessionDescription | undefined;
    let status = 200;
    if (oa.phase === 'local-offer') {
      if (sd && oa.receiveAnswer(sd)) {
        const body = sd.body;
        this.notify(() => this.handler.onAnswer?.(this.handle(), prack, body));
      } else
        this.dum.logger.warn(
          { session: this.handleId },
          'the PRACK carries no answer to the offer in our 1xx',
        );
    } else if (sd) {
      const refused = oa.receiveOffer(sd);
      if (refused !== undefined) status = refused;
      else {
        const pending: { answer: SessionDescription | undefined } = { answer: undefined };
        this.answerForPrack = pending;
        const body = sd.body;
        this.notify(() => this.handler.onOffer?.(this.handle(), prack, body));
        this.answerForPrack = undefined;
        answer = pending.answer;
        if (!answer) {
          // The offer must be answered in the 200 to the PRACK: refused instead.
          oa.abandon();
          status = 488;
        }
      }
    }
    this.reply(
      prack,
      tx,
      status,
      undefined,
      undefined,
      answer ? { body: answer.body, contentType: answer.contentType } : undefined,
    );
    this.notify(() => this.handler.onPrack?.(this.handle(), prack));
  }

  /**
   * Answer an offer: one in a PRACK (call it from `onOffer`; the answer goes in the
   * 200 to the PRACK), or one in a re-INVITE or UPDATE (see `InviteSession.provideAnswer`).
   */
  override provideAnswer(body: string | Uint8Array, contentType = 'application/sdp'): void {
    this.assertLive();
    const pending = this.answerForPrack;
    if (!pending || pending.answer !== undefined) {
      super.provideAnswer(body, contentType);
      return;
    }
    const sd = toDescription(body, contentType);
    this.offerAnswer.sendAnswer(sd);
    pending.answer = sd;
  }

  /** Timer for the 2xx (§13.3.1.4) after `waited` ms: resend it, the interval doubling up to T2. */
  private retransmit2xx(waited: number): void {
    if (this.st !== 'accepted' || !this.ok || !this.received) return;
    try {
      this.dum.stack.respondStateless(this.ok, this.received);
    } catch (e) {
      this.dum.logger.warn({ err: e }, '2xx not retransmitted');
    }
    const next = Math.min(2 * waited, this.dum.stack.timers.t2);
    this.startTimer('retransmit-2xx', next, () => this.retransmit2xx(next));
  }

  /** No ACK within 64*T1 (§13.3.1.4): the dialog is confirmed, and the session ended with a BYE. */
  private ackTimeout(): void {
    if (this.st !== 'accepted') return;
    this.stopTimer('retransmit-2xx');
    this.ok = undefined;
    this.st = 'connected';
    this.notify(() => this.handler.onAckNotReceived?.(this.handle()));
    this.bye('timeout');
  }

  private bye(reason: EndReason, message?: SipRequest | SipResponse, header?: string): void {
    this.st = 'terminating';
    this.reportEnd(reason, message);
    if (this.dialog) this.sendBye(this.dialog, header);
    else this.finish();
  }

  protected get modificationPhase(): ModificationPhase {
    switch (this.st) {
      case 'proceeding':
      case 'accepted':
        return 'early';
      case 'connected':
        return 'confirmed';
      case 'terminating':
      case 'terminated':
        return 'closed';
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  protected endWithBye(reason: EndReason, message?: SipRequest | SipResponse): void {
    switch (this.st) {
      case 'proceeding':
        this.respond(this.response(500));
        this.reportEnd(reason, message);
        this.finish();
        return;
      case 'accepted':
        this.stopTimer('retransmit-2xx');
        this.stopTimer('ack');
        this.ok = undefined;
        this.tx = undefined;
        this.bye(reason, message);
        return;
      case 'connected':
        this.bye(reason, message);
        return;
      case 'terminating':
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  /** A response to the INVITE with our To tag and Contact (and the Record-Route, §12.1.1). */
  private response(
    status: number,
    reason?: string,
    body?: { body?: string | Uint8Array; contentType?: string },
    headers?: [string, string][],
  ): SipResponse {
    const res = createResponse(this.request, status, reason, {
      toTag: this.dialogSet.id.localTag,
      ...(headers ? { headers } : {}),
      ...(body?.body !== undefined
        ? { body: body.body, contentType: body.contentType ?? 'application/sdp' }
        : {}),
    });
    if (status > 100 && status < 300) {
      for (const rr of this.request.headers('Record-Route')) res.addHeader('Record-Route', rr);
      if (this.dialog && !res.has('Contact')) res.setHeader('Contact', this.dialog.localContact);
    }
    this.dum.decorate(res);
    return res;
  }

  /** Allow and Supported, as a 2xx to INVITE carries them. */
  private addCapabilities(res: SipResponse): void {
    res.setHeader('Allow', this.profile.get('supportedMethods').join(', '));
    const tags = this.profile.optionTags();
    if (tags.length > 0) res.setHeader('Supported', tags.join(', '));
  }

  private respond(res: SipResponse): void {
    if (!this.tx) {
      this.dum.logger.warn(
        { session: this.handleId },
        `${res.status} not sent: the INVITE was ACKed`,
      );
      return;
    }
    try {
      this.tx.respond(res);
    } catch (e) {
      this.dum.logger.warn({ err: e }, `could not send ${res.status} to the INVITE`);
    }
  }

  /** An UPDATE's offer/answer is open in the early dialog: the INVITE's responses must wait. */
  private assertNoModification(what: string): void {
    if (this.isModifying)
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        `cannot ${what} while an UPDATE is in progress in the early dialog (RFC 3311 §5.1)`,
      );
  }

  private assertState(state: ServerInviteSessionState, what: string): void {
    if (this.st !== state)
      throw new DumError('SIP_ERR_DUM_STATE', `cannot ${what} in state ${this.st}`);
  }
}

function sameBody(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

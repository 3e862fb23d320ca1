import type { SipRequest, SipResponse } from '@sipworks/message';
import type { ClientTransactionLike } from '@sipworks/stack';
import { Dialog } from '../dialog.ts';
import type { DialogSet } from '../dialog-set.ts';
import type { DialogUsageManager } from '../dum.ts';
import type { EndReason, InviteSessionHandler } from '../handlers.ts';
import { descriptionOf, type SessionDescription, toDescription } from '../offer-answer.ts';
import type { Profile } from '../profile.ts';
import { type EndOptions, InviteSession } from './invite-session.ts';
import { ReliableProvisionalReceiver } from './prack.ts';
import type { ModificationPhase } from './session-modification.ts';

export type ClientInviteSessionState =
  | 'calling'
  | 'early'
  | 'cancelling'
  | 'connected'
  | 'terminating'
  | 'terminated';

/**
 * The caller's side of an invite session (RFC 3261 §13.2, §9.1, §15).
 *
 * ```
 *  state        event                         action                              next
 *  ----------   ---------------------------   ---------------------------------   -----------
 *  calling      1xx without To tag            onTrying / non-dialog provisional   calling
 *  calling/     1xx with To tag               early Dialog, onProvisional         early
 *   early                                     (+ onEarlyMedia with a body)
 *  calling/     reliable 1xx (RFC 3262 §4)    as above, then PRACK with RAck      early
 *   early                                     (the answer to an offer in the 1xx,
 *                                             or a new offer given from its
 *                                             callbacks, §5, goes in it); out of
 *                                             order: dropped
 *  early        2xx to a PRACK with an offer  onAnswer (none: onOfferRejected)    early
 *  calling/     422, larger Min-SE            INVITE again, CSeq + 1              calling
 *   early       (RFC 4028 §7.3)
 *  calling/     2xx                           Dialog, ACK, onAnswer/onOffer,      connected
 *   early                                     onConnected
 *  calling/     300-699                       onFailure, onTerminated(rejected)   terminated
 *   early
 *  calling      end()                         CANCEL queued until a 1xx (§9.1)    cancelling
 *  early        end()                         CANCEL                              cancelling
 *  cancelling   1xx (CANCEL queued)           CANCEL                              cancelling
 *  cancelling   300-699 (487)                 onTerminated(cancelled)             terminated
 *  cancelling   2xx (crossed the CANCEL)      ACK, BYE, onTerminated(local-bye)   terminating
 *  connected    2xx, same To tag              ACK again                           connected
 *  connected    2xx, other To tag (a fork)    ACK, BYE on it, onForkDestroyed     connected
 *  early/       provideOffer, re-INVITE,      SessionModification (re-INVITE     (same)
 *   connected   UPDATE                        only when connected)
 *  connected    session timer runs out        BYE, onSessionExpired,              terminating
 *                                             onTerminated(timeout)
 *  connected    end()                         BYE, onTerminated(local-bye)        terminating
 *  connected    BYE                           200, onTerminated(remote-bye)       terminated
 *  terminating  final response to the BYE     -                                   terminated
 * ```
 */
export class ClientInviteSession extends InviteSession {
  get kind(): 'ClientInviteSession' {
    return 'ClientInviteSession';
  }
  private st: ClientInviteSessionState = 'calling';
  /** The INVITE transaction now carrying the request (changes with auth retries and redirects). */
  private tx: ClientTransactionLike | undefined;
  /** A provisional response came, so a CANCEL may be sent (§9.1). */
  private provisionalSeen = false;
  private cancelSent = false;
  /** The first session description received in a 1xx: the answer (§13.2.1). */
  private earlyAnswer: SessionDescription | undefined;
  /** The ACK of the session's dialog, sent again for each retransmitted 2xx. */
  private ack: SipRequest | undefined;
  /** ACKs of the 2xx of forks that were ended, by To tag. */
  private readonly forkAcks = new Map<string, SipRequest>();
  /** Set while `onOffer` runs for an offer in a 2xx: `provideAnswer` puts the answer in the ACK. */
  private answerForAck: { answer: SessionDescription | undefined } | undefined;
  /** Which reliable provisional responses to PRACK (RFC 3262 §4). */
  private reliable1xx = new ReliableProvisionalReceiver();
  /** INVITEs sent again after a 422 (RFC 4028 §7.3). */
  private timerRetries = 0;
  /** Set while `onOffer` runs for an offer in a reliable 1xx: `provideAnswer` puts the answer in the PRACK. */
  private answerForPrack: { answer: SessionDescription | undefined } | undefined;
  /**
   * Set while the callbacks of a reliable 1xx run, once offer/answer is complete:
   * `provideOffer` puts a new offer in the PRACK (RFC 3262 §5, RFC 6337 §3.1).
   */
  private offerForPrack: { offer: SessionDescription | undefined } | undefined;
  /** Our offer sent in a PRACK, waiting for the answer in the PRACK's 2xx. */
  private prackOffer: SessionDescription | undefined;

  constructor(
    dum: DialogUsageManager,
    dialogSet: DialogSet,
    profile: Profile,
    handler: InviteSessionHandler,
  ) {
    super(dum, dialogSet, profile, handler);
    this.tx = undefined;
    this.earlyAnswer = undefined;
    this.ack = undefined;
    this.answerForAck = undefined;
    this.answerForPrack = undefined;
    this.offerForPrack = undefined;
    this.prackOffer = undefined;
  }

  get state(): ClientInviteSessionState {
    return this.st;
  }

  /** The INVITE as last sent. */
  get request(): SipRequest {
    return this.dialogSet.creator;
  }

  /** @internal Send the INVITE. */
  start(): void {
    const invite = this.dialogSet.creator;
    const offer = descriptionOf(invite);
    if (offer) this.offerAnswer.sendOffer(offer);
    const stale = this.profile.get('staleCallTime');
    if (stale > 0)
      this.startTimer('stale-call', stale * 1000, () => {
        if (this.st !== 'calling' && this.st !== 'early') return;
        this.notify(() => this.handler.onStaleCallTimeout?.(this.handle()));
        this.end();
      });
    // RFC 4028 §7.1: Session-Expires and Min-SE when the profile turns session timers on.
    this.sessionTimer?.decorateRequest(invite);
    this.sendInvite(invite);
  }

  private sendInvite(invite: SipRequest): void {
    this.dum.sendClient(
      invite,
      this.profile,
      (res, tx) => this.receiveFinal(res, tx),
      (res, tx) => this.receiveProvisional(res, tx),
    );
  }

  /**
   * RFC 4028 §7.3: a 422 to the INVITE; when its Min-SE is above what we asked, the
   * INVITE goes again (CSeq + 1) asking for that much. Returns false otherwise.
   */
  private retryAfter422(res: SipResponse, tx: ClientTransactionLike | undefined): boolean {
    if (this.timerRetries >= 2 || this.cancelSent || !this.sessionTimer?.receive422(res))
      return false;
    this.timerRetries++;
    const sent = tx?.request ?? this.request;
    const next = sent.clone();
    next.setHeader('CSeq', `${sent.cseq.seq + 1} INVITE`);
    next.removeHeader('Via');
    this.sessionTimer?.retarget(next);
    // The early dialogs of the refused INVITE are gone with it.
    for (const d of this.dialogSet.dialogs) this.dum.removeDialog(d);
    this.dialog = undefined;
    this.earlyAnswer = undefined;
    this.provisionalSeen = false;
    this.reliable1xx = new ReliableProvisionalReceiver();
    this.st = 'calling';
    this.dialogSet.creator = next;
    this.sendInvite(next);
    return true;
  }

  /**
   * Answer an offer: one that came in the 2xx to the INVITE (late offer; call it from
   * `onOffer`, and the answer goes in the ACK, §13.2.1), or one in a re-INVITE or
   * UPDATE (see `InviteSession.provideAnswer`).
   */
  override provideAnswer(body: string | Uint8Array, contentType = 'application/sdp'): void {
    this.assertLive();
    const pending = this.answerForAck ?? this.answerForPrack;
    if (!pending || pending.answer !== undefined) {
      super.provideAnswer(body, contentType);
      return;
    }
    const sd = toDescription(body, contentType);
    this.offerAnswer.sendAnswer(sd);
    pending.answer = sd;
  }

  /**
   * Send an offer (see `InviteSession.provideOffer`). Called from `onProvisional` or
   * `onAnswer` for a reliable provisional response, once the offer/answer of the INVITE
   * is complete, the offer goes in the PRACK instead (RFC 3262 §5, RFC 6337 §3.1); its
   * answer, in the 2xx to the PRACK, comes to `onAnswer`, a refusal to `onOfferRejected`.
   */
  override provideOffer(
    body: string | Uint8Array,
    contentType = 'application/sdp',
    options?: { method?: 'INVITE' | 'UPDATE' },
  ): void {
    this.assertLive();
    const slot = this.offerForPrack;
    if (
      slot &&
      slot.offer === undefined &&
      options?.method === undefined &&
      this.offerAnswer.phase === 'stable'
    ) {
      const sd = toDescription(body, contentType);
      this.offerAnswer.sendOffer(sd);
      slot.offer = sd;
      return;
    }
    super.provideOffer(body, contentType, options);
  }

  end(options?: EndOptions): void {
    const reason = this.reasonHeader(options);
    switch (this.st) {
      case 'calling':
        this.st = 'cancelling';
        if (this.provisionalSeen) this.sendCancel();
        return;
      case 'early':
        this.st = 'cancelling';
        this.sendCancel();
        return;
      case 'connected':
        this.endWithBye('local-bye', undefined, reason);
        return;
      case 'cancelling':
      case 'terminating':
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  /** Send the CANCEL for the INVITE in progress (§9.1), once. */
  private sendCancel(): void {
    if (this.cancelSent || !this.tx) return;
    this.cancelSent = true;
    try {
      this.dum.stack.cancel(this.tx, { onResponse() {} });
    } catch (e) {
      this.dum.logger.warn({ err: e }, 'CANCEL not sent');
    }
  }

  /** A provisional response to the INVITE. */
  private receiveProvisional(res: SipResponse, tx: ClientTransactionLike): void {
    this.track(tx);
    this.provisionalSeen = true;
    this.dum.observeInvite({ type: 'provisional', session: this, response: res });
    switch (this.st) {
      case 'calling':
      case 'early': {
        const tag = res.to.tag;
        if (tag === undefined) {
          const ds = this.dum.handlers.dialogSet;
          if (res.status === 100) ds?.onTrying?.(this.request, res);
          else ds?.onNonDialogCreatingProvisional?.(this.request, res);
          return;
        }
        // RFC 3262 §4: a reliable 1xx out of sequence, or seen before, is dropped.
        const reliability =
          this.profile.get('prack') === 'never' ? 'unreliable' : this.reliable1xx.accept(res);
        if (reliability === 'drop') return;
        // §12.1.2: a provisional with a To tag makes an early dialog (one per fork).
        let dialog = this.dialogSet.dialog(tag);
        if (!dialog) {
          dialog = Dialog.asUac(this.request, res);
          this.dum.addDialog(this.dialogSet, dialog);
        }
        this.dialog = dialog;
        this.st = 'early';
        this.announce(res);
        if (reliability === 'new') {
          // RFC 3262 §5: an offer of ours may ride in the PRACK of this reliable 1xx.
          const slot: { offer: SessionDescription | undefined } = { offer: undefined };
          this.offerForPrack = this.prackOffer ? undefined : slot;
          try {
            this.notify(() => this.handler.onProvisional?.(this.handle(), res));
            this.receiveReliable(res, dialog, slot);
          } finally {
            this.offerForPrack = undefined;
          }
          return;
        }
        this.notify(() => this.handler.onProvisional?.(this.handle(), res));
        const sd = descriptionOf(res);
        if (sd && this.offerAnswer.phase === 'local-offer') {
          this.earlyAnswer ??= sd;
          this.notify(() => this.handler.onEarlyMedia?.(this.handle(), res));
        }
        return;
      }
      case 'cancelling':
        this.sendCancel();
        return;
      case 'connected':
      case 'terminating':
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  /**
   * A new reliable provisional response (RFC 3262 §4): its session description is the
   * answer to our offer, or an offer (INVITE without one) answered in the PRACK from
   * `onOffer`; then the PRACK goes, with RAck, carrying that answer or an offer the
   * application gave from this response's callbacks (`slot`, RFC 3262 §5).
   */
  private receiveReliable(
    res: SipResponse,
    dialog: Dialog,
    slot: { offer: SessionDescription | undefined },
  ): void {
    const oa = this.offerAnswer;
    const sd = descriptionOf(res);
    let prackBody: SessionDescription | undefined;
    if (sd && oa.phase === 'none') {
      // The 1xx offers: the PRACK carries our answer, and no offer of ours besides it.
      this.offerForPrack = undefined;
    }
    if (sd && oa.phase === 'local-offer' && !this.prackOffer) {
      oa.receiveAnswer(sd);
      this.notify(() => this.handler.onEarlyMedia?.(this.handle(), res));
      this.notify(() => this.handler.onAnswer?.(this.handle(), res, sd.body));
    } else if (sd && oa.phase === 'none') {
      oa.receiveOffer(sd);
      const pending: { answer: SessionDescription | undefined } = { answer: undefined };
      this.answerForPrack = pending;
      this.notify(() => this.handler.onOffer?.(this.handle(), res, sd.body));
      this.answerForPrack = undefined;
      prackBody = pending.answer;
      if (!prackBody) {
        this.dum.logger.warn(
          { session: this.handleId },
          'the offer in a reliable 1xx was not answered from onOffer: PRACK without an answer',
        );
        oa.abandon();
      }
    } else if (sd) this.notify(() => this.handler.onEarlyMedia?.(this.handle(), res));
    this.offerForPrack = undefined;
    const offer = slot.offer;
    if (this.isEnded || (this.st !== 'early' && this.st !== 'calling')) {
      if (offer) oa.abandon();
      return;
    }
    const body = prackBody ?? offer;
    const prack = dialog.makeRequest(
      'PRACK',
      body ? { body: body.body, contentType: body.contentType } : undefined,
    );
    prack.setHeader('RAck', `${res.get<number>('RSeq')} ${res.cseq.seq} ${res.cseq.method}`);
    if (offer) this.prackOffer = offer;
    try {
      this.dum.sendClient(prack, this.profile, (r) => {
        if (r.status >= 300)
          this.dum.logger.warn({ session: this.handleId, status: r.status }, 'PRACK refused');
        if (offer) this.prackAnswered(offer, r);
      });
    } catch (e) {
      this.dum.logger.warn({ err: e }, 'PRACK not sent');
      if (offer) {
        this.prackOffer = undefined;
        oa.abandon();
      }
    }
  }

  /**
   * The final response to a PRACK that carried our offer (RFC 3262 §5): a 2xx with the
   * answer completes the exchange (`onAnswer`); anything else leaves the session as it
   * was (`onOfferRejected`).
   */
  private prackAnswered(offer: SessionDescription, res: SipResponse): void {
    if (this.prackOffer !== offer) return;
    this.prackOffer = undefined;
    if (this.isEnded) return;
    const oa = this.offerAnswer;
    const sd = descriptionOf(res);
    if (res.status >= 200 && res.status < 300 && sd && oa.receiveAnswer(sd)) {
      this.notify(() => this.handler.onAnswer?.(this.handle(), res, sd.body));
      return;
    }
    if (res.status < 300)
      this.dum.logger.warn({ session: this.handleId }, 'the 2xx to our PRACK carries no answer');
    oa.abandon();
    this.notify(() => this.handler.onOfferRejected?.(this.handle(), res));
  }

  /** A final response to the INVITE (2xx retransmissions and 2xx of other forks included). */
  private receiveFinal(res: SipResponse, tx: ClientTransactionLike | undefined): void {
    if (tx) this.track(tx);
    if (res.status >= 200 && res.status < 300) {
      this.receive2xx(res);
      return;
    }
    switch (this.st) {
      case 'calling':
      case 'early':
        if (res.status === 422 && this.retryAfter422(res, tx)) return;
        if (res.status < 400) this.notify(() => this.handler.onRedirected?.(this.handle(), res));
        this.notify(() => this.handler.onFailure?.(this.handle(), res));
        this.reportEnd('rejected', res);
        this.finish();
        return;
      case 'cancelling':
        // The 487 for the CANCEL (or any failure that came first).
        this.reportEnd('cancelled', res);
        this.finish();
        return;
      case 'connected':
      case 'terminating':
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  /** @internal */
  override receiveStray2xx(res: SipResponse): void {
    this.receive2xx(res);
  }

  private receive2xx(res: SipResponse): void {
    const tag = res.to.tag ?? '';
    switch (this.st) {
      case 'calling':
      case 'early':
        this.confirm(res);
        return;
      case 'cancelling': {
        // §9.1: the 2xx crossed the CANCEL and wins; the session is up, so it is ended by BYE.
        const dialog = this.adopt(res);
        this.offerAnswer.abandon();
        this.ack = this.makeAck(dialog, this.request);
        this.sendAck(this.ack);
        this.st = 'terminating';
        this.reportEnd('local-bye', res);
        this.sendBye(dialog);
        return;
      }
      case 'connected':
      case 'terminating':
        if (res.cseq.seq !== this.request.cseq.seq) {
          // A 2xx to a re-INVITE of ours whose transaction has ended.
          this.modificationIfAny?.receiveStray2xx(res);
          return;
        }
        if (this.dialog && tag === this.dialog.id.remoteTag) {
          // A retransmitted 2xx: its ACK was lost (§13.2.2.4).
          if (this.ack) this.sendAck(this.ack);
          return;
        }
        this.destroyFork(res);
        return;
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  /** The first 2xx: the dialog is confirmed, offer/answer completes, the ACK goes out. */
  private confirm(res: SipResponse): void {
    const dialog = this.adopt(res);
    this.announce(res);
    const sd = descriptionOf(res);
    let answer: SessionDescription | undefined;
    let offer: SessionDescription | undefined;
    let broken: string | undefined;
    switch (this.offerAnswer.phase) {
      case 'local-offer':
        // An offer of ours in a PRACK: its answer comes in the PRACK's 2xx (RFC 3262 §5).
        if (this.prackOffer) break;
        // §13.2.1: the first session description received is the answer.
        answer = this.earlyAnswer ?? sd;
        if (answer) this.offerAnswer.receiveAnswer(answer);
        else broken = 'the 2xx carries no answer to the offer in the INVITE';
        break;
      case 'none':
        offer = sd;
        if (offer) this.offerAnswer.receiveOffer(offer);
        else broken = 'the 2xx to an INVITE without an offer carries no offer';
        break;
      default:
        break;
    }
    let ackBody: SessionDescription | undefined;
    if (offer) {
      const pending: { answer: SessionDescription | undefined } = { answer: undefined };
      this.answerForAck = pending;
      const body = offer.body;
      this.notify(() => this.handler.onOffer?.(this.handle(), res, body));
      this.answerForAck = undefined;
      ackBody = pending.answer;
      if (!ackBody) {
        this.dum.logger.warn(
          { session: this.handleId },
          'the offer in the 2xx was not answered from onOffer: ACK without an answer',
        );
        this.offerAnswer.abandon();
      }
    }
    if (this.isEnded) return;
    this.ack = this.makeAck(dialog, this.request, ackBody);
    this.sendAck(this.ack);
    if (broken) {
      this.dum.logger.warn({ session: this.handleId }, broken);
      this.st = 'terminating';
      this.reportEnd('error', res);
      this.sendBye(dialog);
      return;
    }
    this.st = 'connected';
    this.dum.observeInvite({ type: 'confirmed', session: this, response: res });
    this.stopTimer('stale-call');
    this.sessionTimer?.negotiated(this.request, res, true);
    if (answer) {
      const body = answer.body;
      this.notify(() => this.handler.onAnswer?.(this.handle(), res, body));
    }
    if (this.st === 'connected') this.notify(() => this.handler.onConnected?.(this.handle(), res));
  }

  /**
   * Make the dialog of a 2xx the session's: a new Dialog, since the route set is taken
   * from the 2xx (§12.1.2); every other early dialog of the set is dropped.
   */
  private adopt(res: SipResponse): Dialog {
    const tag = res.to.tag ?? '';
    const early = this.dialogSet.dialog(tag);
    if (early) this.dum.removeDialog(early);
    const dialog = Dialog.asUac(this.request, res);
    if (early) {
      // Requests of the early dialog (PRACK, UPDATE) used CSeq numbers both ways (§12.2.1.1).
      dialog.localSeq = Math.max(dialog.localSeq, early.localSeq);
      dialog.remoteSeq = early.remoteSeq;
    }
    for (const d of this.dialogSet.dialogs) this.dum.removeDialog(d);
    this.dum.addDialog(this.dialogSet, dialog);
    this.dialog = dialog;
    return dialog;
  }

  /** The first response that made a dialog (a 1xx with a To tag, or the 2xx): `onNewClientSession`, once. */
  private announce(res: SipResponse): void {
    if (this.announced) return;
    this.announced = true;
    this.notify(() => this.handler.onNewClientSession?.(this.handle(), res));
  }
  private announced = false;

  /** A 2xx from a second fork (§13.2.2.4): ACK it, then end that dialog with a BYE. */
  private destroyFork(res: SipResponse): void {
    const tag = res.to.tag ?? '';
    const known = this.forkAcks.get(tag);
    if (known) {
      this.sendAck(known);
      return;
    }
    const fork = Dialog.asUac(this.request, res);
    const ack = this.makeAck(fork, this.request);
    this.forkAcks.set(tag, ack);
    this.sendAck(ack);
    this.sendBye(fork);
    this.notify(() => this.handler.onForkDestroyed?.(this.handle()));
  }

  protected byeReceived(bye: SipRequest): void {
    switch (this.st) {
      case 'connected':
      case 'terminating':
        this.reportEnd('remote-bye', bye);
        this.finish();
        return;
      case 'calling':
      case 'early':
      case 'cancelling':
        // A BYE on an early dialog: the INVITE's final response still decides.
        if (this.dialog) this.dum.removeDialog(this.dialog);
        this.dialog = undefined;
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

  protected get modificationPhase(): ModificationPhase {
    switch (this.st) {
      case 'calling':
      case 'early':
        return 'early';
      case 'connected':
        return 'confirmed';
      case 'cancelling':
      case 'terminating':
      case 'terminated':
        return 'closed';
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  protected endWithBye(
    reason: EndReason,
    message?: SipRequest | SipResponse,
    header?: string,
  ): void {
    if (this.st === 'calling' || this.st === 'early') {
      this.end();
      return;
    }
    this.st = 'terminating';
    this.reportEnd(reason, message);
    if (this.dialog) this.sendBye(this.dialog, header);
    else this.finish();
  }

  /** Follow the transaction now carrying the INVITE (a retry with credentials, a redirect). */
  private track(tx: ClientTransactionLike): void {
    this.tx = tx;
    this.dialogSet.creator = tx.request;
  }
}

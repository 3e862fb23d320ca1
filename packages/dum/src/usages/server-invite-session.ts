import {
  createResponse,
  type NameAddr,
  parseHeader,
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
 *  proceeding   provisional()                 1xx (early dialog)                  proceeding
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
 *  connected    end()                         BYE, onTerminated(local-bye)        terminating
 *  connected    BYE                           200, onTerminated(remote-bye)       terminated
 *  terminating  final response to the BYE     -                                   terminated
 * ```
 */
export class ServerInviteSession extends InviteSession {
  readonly kind = 'ServerInviteSession';
  /** The INVITE received. */
  readonly request: SipRequest;
  private readonly tx: ServerTransactionLike;
  private readonly received: ReceivedInfo;
  private st: ServerInviteSessionState = 'proceeding';
  /** The 2xx, kept for retransmission until the ACK (§13.3.1.4). */
  private ok: SipResponse | undefined;
  private interval = 0;
  /** end() was called before the ACK came: the BYE goes when it does (§15). */
  private byeQueued = false;
  /** The Reason header (RFC 3326) for the queued BYE. */
  private byeReason: EndOptions['reason'];

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
      new DialogSetId(request.callId, localTag),
      'uas',
      request,
      dum.makeAppDialogSet(request),
    );
    super(dum, set, profile, handler);
    this.request = request;
    this.tx = tx;
    this.received = received;
    this.ok = undefined;
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

  get state(): ServerInviteSessionState {
    return this.st;
  }

  /** @internal Tell the application about the new session and the offer (or its absence). */
  start(): void {
    const offer = descriptionOf(this.request);
    if (offer) this.offerAnswer.receiveOffer(offer);
    this.notify(() => this.handler.onNewSession?.(this.handle(), this.request));
    if (this.st !== 'proceeding') return;
    if (offer) {
      const body = offer.body;
      this.notify(() => this.handler.onOffer?.(this.handle(), this.request, body));
    } else this.notify(() => this.handler.onOfferRequired?.(this.handle(), this.request));
  }

  /** Send a provisional response (180 by default), with a body for early media. */
  provisional(
    status = 180,
    options?: { body?: string | Uint8Array; contentType?: string; reason?: string },
  ): SipResponse {
    this.assertLive();
    if (status <= 100 || status >= 200)
      throw new DumError('SIP_ERR_DUM_STATE', `provisional takes 101-199, not ${status}`);
    this.assertState('proceeding', 'send a provisional response');
    const res = this.response(status, options?.reason, options);
    this.respond(res);
    return res;
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
    const res = this.response(status, undefined, sd);
    this.addCapabilities(res);
    this.respond(res);
    if (this.dialog) this.dialog.early = false;
    this.ok = res;
    this.st = 'accepted';
    const timers = this.dum.stack.timers;
    if (!this.received.transport.reliable) {
      this.interval = timers.t1;
      this.startTimer('retransmit-2xx', this.interval, () => this.retransmit2xx());
    }
    this.startTimer('ack', 64 * timers.t1, () => this.ackTimeout());
    return res;
  }

  /**
   * Refuse the INVITE (300-699; 486 Busy Here by default); once the session is up,
   * refuse the peer's re-INVITE or UPDATE instead (488 by default, RFC 3261 §14.2).
   */
  override reject(status?: number, reason?: string, headers?: [string, string][]): SipResponse {
    this.assertLive();
    if (this.st !== 'proceeding' || this.modification.pendingIncoming !== undefined)
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
    switch (this.st) {
      case 'proceeding':
        this.rejectInvite(480);
        return;
      case 'accepted':
        // §15: the callee sends no BYE on a confirmed dialog before the ACK (or its timeout).
        this.byeQueued = true;
        this.byeReason = options?.reason;
        return;
      case 'connected':
        this.bye('local-bye', undefined, options?.reason);
        return;
      case 'terminating':
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  /** @internal */
  override receiveAck(ack: SipRequest): void {
    if (ack.cseq.seq !== this.request.cseq.seq) {
      // The ACK for a 2xx to a re-INVITE.
      super.receiveAck(ack);
      return;
    }
    switch (this.st) {
      case 'accepted': {
        this.stopTimer('retransmit-2xx');
        this.stopTimer('ack');
        this.ok = undefined;
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
          this.bye('local-bye', undefined, this.byeReason);
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
  override receiveCancel(cancel: SipRequest): void {
    switch (this.st) {
      case 'proceeding':
        // §9.2: the INVITE is answered 487; the stack already answered the CANCEL.
        this.respond(this.response(487));
        this.reportEnd('cancelled', cancel);
        this.finish();
        return;
      case 'accepted':
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

  /** Timer for the 2xx (§13.3.1.4): resend it, the interval doubling up to T2. */
  private retransmit2xx(): void {
    if (this.st !== 'accepted' || !this.ok) return;
    try {
      this.dum.stack.respondStateless(this.ok, this.received);
    } catch (e) {
      this.dum.logger.warn({ err: e }, '2xx not retransmitted');
    }
    this.interval = Math.min(2 * this.interval, this.dum.stack.timers.t2);
    this.startTimer('retransmit-2xx', this.interval, () => this.retransmit2xx());
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

  private bye(
    reason: EndReason,
    message?: SipRequest | SipResponse,
    header?: EndOptions['reason'],
  ): void {
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
    const tags = this.profile.get('supportedOptionTags');
    if (tags.length > 0) res.setHeader('Supported', tags.join(', '));
  }

  private respond(res: SipResponse): void {
    try {
      this.tx.respond(res);
    } catch (e) {
      this.dum.logger.warn({ err: e }, `could not send ${res.status} to the INVITE`);
    }
  }

  private assertState(state: ServerInviteSessionState, what: string): void {
    if (this.st !== state)
      throw new DumError('SIP_ERR_DUM_STATE', `cannot ${what} in state ${this.st}`);
  }
}

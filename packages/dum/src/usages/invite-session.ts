import {
  createResponse,
  type NameAddr,
  type SipRequest,
  type SipResponse,
  type Uri,
} from '@sipworks/message';
import type { ServerTransactionLike, TimerHandle } from '@sipworks/stack';
import type { Dialog } from '../dialog.ts';
import type { DialogSet } from '../dialog-set.ts';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type { EndReason, InviteSessionHandler } from '../handlers.ts';
import type { Handle } from '../handles.ts';
import { OfferAnswer, type SessionDescription } from '../offer-answer.ts';
import type { Profile } from '../profile.ts';
import { BaseUsage } from './base.ts';
import { type ReferOptions, receiveInDialogRefer, sendInDialogRefer } from './refer.ts';

/**
 * What the client and server invite sessions share (RFC 3261 §13-15): the dialog set
 * and the session's dialog, the offer/answer state (kept apart from the dialog's),
 * requests within the dialog (BYE, INFO, MESSAGE, REFER; the rest is answered 501 for now),
 * the BYE that ends the session, and timers on the stack's clock.
 *
 * A session stays in the DUM (its handles valid) until it has ended: after a BYE we
 * sent, until the BYE has its final response; otherwise at once.
 */
export abstract class InviteSession extends BaseUsage {
  readonly dialogSet: DialogSet;
  /** The offer/answer exchange (RFC 3264), apart from the dialog state. */
  readonly offerAnswer = new OfferAnswer();
  protected readonly profile: Profile;
  protected readonly handler: InviteSessionHandler;
  /** The session's dialog: the confirmed one, or (UAC) the latest early one. */
  dialog: Dialog | undefined;
  private reported = false;
  private readonly timers = new Map<string, TimerHandle>();
  /** The session this one replaces (RFC 3891): set when the INVITE carried a Replaces that matched. */
  replaces: Handle<InviteSession> | undefined;
  /** An INFO or MESSAGE within the dialog waiting for `acceptNit` / `rejectNit`. */
  private pendingNit: { request: SipRequest; tx: ServerTransactionLike } | undefined;

  constructor(
    dum: DialogUsageManager,
    dialogSet: DialogSet,
    profile: Profile,
    handler: InviteSessionHandler,
  ) {
    super(dum);
    this.dialogSet = dialogSet;
    this.profile = profile;
    this.handler = handler;
    this.dialog = undefined;
    this.pendingNit = undefined;
    this.replaces = undefined;
    dialogSet.inviteSession = this;
  }

  /** The session's state; each side has its own state machine. */
  abstract get state(): string;

  /** Whether the session is up (the INVITE was accepted and acknowledged as this side sees it). */
  get isConnected(): boolean {
    return this.state === 'connected';
  }

  /**
   * End the session: CANCEL or reject before it is up, BYE after. Ending twice does
   * nothing.
   */
  abstract end(): void;

  /** @internal An ACK within the session's dialog (the ACK for a 2xx). */
  receiveAck(_ack: SipRequest): void {}

  /** @internal A CANCEL for the INVITE that created the session. */
  receiveCancel(_cancel: SipRequest): void {}

  /** @internal A 2xx to the INVITE that matched no transaction (its transaction has ended). */
  receiveStray2xx(_response: SipResponse): void {}

  /** The peer sent a BYE on the session's dialog, which was answered 200. */
  protected abstract byeReceived(bye: SipRequest): void;

  /**
   * @internal A request within one of the session's dialogs (§12.2.2): the CSeq is
   * checked (500 when out of order), then BYE, INFO, MESSAGE and REFER are taken; other
   * methods (re-INVITE, UPDATE, PRACK...) are answered 501 for now.
   */
  receiveRequest(request: SipRequest, tx: ServerTransactionLike, dialog: Dialog): void {
    const refused = dialog.receiveRequest(request, false);
    if (refused !== undefined) {
      this.reply(request, tx, refused, undefined, 'Server Internal Error (CSeq out of order)');
      return;
    }
    if (dialog !== this.dialog) {
      // A dialog of the set the session did not keep (an early fork).
      if (request.method === 'BYE') {
        this.reply(request, tx, 200);
        this.dum.removeDialog(dialog);
      } else this.reply(request, tx, 481);
      return;
    }
    switch (request.method) {
      case 'BYE':
        this.reply(request, tx, 200);
        this.byeReceived(request);
        return;
      case 'INFO':
      case 'MESSAGE':
        this.receiveNit(request, tx);
        return;
      case 'REFER':
        receiveInDialogRefer(this.dum, this, this.handler, request, tx, dialog);
        return;
      default:
        this.reply(
          request,
          tx,
          501,
          undefined,
          `Not Implemented (${request.method} within an invite session)`,
        );
    }
  }

  /**
   * Send a REFER in the session's dialog (RFC 3515): `referTo` is where the peer should
   * call; `replaces` embeds a Replaces for another session (attended transfer). The
   * answer goes to `onReferAccepted` / `onReferRejected`, the NOTIFYs of the implicit
   * subscription (`Event: refer;id=<CSeq>`) to `onReferProgress`. Returns the REFER sent.
   */
  refer(referTo: NameAddr | Uri | string, options?: ReferOptions): SipRequest {
    this.assertLive();
    return sendInDialogRefer(this.dum, this, this.profile, this.handler, referTo, options);
  }

  /** @internal Another session replaced this one (RFC 3891 §3): end it, with reason `replaced`. */
  endReplaced(): void {
    if (this.isEnded) return;
    this.reportEnd('replaced');
    this.end();
  }

  /** Accept the INFO or MESSAGE passed to `onInfo` / `onMessage`. */
  acceptNit(
    status = 200,
    options?: { body?: string | Uint8Array; contentType?: string },
  ): SipResponse {
    if (status < 200 || status >= 300)
      throw new DumError('SIP_ERR_DUM_STATE', `acceptNit takes a 2xx, not ${status}`);
    return this.answerNit(status, options);
  }

  /** Refuse the INFO or MESSAGE passed to `onInfo` / `onMessage`. */
  rejectNit(status = 488): SipResponse {
    if (status < 300 || status > 699)
      throw new DumError('SIP_ERR_DUM_STATE', `rejectNit takes 300-699, not ${status}`);
    return this.answerNit(status);
  }

  private receiveNit(request: SipRequest, tx: ServerTransactionLike): void {
    const deliver = request.method === 'INFO' ? this.handler.onInfo : this.handler.onMessage;
    if (!deliver) {
      this.reply(request, tx, 501, undefined, `Not Implemented (no handler for ${request.method})`);
      return;
    }
    if (this.pendingNit) {
      // One at a time: the previous one is still unanswered.
      this.reply(request, tx, 500, [['Retry-After', '1']]);
      return;
    }
    this.pendingNit = { request, tx };
    this.notify(() => deliver.call(this.handler, this.handle(), request));
  }

  private answerNit(
    status: number,
    options?: { body?: string | Uint8Array; contentType?: string },
  ): SipResponse {
    this.assertLive();
    const nit = this.pendingNit;
    if (!nit)
      throw new DumError('SIP_ERR_DUM_STATE', 'no INFO or MESSAGE is waiting for an answer');
    this.pendingNit = undefined;
    return this.reply(nit.request, nit.tx, status, undefined, undefined, options);
  }

  /** Answer a request in the session's dialog. */
  protected reply(
    request: SipRequest,
    tx: ServerTransactionLike,
    status: number,
    headers?: [string, string][],
    reason?: string,
    body?: { body?: string | Uint8Array; contentType?: string },
  ): SipResponse {
    const res = createResponse(request, status, reason, {
      toTag: this.dialog?.id.localTag ?? this.dum.newTag(),
      ...(headers ? { headers } : {}),
      ...(body?.body !== undefined
        ? { body: body.body, contentType: body.contentType ?? 'text/plain' }
        : {}),
    });
    this.dum.decorate(res);
    try {
      tx.respond(res);
    } catch (e) {
      this.dum.logger.warn({ err: e }, `could not answer ${request.method} with ${status}`);
    }
    return res;
  }

  /** The ACK for a 2xx (§13.2.2.4): in the dialog, with the INVITE's CSeq number and credentials. */
  protected makeAck(dialog: Dialog, invite: SipRequest, body?: SessionDescription): SipRequest {
    const ack = dialog.makeRequest('ACK', {
      cseq: invite.cseq.seq,
      ...(body ? { body: body.body, contentType: body.contentType } : {}),
    });
    for (const name of ['Authorization', 'Proxy-Authorization'])
      for (const v of invite.headers(name)) ack.addHeader(name, v);
    return ack;
  }

  /** Send an ACK (no transaction: it is retransmitted only when the 2xx is). */
  protected sendAck(ack: SipRequest): void {
    try {
      this.dum.stack.sendRequest(ack, { onResponse() {} });
    } catch (e) {
      this.dum.logger.warn({ err: e }, 'ACK not sent');
    }
  }

  /**
   * Send a BYE on `dialog` (§15.1.1). For the session's own dialog, the session ends when
   * the BYE has its final response (or fails).
   */
  protected sendBye(dialog: Dialog): void {
    const bye = dialog.makeRequest('BYE');
    const own = dialog === this.dialog;
    try {
      this.dum.sendClient(bye, this.profile, () => {
        if (own) this.finish();
      });
    } catch (e) {
      this.dum.logger.warn({ err: e }, 'BYE not sent');
      if (own) this.finish();
    }
  }

  /** Tell the application the session ended (once). */
  protected reportEnd(reason: EndReason, message?: SipRequest | SipResponse): void {
    if (this.reported) return;
    this.reported = true;
    this.dum.observeInvite({ type: 'terminated', session: this, reason, message });
    this.notify(() => this.handler.onTerminated?.(this.handle(), reason, message));
  }

  /** Forget the session: timers stop, its dialogs leave the DUM, its handles go stale. */
  protected finish(): void {
    if (this.isEnded) return;
    this.stopTimers();
    this.onFinish();
    if (this.dialogSet.inviteSession === this) this.dialogSet.inviteSession = undefined;
    // Subscriptions that share the dialog (REFER) keep the dialog set until they end.
    if (!this.dialogSet.subscriptionUsage) this.dum.removeDialogSet(this.dialogSet);
    this.destroy();
  }

  /** Called once as the session is forgotten, to move the state machine to terminated. */
  protected abstract onFinish(): void;

  /** Run an application callback; what it throws is logged, never thrown into the stack. */
  protected notify(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.dum.logger.error({ err: e, session: this.handleId }, 'an invite session handler threw');
    }
  }

  protected startTimer(name: string, ms: number, fire: () => void): void {
    this.stopTimer(name);
    const clock = this.dum.stack.clock;
    this.timers.set(
      name,
      clock.setTimeout(() => {
        this.timers.delete(name);
        if (!this.isEnded) fire();
      }, ms),
    );
  }

  protected stopTimer(name: string): void {
    const h = this.timers.get(name);
    if (h === undefined) return;
    this.dum.stack.clock.clearTimeout(h);
    this.timers.delete(name);
  }

  private stopTimers(): void {
    for (const h of this.timers.values()) this.dum.stack.clock.clearTimeout(h);
    this.timers.clear();
  }
}

import {
  createResponse,
  type NameAddr,
  parseHeader,
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
import { OfferAnswer, type SessionDescription, toDescription } from '../offer-answer.ts';
import type { Profile } from '../profile.ts';
import { BaseUsage } from './base.ts';
import { type ReferOptions, receiveInDialogRefer, sendInDialogRefer } from './refer.ts';
import {
  type ModificationHost,
  type ModificationPhase,
  SessionModification,
} from './session-modification.ts';
import { SessionTimer, type SessionTimerHost } from './session-timer.ts';

/** How `end()` ends a session. */
export interface EndOptions {
  /**
   * A Reason header (RFC 3326) for the BYE: a full value (`SIP ;cause=200 ;text="Call
   * completed elsewhere"`, `Q.850 ;cause=16`), or a cause and text for protocol SIP.
   */
  reason?: string | { protocol?: string; cause: number; text?: string };
}

/**
 * What the client and server invite sessions share (RFC 3261 §13-15): the dialog set
 * and the session's dialog, the offer/answer state (kept apart from the dialog's),
 * requests within the dialog (BYE, INFO, MESSAGE, REFER; re-INVITE and UPDATE through
 * `SessionModification`; the rest is answered 501 for now), the BYE that ends the
 * session, and timers on the stack's clock.
 *
 * A session stays in the DUM (its handles valid) until it has ended: after a BYE we
 * sent, until the BYE has its final response; otherwise at once.
 */
export abstract class InviteSession extends BaseUsage implements SessionTimerHost {
  readonly dialogSet: DialogSet;
  /** The offer/answer exchange (RFC 3264), apart from the dialog state. */
  readonly offerAnswer = new OfferAnswer();
  protected readonly profile: Profile;
  protected readonly handler: InviteSessionHandler;
  /** The session's dialog: the confirmed one, or (UAC) the latest early one. */
  dialog: Dialog | undefined;
  private reported = false;
  /**
   * Running timers by name; undefined while none runs, which is most of an established
   * call's life (an empty Map still costs a hash table per session).
   */
  private timers: Map<string, TimerHandle> | undefined;
  /** The session this one replaces (RFC 3891): set when the INVITE carried a Replaces that matched. */
  replaces: Handle<InviteSession> | undefined;
  /** An INFO or MESSAGE within the dialog waiting for `acceptNit` / `rejectNit`. */
  private pendingNit: { request: SipRequest; tx: ServerTransactionLike } | undefined;
  /** re-INVITE and UPDATE, both ways (RFC 3261 §14, RFC 3311). */
  /** re-INVITE and UPDATE (RFC 3261 §14, RFC 3311), made on first use: most calls never modify. */
  private mod: SessionModification | undefined;
  /** The session timer (RFC 4028), made when first needed with the profile's timers on. */
  private timerState: SessionTimer | undefined;

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
    this.timerState = undefined;
    dialogSet.inviteSession = this;
  }

  /**
   * The session timer (RFC 4028) while the profile turns it on, else undefined: a timer
   * that is off does nothing, so most calls never make one.
   */
  protected get sessionTimer(): SessionTimer | undefined {
    if (this.timerState === undefined && this.profile.get('sessionTimers'))
      this.timerState = new SessionTimer(this, this.profile, this.dum.logger);
    return this.timerState;
  }

  protected get modification(): SessionModification {
    this.mod ??= new SessionModification(this.modificationHost());
    return this.mod;
  }

  /** The modification machinery if anything has used it yet. */
  protected get modificationIfAny(): SessionModification | undefined {
    return this.mod;
  }

  /** The session's state; each side has its own state machine. */
  abstract get state(): string;

  /** Whether the session is up (the INVITE was accepted and acknowledged as this side sees it). */
  get isConnected(): boolean {
    return this.state === 'connected';
  }

  /**
   * End the session: CANCEL or reject before it is up, BYE after (with a Reason header,
   * RFC 3326, when `options.reason` is given). Ending twice does nothing.
   */
  abstract end(options?: EndOptions): void;

  /** @internal An ACK within the session's dialog (the ACK for a 2xx): here, one for a re-INVITE. */
  receiveAck(ack: SipRequest): void {
    this.mod?.receiveAck(ack);
  }

  /**
   * @internal A CANCEL for an INVITE of the peer's in this session: here, a re-INVITE
   * not yet answered, which gets 487 and leaves the session as it was (§9.2, §14.2).
   */
  receiveCancel(_cancel: SipRequest, tx: ServerTransactionLike): void {
    this.mod?.receiveCancel(tx);
  }

  /**
   * @internal A 2xx to an INVITE of ours that matched no transaction (its transaction
   * has ended): here, a re-INVITE's, ACKed again.
   */
  receiveStray2xx(response: SipResponse): void {
    this.mod?.receiveStray2xx(response);
  }

  /** The peer sent a BYE on the session's dialog, which was answered 200. */
  protected abstract byeReceived(bye: SipRequest): void;

  /**
   * @internal A request within one of the session's dialogs (§12.2.2): the CSeq is
   * checked (500 when out of order), then re-INVITE, UPDATE and PRACK go to
   * `receiveSessionRequest`, BYE, INFO, MESSAGE and REFER are taken here; other methods
   * are answered 501.
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
    if (this.receiveSessionRequest(request, tx)) return;
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
   * Send a BYE on `dialog` (§15.1.1), with a Reason header when one is given (RFC 3326).
   * For the session's own dialog, the session ends when the BYE has its final response
   * (or fails).
   */
  protected sendBye(dialog: Dialog, reason?: string): void {
    const bye = dialog.makeRequest('BYE');
    if (reason !== undefined) bye.setHeader('Reason', reason);
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

  /** The Reason header value `end(options)` asks for, checked before anything changes. */
  protected reasonHeader(options: EndOptions | undefined): string | undefined {
    return options?.reason === undefined ? undefined : reasonValue(options.reason);
  }

  /**
   * @internal A REFER in this session's dialog was carried out: the referred call
   * succeeded (a final 2xx sipfrag, RFC 3515 §2.4.5, either way). A BYE that ends the
   * session after that reports `referred` instead of `local-bye` / `remote-bye`.
   */
  markReferred(): void {
    this.referred = true;
  }
  private referred = false;

  /** Tell the application the session ended (once). */
  protected reportEnd(reason: EndReason, message?: SipRequest | SipResponse): void {
    if (this.reported) return;
    if (this.referred && (reason === 'local-bye' || reason === 'remote-bye')) reason = 'referred';
    this.reported = true;
    this.dum.observeInvite({ type: 'terminated', session: this, reason, message });
    this.notify(() => this.handler.onTerminated?.(this.handle(), reason, message));
  }

  /** Forget the session: timers stop, its dialogs leave the DUM, its handles go stale. */
  protected finish(): void {
    if (this.isEnded) return;
    this.mod?.dispose();
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

  protected startTimer(name: string, ms: number, fire: () => void): void {
    this.stopTimer(name);
    const clock = this.dum.stack.clock;
    this.timers ??= new Map();
    this.timers.set(
      name,
      clock.setTimeout(() => {
        this.forgetTimer(name);
        if (!this.isEnded) fire();
      }, ms),
    );
  }

  protected stopTimer(name: string): void {
    const h = this.timers?.get(name);
    if (h === undefined) return;
    this.dum.stack.clock.clearTimeout(h);
    this.forgetTimer(name);
  }

  private forgetTimer(name: string): void {
    if (this.timers?.delete(name) && this.timers.size === 0) this.timers = undefined;
  }

  private stopTimers(): void {
    if (this.timers === undefined) return;
    for (const h of this.timers.values()) this.dum.stack.clock.clearTimeout(h);
    this.timers = undefined;
  }

  // ---- session modification: re-INVITE and UPDATE (RFC 3261 §14, RFC 3311) ----

  /** Where the session stands for re-INVITE and UPDATE; each side maps its own states. */
  protected abstract get modificationPhase(): ModificationPhase;

  /** End the session with a BYE for `reason` (a failed refresh, a missing ACK). */
  protected abstract endWithBye(reason: EndReason, message?: SipRequest | SipResponse): void;

  /**
   * Send an offer (RFC 3264): in a re-INVITE on a connected session (or an UPDATE when
   * `options.method` says so), in an UPDATE in an early dialog (RFC 3311). When the
   * peer sent a re-INVITE without an offer (`onOfferRequired`), the offer goes in the
   * 2xx to it instead. The answer arrives through `onAnswer`; a refusal through
   * `onOfferRejected` (the session stays as it was).
   */
  provideOffer(
    body: string | Uint8Array,
    contentType = 'application/sdp',
    options?: { method?: 'INVITE' | 'UPDATE' },
  ): void {
    this.assertLive();
    this.modification.offer(toDescription(body, contentType), options?.method);
  }

  /**
   * CANCEL our re-INVITE before its final response (RFC 3261 §9.1, §14.1): at once when
   * a provisional response came, else as soon as one does. The 487 reaches
   * `onOfferRejected` and the session goes on as before the re-INVITE (an answer that came
   * in a reliable 1xx is rolled back); a 2xx that crossed the CANCEL completes the
   * re-INVITE as usual. A re-INVITE waiting to be sent again after a 491 is dropped.
   * Returns false when no re-INVITE of ours is in progress; throws `SIP_ERR_DUM_STATE`
   * for an UPDATE, which cannot be cancelled.
   */
  cancelModification(): boolean {
    this.assertLive();
    return this.modification.cancel();
  }

  /** A re-INVITE or UPDATE is in progress, ours or the peer's (or ours waits to retry after a 491). */
  get isModifying(): boolean {
    return (
      this.mod !== undefined &&
      (this.mod.pending !== undefined || this.mod.pendingIncoming !== undefined)
    );
  }

  /** Send a re-INVITE without an offer (RFC 3261 §14.1): the peer's offer comes to `onOffer`, answered in the ACK. */
  requestOffer(): void {
    this.assertLive();
    this.modification.requestOffer();
  }

  /**
   * Answer the offer passed to `onOffer`: an offer in a re-INVITE or UPDATE gets a 2xx
   * with the answer; an offer in the 2xx to our offerless re-INVITE is answered in the
   * ACK (call it from `onOffer` then).
   */
  provideAnswer(body: string | Uint8Array, contentType = 'application/sdp'): void {
    this.assertLive();
    const sd = toDescription(body, contentType);
    if (this.modification.answer(sd) || this.modification.answerInAck(sd)) return;
    throw new DumError('SIP_ERR_DUM_STATE', 'no offer is waiting for an answer');
  }

  /**
   * Refuse the peer's re-INVITE or UPDATE (488 Not Acceptable Here by default, RFC 3261
   * §14.2): the session goes on as it was.
   */
  reject(status = 488, reason?: string, headers?: [string, string][]): SipResponse {
    this.assertLive();
    const res = this.modification.reject(status, reason, headers);
    if (!res) throw new DumError('SIP_ERR_DUM_STATE', 'no re-INVITE or UPDATE waits for an answer');
    return res;
  }

  /**
   * re-INVITE, UPDATE and PRACK in the session's dialog (the CSeq already checked).
   * Returns false for the methods `receiveRequest` handles itself.
   */
  private receiveSessionRequest(request: SipRequest, tx: ServerTransactionLike): boolean {
    if (request.method === 'PRACK') {
      this.receivePrack(request, tx);
      return true;
    }
    return this.modification.receive(request, tx);
  }

  /**
   * A PRACK (RFC 3262): the UAS side takes it; here (the caller's side, which sends no
   * reliable provisional response) it matches nothing: 481.
   */
  protected receivePrack(prack: SipRequest, tx: ServerTransactionLike): void {
    this.reply(prack, tx, 481, undefined, 'Call/Transaction Does Not Exist (no reliable response)');
  }

  private modificationHost(): ModificationHost {
    return {
      dum: this.dum,
      profile: this.profile,
      handler: this.handler,
      offerAnswer: this.offerAnswer,
      ownsCallId: this.dialogSet.side === 'uac',
      dialog: () => this.dialog,
      phase: () => (this.isEnded ? 'closed' : this.modificationPhase),
      ended: () => this.isEnded,
      handle: () => this.handle() as Handle<InviteSession>,
      session: () => this,
      notify: (fn) => this.notify(fn),
      reply: (request, tx, status, headers, reason, body) =>
        this.reply(request, tx, status, headers, reason, body),
      startTimer: (name, ms, fire) => this.startTimer(name, ms, fire),
      stopTimer: (name) => this.stopTimer(name),
      makeAck: (dialog, invite, body) => this.makeAck(dialog, invite, body),
      sendAck: (ack) => this.sendAck(ack),
      fail: (reason, message) => {
        if (!this.isEnded) this.endWithBye(reason, message);
      },
      decorateRequest: (req) => this.sessionTimer?.decorateRequest(req),
      responseHeaders: (req) => this.sessionTimer?.responseHeaders(req) ?? [],
      refreshed: (req, res, sentByUs) => this.sessionTimer?.negotiated(req, res, sentByUs),
      retryAfter422: (res) => this.sessionTimer?.receive422(res) ?? false,
      refuse: (req) => this.sessionTimer?.check(req),
    };
  }

  // ---- session timer (RFC 4028) ----

  /** The negotiated session interval in seconds, and who refreshes; interval 0 when no timer runs. */
  get sessionTimerState(): { interval: number; refresher: 'local' | 'remote' | undefined } {
    const t = this.timerState;
    return { interval: t?.sessionInterval ?? 0, refresher: t?.refresher };
  }

  /** @internal For the session timer (SessionTimerHost). */
  sessionTimerStart(name: string, ms: number, fire: () => void): void {
    this.startTimer(name, ms, fire);
  }

  /** @internal For the session timer (SessionTimerHost). */
  sessionTimerStop(name: string): void {
    this.stopTimer(name);
  }

  /** @internal For the session timer: send a refresh (RFC 4028 §7.4, §9). */
  sessionRefresh(method: 'INVITE' | 'UPDATE'): boolean {
    return this.modification.refresh(method);
  }

  /** @internal RFC 4028 §10: no refresh came in time; the session ends with a BYE. */
  sessionExpire(): void {
    if (this.isEnded) return;
    this.dum.logger.info({ session: this.handleId }, 'the session expired (RFC 4028 §10)');
    this.notify(() => this.handler.onSessionExpired?.(this.handle()));
    if (!this.isEnded) this.endWithBye('timeout');
  }
}

/**
 * The text of a Reason header (RFC 3326 §2), checked by the parser: a value that does
 * not parse throws `SIP_ERR_DUM_STATE` rather than going out on the wire.
 */
function reasonValue(reason: NonNullable<EndOptions['reason']>): string {
  let value: string;
  if (typeof reason === 'string') value = reason;
  else {
    const text =
      reason.text === undefined ? '' : ` ;text="${reason.text.replace(/["\\]/g, '\\$&')}"`;
    value = `${reason.protocol ?? 'SIP'} ;cause=${reason.cause}${text}`;
  }
  try {
    if (/[\r\n]/.test(value)) throw new Error('line break');
    parseHeader('Reason', value);
  } catch (e) {
    throw new DumError(
      'SIP_ERR_DUM_STATE',
      `not a Reason header value: ${JSON.stringify(value)} (${String(e)})`,
    );
  }
  return value;
}

import type { SipRequest, SipResponse } from '@sipworks/message';
import type { ClientTransactionLike, Flow, ServerTransactionLike } from '@sipworks/stack';
import type { Dialog } from '../dialog.ts';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type { EndReason, InviteSessionHandler } from '../handlers.ts';
import type { Handle } from '../handles.ts';
import {
  descriptionOf,
  type OfferAnswer,
  type OfferAnswerState,
  type SessionDescription,
} from '../offer-answer.ts';
import type { Profile } from '../profile.ts';
import type { InviteSession } from './invite-session.ts';
import { ReliableProvisionalReceiver } from './prack.ts';

/**
 * How far the session is, as modifications see it:
 * - `early`: an early dialog, or a confirmed one whose INVITE is not yet acknowledged;
 *   UPDATE only (RFC 3311 §5.1), a re-INVITE is refused (RFC 3261 §14.2).
 * - `confirmed`: the session is up; re-INVITE and UPDATE.
 * - `closed`: the session is ending; nothing.
 */
export type ModificationPhase = 'early' | 'confirmed' | 'closed';

/** What a session modification needs from its invite session. */
export interface ModificationHost {
  readonly dum: DialogUsageManager;
  readonly profile: Profile;
  readonly handler: InviteSessionHandler;
  readonly offerAnswer: OfferAnswer;
  /** The UAC of the INVITE that made the dialog: the owner of the Call-ID (§14.1). */
  readonly ownsCallId: boolean;
  dialog(): Dialog | undefined;
  phase(): ModificationPhase;
  ended(): boolean;
  handle(): Handle<InviteSession>;
  session(): InviteSession;
  notify(fn: () => void): void;
  reply(
    request: SipRequest,
    tx: ServerTransactionLike,
    status: number,
    headers?: [string, string][],
    reason?: string,
    body?: { body?: string | Uint8Array; contentType?: string },
  ): SipResponse;
  startTimer(name: string, ms: number, fire: () => void): void;
  stopTimer(name: string): void;
  makeAck(dialog: Dialog, invite: SipRequest, body?: SessionDescription): SipRequest;
  sendAck(ack: SipRequest): void;
  /** End the session with a BYE (a 481 or 408 to a request in the dialog, no ACK for a 2xx). */
  fail(reason: EndReason, message?: SipRequest | SipResponse): void;
  /** Headers to add to a re-INVITE or UPDATE we send (the session timer's). */
  decorateRequest(request: SipRequest): void;
  /** Headers to add to our 2xx to a re-INVITE or UPDATE (the session timer's). */
  responseHeaders(request: SipRequest): [string, string][];
  /** A re-INVITE or UPDATE succeeded, either way (the session timer restarts). */
  refreshed(request: SipRequest, response: SipResponse, sentByUs: boolean): void;
  /**
   * A 422 to our re-INVITE or UPDATE (RFC 4028 §7.3): true when the session timer raised
   * its interval and the request is to be sent again.
   */
  retryAfter422(response: SipResponse): boolean;
  /** A re-INVITE or UPDATE of the peer's the session timer refuses (422, RFC 4028 §8.1). */
  refuse(request: SipRequest): { status: number; headers: [string, string][] } | undefined;
}

/** A re-INVITE or UPDATE we sent. */
interface Outgoing {
  readonly method: 'INVITE' | 'UPDATE';
  /** The offer it carries, or undefined (an offerless re-INVITE, or a refresh). */
  readonly offer: SessionDescription | undefined;
  /** A refresh without offer/answer (session timer): failures are not `onOfferRejected`. */
  readonly refreshOnly: boolean;
  /** How many times it was sent again after a 491. */
  readonly attempt: number;
  /** The final response has come; later 2xx are retransmissions. */
  done: boolean;
  /** The ACK of its 2xx, sent again for each retransmission (re-INVITE). */
  ack: SipRequest | undefined;
  /** The answer to its offer, when it came in a reliable 1xx (RFC 3262 §5). */
  earlyAnswer?: SessionDescription;
  /** The offer/answer state agreed before it, restored when it fails (RFC 6337 §3.3.3). */
  readonly before: OfferAnswerState;
  /** Its transaction, known from the first provisional response (a CANCEL needs it). */
  tx: ClientTransactionLike | undefined;
  /** `cancelModification()`: `requested` until a provisional came (§9.1), then `sent`. */
  cancel: 'none' | 'requested' | 'sent';
}

/** A re-INVITE or UPDATE we received. */
interface Incoming {
  readonly method: 'INVITE' | 'UPDATE';
  readonly request: SipRequest;
  readonly tx: ServerTransactionLike;
  /** The offer it carries, or undefined: an offerless re-INVITE, our offer goes in the 2xx. */
  readonly offer: SessionDescription | undefined;
  /** `answering`: the application has not answered; `acking`: our 2xx waits for its ACK. */
  stage: 'answering' | 'acking';
  /** Our 2xx to a re-INVITE, retransmitted until the ACK (§13.3.1.4). */
  ok: SipResponse | undefined;
  interval: number;
}

/** How many times an offer refused with 491 is sent again before the application hears of it. */
export const MAX_GLARE_RETRIES = 3;

/**
 * Changing an established (or early) session: re-INVITE (RFC 3261 §14) and UPDATE
 * (RFC 3311), in both directions, as target refresh and for offer/answer.
 *
 * ```
 *  event                                   action
 *  -------------------------------------   ------------------------------------------------
 *  provideOffer() (confirmed)              re-INVITE with the offer (or UPDATE when asked)
 *  provideOffer() (early)                  UPDATE with the offer
 *  requestOffer()                          re-INVITE without an offer
 *  2xx to our re-INVITE / UPDATE           remote target refreshed; ACK (re-INVITE; with
 *                                          the answer to an offer in the 2xx); onAnswer
 *  491 to ours                             retry after 2.1-4 s (Call-ID owner) or 0-2 s
 *  481 / 408 to ours                       the session ends with a BYE (§12.2.1.2)
 *  other 3xx-6xx to ours                   the offer is forgotten; onOfferRejected
 *  re-INVITE / UPDATE with an offer        onOffer: provideAnswer() => 2xx, reject() => 4xx
 *  re-INVITE without an offer              onOfferRequired: provideOffer() => 2xx, answer in ACK
 *  UPDATE without an offer                 2xx at once (target refresh)
 *  either, while our offer is pending      491 (§14.2, RFC 3311 §5.2)
 *  either, while the peer's is pending     500 with Retry-After (§14.2, RFC 3311 §5.2)
 *  either, offering the session unchanged  2xx with our description, no onOffer (RFC 6337 §5.3)
 *  either, below our Min-SE                422 (the session timer, RFC 4028 §8.1)
 *  CANCEL before we answer a re-INVITE     487; the session stays as it was (§9.2)
 *  no answer from the application          500 after 64*T1 (UPDATE) / staleCallTime (re-INVITE)
 *  no ACK for our 2xx in 64*T1             the session ends with a BYE (§13.3.1.4)
 *  reliable 1xx to our re-INVITE           PRACK (RFC 3262 §4); its description is the answer
 *  cancel() before the final response      CANCEL, held until a 1xx came (§9.1, §14.1); the
 *                                          487 is a failure like any other
 *  failure after an answer in a 1xx        the descriptions agreed before are restored
 *                                          (RFC 6337 §3.3.3); onOfferRejected
 * ```
 */
export class SessionModification {
  private readonly host: ModificationHost;
  private outgoing: Outgoing | undefined;
  private incoming: Incoming | undefined;
  /** Set while `onOffer` runs for an offer in the 2xx to our offerless re-INVITE. */
  private answerForAck: { answer: SessionDescription | undefined } | undefined;
  /** The re-INVITEs we sent whose 2xx were ACKed, by CSeq, for stray 2xx retransmissions. */
  /** The ACKs of our recent re-INVITEs' 2xx, by CSeq; created by the first re-INVITE. */
  private acks: Map<number, SipRequest> | undefined;

  constructor(host: ModificationHost) {
    this.host = host;
    this.outgoing = undefined;
    this.incoming = undefined;
    this.answerForAck = undefined;
  }

  /** Our re-INVITE or UPDATE waiting for its final response (or a retry after 491). */
  get pending(): 'INVITE' | 'UPDATE' | undefined {
    return this.outgoing?.method;
  }

  /** A re-INVITE or UPDATE of the peer's, not yet answered (or, a re-INVITE, not yet ACKed). */
  get pendingIncoming(): 'INVITE' | 'UPDATE' | undefined {
    return this.incoming?.method;
  }

  // ---- sending ----

  /**
   * Send an offer: in a re-INVITE (confirmed session; the default), or an UPDATE (an
   * early dialog, or when asked). An offerless re-INVITE of the peer's waiting for
   * our offer gets it in the 2xx instead.
   */
  offer(sd: SessionDescription, method?: 'INVITE' | 'UPDATE'): void {
    const incoming = this.incoming;
    if (incoming && incoming.stage === 'answering' && incoming.offer === undefined) {
      // §14.2: the offer to an offerless re-INVITE goes in the 2xx; the answer comes in the ACK.
      this.host.offerAnswer.sendOffer(sd);
      this.accept(incoming, sd);
      return;
    }
    const phase = this.host.phase();
    const m = method ?? (phase === 'confirmed' ? 'INVITE' : 'UPDATE');
    this.assertCanSend(m);
    this.host.offerAnswer.sendOffer(sd);
    this.send(m, sd, false, 0);
  }

  /**
   * CANCEL our re-INVITE (RFC 3261 §9.1, §14.1) before its final response: sent now when
   * a provisional response came, else as soon as one does. The re-INVITE then fails
   * (487; `onOfferRejected`) and the session stays as it was, unless a 2xx crossed the
   * CANCEL: then the re-INVITE succeeded. One waiting to be sent again after a 491 is
   * dropped. Returns false when no re-INVITE of ours is in progress; throws for an
   * UPDATE (CANCEL applies to INVITE only, §9).
   */
  cancel(): boolean {
    const out = this.outgoing;
    if (!out) return false;
    if (out.method !== 'INVITE')
      throw new DumError('SIP_ERR_DUM_STATE', 'an UPDATE cannot be cancelled (RFC 3261 §9)');
    if (out.done) {
      // Waiting to be sent again after a 491: it is simply not sent.
      this.host.stopTimer('glare-retry');
      this.outgoing = undefined;
      return true;
    }
    if (out.cancel !== 'none') return true;
    out.cancel = 'requested';
    if (out.tx) this.sendCancel(out);
    return true;
  }

  private sendCancel(out: Outgoing): void {
    if (out.cancel !== 'requested' || !out.tx || out.done) return;
    out.cancel = 'sent';
    try {
      this.host.dum.stack.cancel(out.tx, { onResponse() {} });
    } catch (e) {
      this.host.dum.logger.warn({ err: e }, 'CANCEL of the re-INVITE not sent');
    }
  }

  /** Send a re-INVITE without an offer (§14.1): the peer's offer comes in the 2xx. */
  requestOffer(): void {
    this.assertCanSend('INVITE');
    const p = this.host.offerAnswer.phase;
    if (p === 'local-offer' || p === 'remote-offer')
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        `cannot ask for an offer while one is pending (${p})`,
      );
    this.send('INVITE', undefined, false, 0);
  }

  /**
   * A refresh without offer/answer (the session timer, RFC 4028 §7.4): an UPDATE, or a
   * re-INVITE carrying the last description we sent. Returns false when the session
   * cannot be refreshed now (a modification is in progress: it refreshes too).
   */
  refresh(method: 'INVITE' | 'UPDATE'): boolean {
    if (this.outgoing || this.incoming || this.host.phase() !== 'confirmed') return false;
    const oa = this.host.offerAnswer.state;
    try {
      if (method === 'INVITE') {
        // RFC 4028 §7.4 / RFC 6337 §5.3: a re-INVITE refresh offers the session as it is
        // (a session without any description refreshes without a body).
        if (oa.phase === 'local-offer' || oa.phase === 'remote-offer') return false;
        const offer = oa.phase === 'stable' ? oa.local : undefined;
        if (offer) this.host.offerAnswer.sendOffer(offer);
        this.send('INVITE', offer, true, 0);
        return true;
      }
      this.send('UPDATE', undefined, true, 0);
      return true;
    } catch (e) {
      this.host.dum.logger.warn({ err: e }, `session refresh by ${method} not sent`);
      return false;
    }
  }

  private assertCanSend(method: 'INVITE' | 'UPDATE'): void {
    const phase = this.host.phase();
    if (phase === 'closed')
      throw new DumError('SIP_ERR_DUM_STATE', 'the session is ending: no offer can be sent');
    if (method === 'INVITE' && phase !== 'confirmed')
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        'a re-INVITE needs a confirmed session (RFC 3261 §14.1); use UPDATE in an early dialog',
      );
    if (this.outgoing)
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        `a ${this.outgoing.method} of ours is still in progress`,
      );
    if (method === 'INVITE' && this.incoming?.method === 'INVITE')
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        "the peer's re-INVITE is still in progress (RFC 3261 §14.1)",
      );
  }

  private send(
    method: 'INVITE' | 'UPDATE',
    offer: SessionDescription | undefined,
    refreshOnly: boolean,
    attempt: number,
  ): void {
    const dialog = this.host.dialog();
    if (!dialog) throw new DumError('SIP_ERR_DUM_STATE', 'the session has no dialog');
    const req = dialog.makeRequest(
      method,
      offer ? { body: offer.body, contentType: offer.contentType } : undefined,
    );
    const profile = this.host.profile;
    req.setHeader('Allow', profile.get('supportedMethods').join(', '));
    const tags = profile.optionTags();
    if (tags.length > 0) req.setHeader('Supported', tags.join(', '));
    this.host.decorateRequest(req);
    const out: Outgoing = {
      method,
      offer,
      refreshOnly,
      attempt,
      done: false,
      ack: undefined,
      before: this.host.offerAnswer.snapshot(),
      tx: undefined,
      cancel: 'none',
    };
    this.outgoing = out;
    const reliable = new ReliableProvisionalReceiver();
    try {
      this.host.dum.sendClient(
        req,
        profile,
        (res, tx) => this.receiveFinal(out, req, res, tx),
        method === 'INVITE'
          ? (res, tx) => this.receiveProvisional(out, req, res, tx, reliable)
          : undefined,
      );
    } catch (e) {
      this.outgoing = undefined;
      if (offer) this.host.offerAnswer.abandon();
      throw e;
    }
  }

  /**
   * A provisional response to our re-INVITE: a CANCEL asked for goes now (§9.1); a
   * reliable one (RFC 3262 §4) is PRACKed, and its session description is the answer to
   * our offer.
   */
  private receiveProvisional(
    out: Outgoing,
    sent: SipRequest,
    res: SipResponse,
    tx: ClientTransactionLike,
    reliable: ReliableProvisionalReceiver,
  ): void {
    if (out.done) return;
    out.tx = tx;
    if (out.cancel === 'requested') this.sendCancel(out);
    const dialog = this.host.dialog();
    if (this.host.profile.get('prack') === 'never' || !dialog || reliable.accept(res) !== 'new')
      return;
    const sd = descriptionOf(res);
    if (sd && out.offer && this.host.offerAnswer.receiveAnswer(sd)) out.earlyAnswer = sd;
    const prack = dialog.makeRequest('PRACK');
    prack.setHeader('RAck', `${res.get<number>('RSeq')} ${sent.cseq.seq} INVITE`);
    try {
      this.host.dum.sendClient(prack, this.host.profile, () => {});
    } catch (e) {
      this.host.dum.logger.warn({ err: e }, 'PRACK not sent');
    }
  }

  /** The final response to our re-INVITE or UPDATE (2xx retransmissions included). */
  private receiveFinal(
    out: Outgoing,
    sent: SipRequest,
    res: SipResponse,
    tx: ClientTransactionLike | undefined,
  ): void {
    const ok = res.status >= 200 && res.status < 300;
    if (out.done) {
      // A retransmitted 2xx: its ACK was lost (§13.2.2.4).
      if (ok && out.ack) this.host.sendAck(out.ack);
      return;
    }
    out.done = true;
    if (this.outgoing === out) this.outgoing = undefined;
    const request = tx?.request ?? sent;
    const dialog = this.host.dialog();
    if (ok) {
      this.succeeded(out, request, res, dialog);
      return;
    }
    if (this.host.ended()) return;
    this.rollback(out);
    const retry = out.cancel === 'none' && out.attempt < MAX_GLARE_RETRIES;
    if (res.status === 491 && retry) {
      this.scheduleRetry(out, res);
      return;
    }
    if (res.status === 481 || res.status === 408) {
      // §12.2.1.2: the dialog is gone (481) or the peer unreachable (408): end the session.
      this.host.fail(res.status === 408 ? 'timeout' : 'error', res);
      return;
    }
    if (res.status === 422 && retry && this.host.retryAfter422(res)) {
      this.resend(out, res);
      return;
    }
    if (!out.refreshOnly)
      this.host.notify(() => this.host.handler.onOfferRejected?.(this.host.handle(), res));
  }

  /**
   * Our request failed: its offer is forgotten, and when its answer had come in a
   * reliable 1xx, the descriptions agreed before it are back (RFC 6337 §3.3.3, RFC 3261
   * §14.1: the session is as it was before the re-INVITE).
   */
  private rollback(out: Outgoing): void {
    const oa = this.host.offerAnswer;
    if (out.earlyAnswer) oa.restore(out.before);
    else if (out.offer) oa.abandon();
  }

  private succeeded(
    out: Outgoing,
    request: SipRequest,
    res: SipResponse,
    dialog: Dialog | undefined,
  ): void {
    const host = this.host;
    const oa = host.offerAnswer;
    // §12.2.1.2 (RFC 6141 §3.4): the 2xx to a target refresh replaces the remote target.
    dialog?.receiveTargetRefreshResponse(res);
    const sd = descriptionOf(res);
    let answer: SessionDescription | undefined;
    let ackBody: SessionDescription | undefined;
    let missing = false;
    if (out.offer) {
      if (out.earlyAnswer) answer = out.earlyAnswer;
      else if (sd && oa.receiveAnswer(sd)) answer = sd;
      else {
        host.dum.logger.warn({ method: out.method }, 'the 2xx carries no answer to our offer');
        oa.abandon();
        missing = true;
      }
    } else if (out.method === 'INVITE' && !out.refreshOnly) {
      // An offerless re-INVITE: the offer is in the 2xx, the answer goes in the ACK (§14.1).
      if (sd && oa.receiveOffer(sd) === undefined) {
        const pending: { answer: SessionDescription | undefined } = { answer: undefined };
        this.answerForAck = pending;
        host.notify(() => host.handler.onOffer?.(host.handle(), res, sd.body));
        this.answerForAck = undefined;
        ackBody = pending.answer;
        if (!ackBody) {
          host.dum.logger.warn(
            {},
            'the offer in the 2xx to our re-INVITE was not answered from onOffer',
          );
          oa.abandon();
        }
      } else missing = true;
    }
    if (out.method === 'INVITE' && dialog) {
      out.ack = host.makeAck(dialog, request, ackBody);
      this.acks ??= new Map();
      this.acks.set(request.cseq.seq, out.ack);
      // Only recent 2xx are retransmitted (for 64*T1): a few ACKs are enough to keep.
      for (const seq of this.acks.keys()) if (this.acks.size > 4) this.acks.delete(seq);
      host.sendAck(out.ack);
    }
    if (host.ended()) return;
    host.refreshed(request, res, true);
    if (out.refreshOnly) return;
    if (answer) {
      const body = answer.body;
      host.notify(() => host.handler.onAnswer?.(host.handle(), res, body));
    } else if (missing) host.notify(() => host.handler.onOfferRejected?.(host.handle(), res));
  }

  /**
   * A 491 to our request (§14.1): send it again after T, 2.1-4 s when we own the
   * Call-ID, 0-2 s otherwise, in units of 10 ms.
   */
  private scheduleRetry(out: Outgoing, res: SipResponse): void {
    const rand = this.host.dum.random();
    const ms = this.host.ownsCallId
      ? 2100 + Math.floor(rand * 191) * 10
      : Math.floor(rand * 201) * 10;
    // Until the retry, ours counts as pending: the application cannot send another.
    const waiting: Outgoing = { ...out, done: true };
    this.outgoing = waiting;
    this.host.startTimer('glare-retry', ms, () => {
      if (this.outgoing === waiting) this.outgoing = undefined;
      const oa = this.host.offerAnswer;
      const phase = this.host.phase();
      const blocked =
        phase === 'closed' ||
        (out.method === 'INVITE' && phase !== 'confirmed') ||
        this.incoming !== undefined ||
        oa.phase === 'local-offer' ||
        oa.phase === 'remote-offer';
      if (blocked) {
        if (!out.refreshOnly)
          this.host.notify(() => this.host.handler.onOfferRejected?.(this.host.handle(), res));
        return;
      }
      this.resend(out, res);
    });
  }

  /**
   * Send a refused request again (after a 491 or a 422), with a new CSeq. When it
   * cannot go (the stack stopped), the application hears the refusal.
   */
  private resend(out: Outgoing, res: SipResponse): void {
    try {
      if (out.offer) this.host.offerAnswer.sendOffer(out.offer);
      this.send(out.method, out.offer, out.refreshOnly, out.attempt + 1);
    } catch (e) {
      this.host.dum.logger.warn({ err: e }, `the ${out.method} could not be sent again`);
      if (!out.refreshOnly)
        this.host.notify(() => this.host.handler.onOfferRejected?.(this.host.handle(), res));
    }
  }

  /** Answer the offer in the 2xx to our offerless re-INVITE, from `onOffer`: the answer goes in the ACK. */
  answerInAck(sd: SessionDescription): boolean {
    const pending = this.answerForAck;
    if (!pending || pending.answer !== undefined) return false;
    this.host.offerAnswer.sendAnswer(sd);
    pending.answer = sd;
    return true;
  }

  /** @internal A 2xx to a re-INVITE of ours whose transaction has ended: ACK it again. */
  receiveStray2xx(res: SipResponse): void {
    const ack = this.acks?.get(res.cseq.seq);
    if (ack) this.host.sendAck(ack);
  }

  // ---- receiving ----

  /**
   * A re-INVITE or UPDATE in the session's dialog (its CSeq already checked). Returns
   * false for other methods.
   */
  receive(request: SipRequest, tx: ServerTransactionLike): boolean {
    const method = request.method;
    if (method !== 'INVITE' && method !== 'UPDATE') return false;
    const host = this.host;
    const phase = host.phase();
    if (phase === 'closed') {
      host.reply(
        request,
        tx,
        481,
        undefined,
        'Call/Transaction Does Not Exist (the session is ending)',
      );
      return true;
    }
    const refusal = host.refuse(request);
    if (refusal) {
      host.reply(request, tx, refusal.status, refusal.headers);
      return true;
    }
    if (method === 'INVITE') {
      // §14.2: an INVITE while ours is in progress gets 491; while the peer's earlier
      // INVITE is unanswered, 500 with Retry-After.
      const ours = this.outgoing;
      if ((ours?.method === 'INVITE' && !ours.done) || (phase === 'early' && host.ownsCallId)) {
        host.reply(request, tx, 491);
        return true;
      }
      if (this.incoming?.method === 'INVITE' || phase === 'early') {
        this.replyRetryLater(request, tx);
        return true;
      }
    }
    const sd = descriptionOf(request);
    if (method === 'UPDATE' && sd && this.incoming) {
      // RFC 3311 §5.2: the peer's earlier re-INVITE or UPDATE is still open.
      this.replyRetryLater(request, tx);
      return true;
    }
    const oa = host.offerAnswer;
    const last = oa.state;
    if (sd && last.phase === 'stable' && sameBytes(last.remote.body, sd.body)) {
      // The session as it is, offered again (a session refresh, RFC 4028 §7.4, RFC 6337
      // §5.3): answered with our current description, without asking the application.
      oa.receiveOffer(sd);
      oa.sendAnswer(last.local);
      this.accept(
        { method, request, tx, offer: sd, stage: 'answering', ok: undefined, interval: 0 },
        last.local,
      );
      return true;
    }
    if (sd) {
      // RFC 3311 §5.2, RFC 3261 §14.2: glare is 491; an offer on top of the peer's is 500.
      const refused = oa.receiveOffer(sd);
      if (refused === 491) {
        host.reply(request, tx, 491);
        return true;
      }
      if (refused === 500) {
        this.replyRetryLater(request, tx);
        return true;
      }
    } else if (method === 'INVITE') {
      // An offerless re-INVITE asks for our offer: not while an exchange is open (RFC 6337 §3.1).
      if (oa.phase === 'local-offer') {
        host.reply(request, tx, 491);
        return true;
      }
      if (oa.phase === 'remote-offer') {
        this.replyRetryLater(request, tx);
        return true;
      }
    }
    const incoming: Incoming = {
      method,
      request,
      tx,
      offer: sd,
      stage: 'answering',
      ok: undefined,
      interval: 0,
    };
    if (method === 'UPDATE' && !sd) {
      // A target refresh (or session refresh) without offer/answer: 2xx now (RFC 3311 §5.2).
      this.accept(incoming, undefined);
      return true;
    }
    this.incoming = incoming;
    if (method === 'INVITE') host.dum.watchInviteTransaction(tx, host.session());
    this.limitAnswerWait(incoming);
    tx.handler = {
      onError: (err) => {
        if (this.incoming !== incoming) return;
        host.dum.logger.warn({ err }, `the response to a ${method} failed`);
        this.incoming = undefined;
        if (incoming.stage === 'answering' || oa.phase === 'local-offer') oa.abandon();
      },
    };
    const handler = host.handler;
    if (sd) {
      if (!handler.onOffer) {
        this.reject(488, 'Not Acceptable Here (no onOffer handler)');
        return true;
      }
      host.notify(() => handler.onOffer?.(host.handle(), request, sd.body));
    } else {
      if (!handler.onOfferRequired) {
        this.reject(488, 'Not Acceptable Here (no onOfferRequired handler)');
        return true;
      }
      host.notify(() => handler.onOfferRequired?.(host.handle(), request));
    }
    return true;
  }

  /**
   * The application has so long to answer: an UPDATE 64*T1 (its sender's transaction
   * gives up then, RFC 3261 §17.1.2.2), a re-INVITE the profile's `staleCallTime`.
   * Then it is refused with 500, so the session never stays blocked by it.
   */
  private limitAnswerWait(incoming: Incoming): void {
    const ms =
      incoming.method === 'UPDATE'
        ? 64 * this.host.dum.stack.timers.t1
        : this.host.profile.get('staleCallTime') * 1000;
    if (ms <= 0) return;
    this.host.startTimer('answer-wait', ms, () => {
      if (this.incoming !== incoming || incoming.stage !== 'answering') return;
      this.host.dum.logger.warn(
        { method: incoming.method },
        'the application did not answer in time',
      );
      this.reject(500, 'Server Internal Error (no answer from the application)');
    });
  }

  /** Answer the peer's offer in a re-INVITE or UPDATE with a 2xx. Returns false when none waits. */
  answer(sd: SessionDescription): boolean {
    const incoming = this.incoming;
    if (incoming?.stage !== 'answering' || incoming.offer === undefined) return false;
    this.host.offerAnswer.sendAnswer(sd);
    this.accept(incoming, sd);
    return true;
  }

  /**
   * Refuse the peer's re-INVITE or UPDATE (488 by default): the session stays as it
   * was (§14.2). Returns undefined when none waits for an answer.
   */
  reject(status = 488, reason?: string, headers?: [string, string][]): SipResponse | undefined {
    const incoming = this.incoming;
    if (incoming?.stage !== 'answering') return undefined;
    if (status < 300 || status > 699)
      throw new DumError('SIP_ERR_DUM_STATE', `reject takes 300-699, not ${status}`);
    this.incoming = undefined;
    if (incoming.offer) this.host.offerAnswer.abandon();
    return this.host.reply(incoming.request, incoming.tx, status, headers, reason);
  }

  /** The 2xx to the peer's re-INVITE or UPDATE, with our Contact and capabilities. */
  private accept(incoming: Incoming, sd: SessionDescription | undefined): void {
    const host = this.host;
    const dialog = host.dialog();
    const profile = host.profile;
    const headers: [string, string][] = [];
    if (dialog) headers.push(['Contact', dialog.localContact.toString()]);
    headers.push(['Allow', profile.get('supportedMethods').join(', ')]);
    const tags = profile.optionTags();
    if (tags.length > 0) headers.push(['Supported', tags.join(', ')]);
    headers.push(...host.responseHeaders(incoming.request));
    // RFC 6141 §3.4: the remote target changes when the target refresh is accepted.
    const contact = incoming.request.contacts[0];
    if (dialog && contact && !contact.star) dialog.remoteTarget = contact.uri.clone();
    const res = host.reply(
      incoming.request,
      incoming.tx,
      200,
      headers,
      undefined,
      sd ? { body: sd.body, contentType: sd.contentType } : undefined,
    );
    if (incoming.method === 'UPDATE') {
      if (this.incoming === incoming) this.incoming = undefined;
      host.refreshed(incoming.request, res, false);
      return;
    }
    this.incoming = incoming;
    incoming.stage = 'acking';
    incoming.ok = res;
    const timers = host.dum.stack.timers;
    if (!isReliable(incoming.tx)) {
      incoming.interval = timers.t1;
      host.startTimer('reinvite-2xx', incoming.interval, () => this.retransmit(incoming));
    }
    host.startTimer('reinvite-ack', 64 * timers.t1, () => this.ackTimeout(incoming));
    host.refreshed(incoming.request, res, false);
  }

  /** Resend our 2xx to a re-INVITE until the ACK (§13.3.1.4), the interval doubling up to T2. */
  private retransmit(incoming: Incoming): void {
    if (this.incoming !== incoming || !incoming.ok) return;
    try {
      incoming.tx.respond(incoming.ok);
    } catch (e) {
      this.host.dum.logger.warn({ err: e }, 'the 2xx to a re-INVITE was not retransmitted');
    }
    incoming.interval = Math.min(2 * incoming.interval, this.host.dum.stack.timers.t2);
    this.host.startTimer('reinvite-2xx', incoming.interval, () => this.retransmit(incoming));
  }

  private ackTimeout(incoming: Incoming): void {
    if (this.incoming !== incoming) return;
    this.host.stopTimer('reinvite-2xx');
    this.incoming = undefined;
    this.host.offerAnswer.abandon();
    this.host.fail('timeout');
  }

  /**
   * The ACK for our 2xx to a re-INVITE. It carries the answer when our 2xx carried an
   * offer (an offerless re-INVITE). Returns false when it is not for a re-INVITE.
   */
  receiveAck(ack: SipRequest): boolean {
    const incoming = this.incoming;
    if (incoming?.stage !== 'acking' || ack.cseq.seq !== incoming.request.cseq.seq) return false;
    const host = this.host;
    host.stopTimer('reinvite-2xx');
    host.stopTimer('reinvite-ack');
    this.incoming = undefined;
    const oa = host.offerAnswer;
    if (oa.phase !== 'local-offer') return true;
    const answer = descriptionOf(ack);
    if (answer && oa.receiveAnswer(answer)) {
      host.notify(() => host.handler.onAnswer?.(host.handle(), ack, answer.body));
      return true;
    }
    // §14.2: the ACK must carry the answer to the offer in our 2xx; the old session stays.
    host.dum.logger.warn({}, 'the ACK to a re-INVITE carries no answer to our offer');
    oa.abandon();
    host.notify(() => host.handler.onOfferRejected?.(host.handle(), undefined));
    return true;
  }

  /**
   * A CANCEL for the peer's re-INVITE (§9.2): while it is unanswered, 487, and its offer
   * is forgotten; the session stays as it was (§14.2). Later, nothing.
   */
  receiveCancel(tx: ServerTransactionLike): void {
    const incoming = this.incoming;
    if (incoming?.tx !== tx || incoming.stage !== 'answering') return;
    this.incoming = undefined;
    if (incoming.offer) this.host.offerAnswer.abandon();
    this.host.reply(incoming.request, tx, 487);
  }

  /** The session ends: a request of the peer's still unanswered gets 487 (§15.1.2). */
  dispose(): void {
    const incoming = this.incoming;
    this.incoming = undefined;
    this.outgoing = undefined;
    if (incoming?.stage === 'answering') {
      try {
        this.host.reply(incoming.request, incoming.tx, 487);
      } catch (e) {
        this.host.dum.logger.warn({ err: e }, `no 487 for a pending ${incoming.method}`);
      }
    }
  }

  private replyRetryLater(request: SipRequest, tx: ServerTransactionLike): void {
    // §14.2: Retry-After between 0 and 10 s.
    const seconds = Math.floor(this.host.dum.random() * 11);
    this.host.reply(request, tx, 500, [['Retry-After', String(seconds)]]);
  }
}

/** Whether a server transaction runs on a reliable transport (no 2xx retransmission then). */
function isReliable(tx: ServerTransactionLike): boolean {
  const flow = (tx as Partial<{ flow: Flow }>).flow;
  return flow?.transport.reliable === true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

import {
  createResponse,
  type EventHeader,
  type SipRequest,
  type SipResponse,
  type SubscriptionState,
} from '@sipworks/message';
import type { ServerTransactionLike, TimerHandle } from '@sipworks/stack';
import { Dialog } from '../dialog.ts';
import { DialogSet } from '../dialog-set.ts';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type { ClientSubscriptionHandler } from '../handlers.ts';
import { DialogSetId } from '../ids.ts';
import type { Profile } from '../profile.ts';
import { BaseUsage } from './base.ts';
import { refreshDelaySeconds } from './client-registration.ts';

export type ClientSubscriptionState = 'subscribing' | 'pending' | 'active' | 'ending' | 'ended';

/** 64*T1 with the default T1 of 500 ms: how long to wait for the first NOTIFY after the 2xx (RFC 6665 §4.1.2.4); the stack's own T1 is used. */
export const NOTIFY_WAIT_MS = 64 * 500;

/** Reasons after which a new subscription may be tried (RFC 6665 §4.1.3). */
const RETRYABLE = new Set(['deactivated', 'probation', 'timeout', 'giveup']);

/**
 * @internal The SUBSCRIBE of one `dum.send` and every dialog it made: each NOTIFY or
 * 2xx with a new To tag (a fork) makes its own `ClientSubscription`; the first is the
 * one whose handle `send` returned.
 */
export class ClientSubscriptionCreator {
  readonly set: DialogSet;
  readonly request: SipRequest;
  private readonly dum: DialogUsageManager;
  private readonly first: ClientSubscription;
  private readonly byRemoteTag = new Map<string, ClientSubscription>();

  constructor(dum: DialogUsageManager, request: SipRequest, first: ClientSubscription) {
    this.dum = dum;
    this.request = request;
    this.first = first;
    this.set = new DialogSet(DialogSetId.of(request, 'from'), 'uac', request, {});
    this.set.subscriptionUsage = this;
    dum.addDialogSet(this.set);
  }

  /** The 2xx (or failure) to the initial SUBSCRIBE. */
  receiveResponse(res: SipResponse): void {
    if (res.status < 200 || res.status >= 300) {
      if (!this.first.dialog) this.first.initialFailed(res);
      this.cleanup();
      return;
    }
    const tag = res.to.tag ?? '';
    let sub = this.byRemoteTag.get(tag);
    if (!sub) {
      const dialog = Dialog.asUac(this.request, res);
      dialog.early = false;
      sub = this.bind(dialog, undefined);
      if (!sub) return;
    }
    // The 2xx answers the SUBSCRIBE as last sent: after a 401/407 or a redirect that is a
    // retry with a higher CSeq than the request this creator holds. The next request in
    // the dialog takes the CSeq after it (RFC 3261 §12.2.1.1), else the notifier refuses
    // it as out of order.
    if (sub.dialog && sub.dialog.localSeq < res.cseq.seq) sub.dialog.localSeq = res.cseq.seq;
    sub.initialAccepted(res);
  }

  /** @internal A NOTIFY (or a SUBSCRIBE, answered 481) on this dialog set. */
  receiveRequest(req: SipRequest, tx: ServerTransactionLike, _dialog: Dialog | undefined): void {
    if (req.method !== 'NOTIFY') {
      reply(this.dum, req, tx, 481);
      return;
    }
    const tag = req.from.tag ?? '';
    const existing = this.byRemoteTag.get(tag);
    if (existing) {
      existing.receiveNotify(req, tx, false);
      return;
    }
    const contact = req.contacts[0];
    if (!contact || contact.star) {
      reply(this.dum, req, tx, 400, 'Bad Request (a NOTIFY that creates a dialog needs a Contact)');
      return;
    }
    const dialog = Dialog.asUas(
      req,
      this.request.from.tag ?? '',
      this.request.contacts[0] ?? Dialog.contact(`<${this.request.from.uri}>`),
    );
    dialog.localSeq = this.request.cseq.seq;
    const sub = this.bind(dialog, req);
    if (!sub) {
      reply(this.dum, req, tx, 481);
      return;
    }
    sub.receiveNotify(req, tx, true);
  }

  /** Attach a new dialog: to the first subscription, or to a new one (a fork). */
  private bind(dialog: Dialog, notify: SipRequest | undefined): ClientSubscription | undefined {
    let sub: ClientSubscription;
    if (!this.first.dialog && !this.first.isEnded) sub = this.first;
    else {
      sub = this.first.fork();
      if (notify) this.dum.logger.debug?.({ dialog: dialog.id.toString() }, 'forked subscription');
    }
    sub.dialog = dialog;
    this.byRemoteTag.set(dialog.id.remoteTag, sub);
    this.dum.addDialog(this.set, dialog);
    if (sub !== this.first && notify) sub.announce(notify);
    return sub;
  }

  /** @internal A subscription of the set ended. */
  forget(sub: ClientSubscription): void {
    if (sub.dialog) {
      this.byRemoteTag.delete(sub.dialog.id.remoteTag);
      this.dum.removeDialog(sub.dialog);
    }
    if (this.byRemoteTag.size === 0 && (sub === this.first || this.first.isEnded)) this.cleanup();
  }

  private cleanup(): void {
    if (this.byRemoteTag.size > 0) return;
    this.set.subscriptionUsage = undefined;
    this.dum.removeDialogSet(this.set);
  }
}

/**
 * A subscription (RFC 6665 §4.1): the SUBSCRIBE made by `dum.makeSubscription`, sent
 * by `dum.send`. The 2xx and the NOTIFYs (which may come first) make the dialog; each
 * NOTIFY goes to `onUpdatePending`, `onUpdateActive` or `onUpdateExtension` by its
 * Subscription-State, and the application answers it with `acceptUpdate()` or
 * `rejectUpdate(status)` **inside** the callback: when the callback returns without an
 * answer, the DUM answers 200. The subscription is refreshed before it expires
 * (`refreshDelaySeconds` of the expiry granted); `end()` unsubscribes (Expires: 0) and
 * the final NOTIFY ends it. A terminated NOTIFY goes to `onRequestRetry` (when the
 * reason allows a new subscription, RFC 6665 §4.1.3) and then `onTerminated`.
 */
export class ClientSubscription extends BaseUsage {
  readonly kind = 'ClientSubscription';
  readonly event: string;
  readonly eventId: string | undefined;
  /** @internal */
  dialog: Dialog | undefined;
  private readonly profile: Profile;
  private readonly handler: ClientSubscriptionHandler;
  private creator: ClientSubscriptionCreator | undefined;
  /** The out-of-dialog SUBSCRIBE as first sent (a template for retries). */
  private readonly initial: SipRequest;
  private st: ClientSubscriptionState = 'subscribing';
  private requested: number;
  private gotNotify = false;
  private refreshTimer: TimerHandle | undefined;
  private waitTimer: TimerHandle | undefined;
  private pendingNotify: { req: SipRequest; tx: ServerTransactionLike } | undefined;
  /** The last NOTIFY received. */
  lastNotify: SipRequest | undefined;
  /** Expiry (s) granted by the last 2xx or NOTIFY. */
  expires = 0;

  /** 64*T1 of the stack this DUM runs on. */
  private get notifyWait(): number {
    return 64 * this.dum.stack.timers.t1;
  }

  constructor(
    dum: DialogUsageManager,
    request: SipRequest,
    profile: Profile,
    handler: ClientSubscriptionHandler,
  ) {
    super(dum);
    this.initial = request;
    this.profile = profile;
    this.handler = handler;
    const ev = request.get<EventHeader>('Event');
    this.event = ev?.package.toLowerCase() ?? '';
    this.eventId = ev?.id;
    this.requested = request.expires ?? profile.get('defaultSubscriptionExpires');
  }

  get state(): ClientSubscriptionState {
    return this.st;
  }

  /** @internal Send the SUBSCRIBE. */
  start(request: SipRequest = this.initial): void {
    const creator = new ClientSubscriptionCreator(this.dum, request, this);
    this.creator = creator;
    this.dum.sendClient(request, this.profile, (res) => creator.receiveResponse(res));
  }

  /** @internal A new subscription for another dialog of the same SUBSCRIBE. */
  fork(): ClientSubscription {
    const sub = new ClientSubscription(this.dum, this.initial, this.profile, this.handler);
    sub.creator = this.creator;
    return sub;
  }

  /** @internal Tell the application about a forked subscription. */
  announce(notify: SipRequest): void {
    this.call(() => this.handler.onNewSubscription?.(this.handle(), notify));
  }

  /** Subscribe again now within the dialog (CSeq + 1, same Event), for the expiry asked for. */
  refresh(expires = this.requested): void {
    this.assertLive();
    if (!this.dialog || this.st === 'ending')
      throw new DumError('SIP_ERR_DUM_STATE', 'the subscription has no dialog to refresh yet');
    this.requested = expires;
    this.sendInDialog(expires);
  }

  /** Unsubscribe (Expires: 0); the final NOTIFY ends the subscription (`onTerminated`). */
  end(): void {
    if (this.isEnded || this.st === 'ending') return;
    const wasBound = this.dialog !== undefined;
    this.st = 'ending';
    this.stopTimers();
    if (wasBound) this.sendInDialog(0);
    // Without a final NOTIFY within 64*T1, it is over anyway.
    this.waitTimer = this.dum.stack.clock.setTimeout(
      () => this.terminate(undefined),
      this.notifyWait,
    );
  }

  /** Accept the NOTIFY being delivered (2xx, 200 by default). */
  acceptUpdate(status = 200): void {
    if (status < 200 || status >= 300)
      throw new DumError('SIP_ERR_DUM_STATE', `acceptUpdate takes a 2xx, not ${status}`);
    this.answerNotify(status);
  }

  /** Refuse the NOTIFY being delivered (300-699). */
  rejectUpdate(status = 400): void {
    if (status < 300 || status > 699)
      throw new DumError('SIP_ERR_DUM_STATE', `rejectUpdate takes 300-699, not ${status}`);
    this.answerNotify(status);
  }

  /** @internal */
  initialFailed(res: SipResponse): void {
    if (this.isEnded) return;
    this.dum.logger.debug?.({ status: res.status }, 'SUBSCRIBE failed');
    this.terminate(undefined);
  }

  /** @internal The 2xx to the SUBSCRIBE (or to a retry of it). */
  initialAccepted(res: SipResponse): void {
    if (this.isEnded) return;
    if (this.st === 'ending') {
      this.sendInDialog(0);
      return;
    }
    const e = res.expires;
    if (e !== undefined) this.schedule(e);
    if (!this.gotNotify && this.waitTimer === undefined)
      this.waitTimer = this.dum.stack.clock.setTimeout(() => {
        this.waitTimer = undefined;
        // RFC 6665 §4.1.2.4: no NOTIFY after the 2xx: the subscription failed.
        if (!this.gotNotify) this.terminate(undefined);
      }, this.notifyWait);
  }

  /** @internal A NOTIFY in our dialog. */
  receiveNotify(req: SipRequest, tx: ServerTransactionLike, created: boolean): void {
    const dialog = this.dialog;
    if (!dialog || this.isEnded) {
      reply(this.dum, req, tx, 481);
      return;
    }
    if (!created) {
      const refused = dialog.receiveRequest(req, true);
      if (refused !== undefined) {
        reply(this.dum, req, tx, refused);
        return;
      }
    }
    let ss: SubscriptionState | undefined;
    let ev: EventHeader | undefined;
    try {
      ss = req.get<SubscriptionState>('Subscription-State');
      ev = req.get<EventHeader>('Event');
    } catch {
      ss = undefined;
    }
    if (!ss) {
      reply(this.dum, req, tx, 400, 'Bad Request (no Subscription-State)');
      return;
    }
    if (!ev || ev.package.toLowerCase() !== this.event || ev.id !== this.eventId) {
      reply(this.dum, req, tx, 489);
      return;
    }
    this.gotNotify = true;
    this.lastNotify = req;
    if (this.waitTimer !== undefined && this.st !== 'ending') {
      this.dum.stack.clock.clearTimeout(this.waitTimer);
      this.waitTimer = undefined;
    }
    const state = ss.state;
    if (state === 'terminated') {
      reply(this.dum, req, tx, 200);
      this.terminated(req, ss);
      return;
    }
    if (ss.expires !== undefined && this.st !== 'ending') this.schedule(ss.expires);
    if (this.st !== 'ending') this.st = state === 'pending' ? 'pending' : 'active';
    this.pendingNotify = { req, tx };
    this.call(() => {
      const h = this.handle();
      if (state === 'pending') this.handler.onUpdatePending?.(h, req);
      else if (state === 'active') this.handler.onUpdateActive?.(h, req);
      else this.handler.onUpdateExtension?.(h, req);
    });
    if (this.pendingNotify?.req === req) this.answerNotify(200);
  }

  private terminated(req: SipRequest, ss: SubscriptionState): void {
    if (this.st === 'ending') {
      this.terminate(req);
      return;
    }
    const reason = ss.reason?.toLowerCase();
    const retryAfter = ss.retryAfter;
    const h = this.handler.onRequestRetry;
    if (h && (reason === undefined || RETRYABLE.has(reason))) {
      let wait = -1;
      this.call(() => {
        wait = h.call(this.handler, this.handle(), retryAfter ?? -1, req);
      });
      if (!this.isEnded && wait >= 0 && Number.isFinite(wait)) {
        this.retry(wait);
        return;
      }
    }
    this.terminate(req);
  }

  /** Start over with a new SUBSCRIBE (new Call-ID and tags) after `seconds`. */
  private retry(seconds: number): void {
    this.stopTimers();
    this.creator?.forget(this);
    this.dialog = undefined;
    this.gotNotify = false;
    this.st = 'subscribing';
    this.refreshTimer = this.dum.stack.clock.setTimeout(() => {
      this.refreshTimer = undefined;
      if (this.isEnded) return;
      const req = this.initial.clone();
      req.removeHeader('Via');
      req.removeHeader('Authorization');
      req.removeHeader('Proxy-Authorization');
      req.setHeader('Call-ID', this.dum.newCallId());
      const from = req.from.clone();
      from.params.set('tag', this.dum.newTag());
      req.setHeader('From', from);
      req.setHeader('Expires', String(this.requested));
      this.start(req);
    }, seconds * 1000);
  }

  private answerNotify(status: number): void {
    this.assertLive();
    const p = this.pendingNotify;
    if (!p) throw new DumError('SIP_ERR_DUM_STATE', 'no NOTIFY is waiting for an answer');
    this.pendingNotify = undefined;
    reply(this.dum, p.req, p.tx, status, undefined, this.dialog?.id.localTag);
  }

  private sendInDialog(expires: number): void {
    const dialog = this.dialog;
    if (!dialog) return;
    const req = dialog.makeRequest('SUBSCRIBE');
    for (const name of ['Event', 'Accept']) {
      const v = this.initial.header(name);
      if (v !== undefined) req.setHeader(name, v);
    }
    req.setHeader('Expires', String(expires));
    this.dum.sendClient(req, this.profile, (res) => {
      if (this.isEnded) return;
      dialog.receiveTargetRefreshResponse(res);
      if (res.status >= 200 && res.status < 300) {
        if (expires > 0 && this.st !== 'ending' && res.expires !== undefined)
          this.schedule(res.expires);
        return;
      }
      // §4.1.2.2: 481 or a timeout ends the subscription; otherwise it lasts until it expires.
      if (res.status === 481 || res.status === 408 || this.st === 'ending')
        this.terminate(undefined);
    });
  }

  private schedule(expires: number): void {
    this.expires = expires;
    if (this.refreshTimer !== undefined) this.dum.stack.clock.clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    if (expires <= 0) return;
    this.refreshTimer = this.dum.stack.clock.setTimeout(() => {
      this.refreshTimer = undefined;
      if (!this.isEnded && this.st !== 'ending') this.refresh();
    }, refreshDelaySeconds(expires) * 1000);
  }

  private stopTimers(): void {
    const clock = this.dum.stack.clock;
    if (this.refreshTimer !== undefined) clock.clearTimeout(this.refreshTimer);
    if (this.waitTimer !== undefined) clock.clearTimeout(this.waitTimer);
    this.refreshTimer = undefined;
    this.waitTimer = undefined;
  }

  private terminate(notify: SipRequest | undefined): void {
    if (this.isEnded) return;
    this.stopTimers();
    this.st = 'ended';
    this.call(() => this.handler.onTerminated?.(this.handle(), notify));
    this.creator?.forget(this);
    this.destroy();
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.dum.logger.error({ err: e }, 'ClientSubscriptionHandler threw');
    }
  }
}

/** @internal Answer a request of a subscription dialog. */
export function reply(
  dum: DialogUsageManager,
  req: SipRequest,
  tx: ServerTransactionLike,
  status: number,
  reason?: string,
  toTag?: string,
  headers?: [string, string][],
): SipResponse {
  const res = createResponse(req, status, reason, {
    toTag: toTag ?? req.to.tag ?? dum.newTag(),
    ...(headers ? { headers } : {}),
  });
  dum.decorate(res);
  try {
    tx.respond(res);
  } catch (e) {
    dum.logger.warn({ err: e }, `could not answer ${req.method} with ${status}`);
  }
  return res;
}

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

/** What holds a subscription's dialog and is told when the subscription ends. */
export interface SubscriptionOwner {
  forget(sub: ClientSubscription): void;
  /** Take another subscription in the dialog of one it holds (RFC 6665 §4.5.2), when the owner allows it. */
  join?(dialog: Dialog, sub: ClientSubscription): void;
}

/**
 * @internal How a subscription that a REFER made (RFC 3515) differs: the event comes
 * from here (the REFER has no Event header), and the REFER's final response is
 * reported through these callbacks.
 */
export interface ImplicitSubscriptionInit {
  event: string;
  eventId?: string | undefined;
  /** The 2xx to the request; return false to end the subscription at once (no NOTIFY will come). */
  accepted?: (res: SipResponse) => boolean;
  /** A final failure of the request; the subscription ends (onTerminated follows). */
  rejected?: (res: SipResponse) => void;
}

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
  /** The subscriptions of each dialog (by remote tag): one per Event/id pair (RFC 6665 §4.5.2). */
  private readonly byRemoteTag = new Map<string, ClientSubscription[]>();

  constructor(dum: DialogUsageManager, request: SipRequest, first: ClientSubscription) {
    this.dum = dum;
    this.request = request;
    this.first = first;
    this.set = new DialogSet(
      DialogSetId.of(request, 'from').compact(),
      'uac',
      request,
      dum.makeAppDialogSet(request),
    );
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
    let sub = this.byRemoteTag.get(tag)?.find((x) => x === this.first || x.isForkOf(this.first));
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
    const subs = this.byRemoteTag.get(tag);
    if (subs) {
      // §4.5.2: NOTIFYs of the dialog are told apart by Event package and id.
      let ev: EventHeader | undefined;
      try {
        ev = req.get<EventHeader>('Event');
      } catch {
        ev = undefined;
      }
      const pkg = ev?.package.toLowerCase();
      const match = subs.find((x) => x.event === pkg && x.eventId === ev?.id);
      if (match) match.receiveNotify(req, tx, false);
      else if (subs.length === 1) (subs[0] as ClientSubscription).receiveNotify(req, tx, false);
      else reply(this.dum, req, tx, 481);
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
    this.byRemoteTag.set(dialog.id.remoteTag, [sub]);
    this.dum.addDialog(this.set, dialog);
    if (sub !== this.first && notify) sub.announce(notify);
    return sub;
  }

  /** @internal The live subscriptions in the dialog with this remote tag. */
  subscriptionsIn(remoteTag: string): readonly ClientSubscription[] {
    return (this.byRemoteTag.get(remoteTag) ?? []).filter((s) => !s.isEnded);
  }

  /** @internal Another subscription in the dialog of `sub` (RFC 6665 §4.5.2). */
  join(dialog: Dialog, sub: ClientSubscription): void {
    const subs = this.byRemoteTag.get(dialog.id.remoteTag);
    if (!subs) throw new DumError('SIP_ERR_DUM_STATE', 'the subscription dialog has ended');
    subs.push(sub);
  }

  /** @internal A subscription of the set ended. */
  forget(sub: ClientSubscription): void {
    if (sub.dialog) {
      const tag = sub.dialog.id.remoteTag;
      const subs = this.byRemoteTag.get(tag) ?? [];
      const i = subs.indexOf(sub);
      if (i >= 0) subs.splice(i, 1);
      if (subs.length === 0) {
        this.byRemoteTag.delete(tag);
        this.dum.removeDialog(sub.dialog);
      }
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
  get kind(): 'ClientSubscription' {
    return 'ClientSubscription';
  }
  readonly event: string;
  readonly eventId: string | undefined;
  /** @internal */
  dialog: Dialog | undefined;
  private readonly profile: Profile;
  private readonly handler: ClientSubscriptionHandler;
  private creator: SubscriptionOwner | undefined;
  /** Set for a subscription made by a REFER (RFC 3515). */
  private readonly implicit: ImplicitSubscriptionInit | undefined;
  /** Shares the dialog of another usage (an in-dialog REFER): never re-subscribes out of dialog. */
  private inDialog = false;
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
    implicit?: ImplicitSubscriptionInit,
  ) {
    super(dum);
    this.initial = request;
    this.profile = profile;
    this.handler = handler;
    this.implicit = implicit;
    if (implicit) {
      this.event = implicit.event.toLowerCase();
      this.eventId = implicit.eventId;
    } else {
      const ev = request.get<EventHeader>('Event');
      this.event = ev?.package.toLowerCase() ?? '';
      this.eventId = ev?.id;
    }
    this.requested = request.expires ?? profile.get('defaultSubscriptionExpires');
  }

  get state(): ClientSubscriptionState {
    return this.st;
  }

  /** @internal The profile the subscription was made with. */
  get userProfile(): Profile {
    return this.profile;
  }

  /** @internal Send the SUBSCRIBE. */
  start(request: SipRequest = this.initial): void {
    const creator = new ClientSubscriptionCreator(this.dum, request, this);
    this.creator = creator;
    this.dum.sendClient(request, this.profile, (res) => creator.receiveResponse(res));
  }

  /**
   * @internal Bind to the dialog of another usage (an in-dialog REFER, RFC 3515 §2.4.6):
   * NOTIFYs reach the subscription through `owner`, which is told when it ends.
   */
  attach(dialog: Dialog, owner: SubscriptionOwner): void {
    this.dialog = dialog;
    this.creator = owner;
    this.inDialog = true;
  }

  /** @internal End without telling the handler (the request that made it failed, or needs no subscription). */
  drop(): void {
    if (this.isEnded) return;
    this.stopTimers();
    this.st = 'ended';
    this.creator?.forget(this);
    this.destroy();
  }

  /** @internal A new subscription for another dialog of the same SUBSCRIBE. */
  fork(): ClientSubscription {
    const sub = new ClientSubscription(
      this.dum,
      this.initial,
      this.profile,
      this.handler,
      this.implicit,
    );
    sub.creator = this.creator;
    return sub;
  }

  /** @internal Whether this subscription came from the same SUBSCRIBE as `first` (itself or a fork), not from a SUBSCRIBE in its dialog. */
  isForkOf(first: ClientSubscription): boolean {
    return this.initial === first.initial;
  }

  /**
   * @internal Start a subscription in the dialog of `existing` (RFC 6665 §4.5.2): `request`
   * is a SUBSCRIBE made in that dialog with another Event/id pair.
   */
  startInDialog(existing: ClientSubscription, request: SipRequest): void {
    const dialog = existing.dialog;
    const creator = existing.creator;
    if (!dialog || !creator?.join || existing.isEnded)
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        'the subscription has no subscription dialog to share (ended, or inside an invite session)',
      );
    this.dialog = dialog;
    this.creator = creator;
    creator.join(dialog, this);
    this.dum.sendClient(request, this.profile, (res) => {
      if (this.isEnded) return;
      dialog.receiveTargetRefreshResponse(res);
      if (res.status >= 200 && res.status < 300) this.initialAccepted(res);
      else this.initialFailed(res);
    });
  }

  /** @internal Tell the application about a forked subscription. */
  announce(notify: SipRequest): void {
    this.notify(() => this.handler.onNewSubscription?.(this.handle(), notify));
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
    this.dum.logger.debug?.({ status: res.status }, `${this.initial.method} failed`);
    const rejected = this.implicit?.rejected;
    if (rejected) this.notify(() => rejected(res));
    this.terminate(undefined);
  }

  /** @internal The 2xx to the SUBSCRIBE (or to a retry of it). */
  initialAccepted(res: SipResponse): void {
    if (this.isEnded) return;
    const accepted = this.implicit?.accepted;
    if (accepted) {
      let keep = true;
      this.notify(() => {
        keep = accepted(res);
      });
      if (!keep) {
        this.terminate(undefined);
        return;
      }
      if (this.isEnded) return;
    }
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
    // RFC 3515 §2.4.6: a notifier may leave the id out for the only REFER of a dialog.
    const idOk = ev?.id === this.eventId || (this.implicit !== undefined && ev?.id === undefined);
    if (!ev || ev.package.toLowerCase() !== this.event || !idOk) {
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
    this.notify(() => {
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
    if (h && !this.inDialog && (reason === undefined || RETRYABLE.has(reason))) {
      let wait = -1;
      this.notify(() => {
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
      // A subscription started in another's dialog starts over outside any dialog.
      const to = req.to.clone();
      to.params.delete('tag');
      req.setHeader('To', to);
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
    // A REFER has no Event: the refresh names the implicit subscription (RFC 3515 §2.4.6).
    if (this.implicit)
      req.setHeader('Event', this.eventId ? `${this.event};id=${this.eventId}` : this.event);
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
    this.notify(() => this.handler.onTerminated?.(this.handle(), notify));
    this.creator?.forget(this);
    this.destroy();
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

import type { EventHeader, SipRequest } from '@sipworks/message';
import type { ServerTransactionLike, TimerHandle } from '@sipworks/stack';
import { Dialog } from '../dialog.ts';
import { DialogSet } from '../dialog-set.ts';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type { EventState } from '../event-state.ts';
import type { ServerSubscriptionHandler } from '../handlers.ts';
import { DialogSetId } from '../ids.ts';
import { BaseUsage } from './base.ts';
import { reply } from './client-subscription.ts';
import { canonicalAor } from './server-registration.ts';

export type ServerSubscriptionState = 'new' | 'pending' | 'active' | 'terminated';

/** What holds a notifier's dialog when it shares one with another usage, told when the subscription ends. */
export interface ServerSubscriptionOwner {
  forget(sub: ServerSubscription): void;
}

/**
 * @internal A subscription made by another request than SUBSCRIBE (a REFER, RFC 3515):
 * its event, and, within an existing dialog, that dialog and its owner.
 */
export interface ImplicitServerSubscriptionInit {
  event: string;
  eventId?: string | undefined;
  shared?: { dialog: Dialog; set: DialogSet; owner: ServerSubscriptionOwner };
}

/** Where a subscription's dialog lives: a subscription dialog, or one shared with another usage. */
interface DialogHolder {
  readonly dialog: Dialog;
  readonly subscriptions: readonly ServerSubscription[];
  add(sub: ServerSubscription): void;
  remove(sub: ServerSubscription): void;
}

/** A dialog another usage owns (an invite session's, for an in-dialog REFER): its owner is told when a subscription ends. */
class SharedDialog implements DialogHolder {
  readonly dialog: Dialog;
  private readonly owner: ServerSubscriptionOwner;
  private readonly subs: ServerSubscription[] = [];
  constructor(dialog: Dialog, owner: ServerSubscriptionOwner) {
    this.dialog = dialog;
    this.owner = owner;
  }
  get subscriptions(): readonly ServerSubscription[] {
    return this.subs;
  }
  add(sub: ServerSubscription): void {
    if (!this.subs.includes(sub)) this.subs.push(sub);
  }
  remove(sub: ServerSubscription): void {
    const i = this.subs.indexOf(sub);
    if (i >= 0) this.subs.splice(i, 1);
    this.owner.forget(sub);
  }
}

/**
 * @internal The notifier's side of one subscription dialog: every `ServerSubscription`
 * sharing it, told apart by their Event package and id (RFC 6665 §4.5.2). A SUBSCRIBE
 * in the dialog goes to the subscription of its Event/id pair (a refresh or an
 * unsubscribe); one with a new pair for an event the DUM serves makes another
 * subscription in the same dialog; anything else is answered 489 (or 481 for other
 * methods). The dialog set ends with its last subscription.
 */
export class ServerSubscriptionDialog implements DialogHolder {
  readonly dialog: Dialog;
  readonly set: DialogSet;
  private readonly dum: DialogUsageManager;
  private readonly subs: ServerSubscription[] = [];

  constructor(dum: DialogUsageManager, dialog: Dialog, set: DialogSet) {
    this.dum = dum;
    this.dialog = dialog;
    this.set = set;
    set.subscriptionUsage = this;
  }

  /** The subscriptions of the dialog, oldest first. */
  get subscriptions(): readonly ServerSubscription[] {
    return this.subs;
  }

  /** @internal The live subscriptions in the dialog (it has one remote tag). */
  subscriptionsIn(remoteTag: string): readonly ServerSubscription[] {
    return remoteTag === this.dialog.id.remoteTag ? this.subs.filter((s) => !s.isEnded) : [];
  }

  add(sub: ServerSubscription): void {
    if (this.subs.includes(sub)) return;
    if (this.subs.length === 0) {
      this.dum.addDialogSet(this.set);
      this.dum.addDialog(this.set, this.dialog);
    }
    this.subs.push(sub);
  }

  remove(sub: ServerSubscription): void {
    const i = this.subs.indexOf(sub);
    if (i >= 0) this.subs.splice(i, 1);
    if (this.subs.length > 0) return;
    this.set.subscriptionUsage = undefined;
    this.dum.removeDialogSet(this.set);
  }

  receiveRequest(req: SipRequest, tx: ServerTransactionLike, dialog: Dialog | undefined): void {
    if (req.method !== 'SUBSCRIBE' || dialog !== this.dialog || this.subs.length === 0) {
      reply(this.dum, req, tx, 481);
      return;
    }
    const refused = this.dialog.receiveRequest(req, true);
    if (refused !== undefined) {
      reply(this.dum, req, tx, refused);
      return;
    }
    let ev: EventHeader | undefined;
    try {
      ev = req.get<EventHeader>('Event');
    } catch {
      ev = undefined;
    }
    const pkg = ev?.package.toLowerCase();
    const sub = this.subs.find((x) => !x.isEnded && x.event === pkg && x.eventId === ev?.id);
    if (sub) {
      sub.receiveSubscribe(req, tx);
      return;
    }
    const handler = pkg === undefined ? undefined : this.dum.serverSubscriptionHandler(pkg);
    const expires = req.expires;
    if (!handler || expires === 0) {
      // An unsubscribe of a subscription that is not there: 481; an event we do not serve: 489.
      if (handler) reply(this.dum, req, tx, 481, undefined, this.dialog.id.localTag);
      else
        reply(this.dum, req, tx, 489, undefined, this.dialog.id.localTag, [
          ['Allow-Events', this.dum.masterProfile.get('supportedEvents').join(', ')],
        ]);
      return;
    }
    // §4.5.2: a new Event/id pair in the dialog: another subscription sharing it.
    new ServerSubscription(this.dum, req, tx, handler, this).start();
  }
}

/**
 * The notifier's side of a subscription (RFC 6665 §4.2), one per SUBSCRIBE that
 * created a dialog. `onNewSubscription` gets the handle: `accept(202|200)` or
 * `reject(status)` the SUBSCRIBE, then send NOTIFYs with `send(update(body, type))` or
 * `send(neutralNotify())`; `setSubscriptionState` chooses pending or active for the
 * NOTIFYs that follow; `end(reason, retryAfter)` sends the terminated NOTIFY.
 * A refresh (a SUBSCRIBE in the dialog) is answered 200, given to `onRefresh`, and
 * followed by a NOTIFY with the last body; Expires: 0 is answered by a final NOTIFY
 * and `onTerminated`; when the subscription expires a terminated NOTIFY with
 * reason=timeout goes out and `onExpired` is called.
 */
export class ServerSubscription extends BaseUsage {
  get kind(): 'ServerSubscription' {
    return 'ServerSubscription';
  }
  readonly event: string;
  readonly eventId: string | undefined;
  /** The resource subscribed to: the canonical form of the SUBSCRIBE's Request-URI (`canonicalAor`). */
  readonly resource: string;
  /** The SUBSCRIBE that created the subscription. */
  readonly subscribe: SipRequest;
  readonly dialog: Dialog;
  private readonly owner: DialogHolder;
  protected readonly handler: ServerSubscriptionHandler;
  protected tx: ServerTransactionLike | undefined;
  protected st: ServerSubscriptionState = 'new';
  /** State put in the next NOTIFYs. */
  protected notifyState: 'pending' | 'active' = 'active';
  private expiresAt = 0;
  private timer: TimerHandle | undefined;
  protected lastBody: { body: Uint8Array | string; contentType: string } | undefined;
  /** The expiry granted (s). */
  expires: number;

  constructor(
    dum: DialogUsageManager,
    subscribe: SipRequest,
    tx: ServerTransactionLike,
    handler: ServerSubscriptionHandler,
    init?: ServerSubscriptionDialog | ImplicitServerSubscriptionInit,
  ) {
    super(dum);
    this.subscribe = subscribe;
    this.tx = tx;
    this.handler = handler;
    const shared = init instanceof ServerSubscriptionDialog ? init : undefined;
    const implicit = init instanceof ServerSubscriptionDialog ? undefined : init;
    if (implicit) {
      this.event = implicit.event.toLowerCase();
      this.eventId = implicit.eventId;
    } else {
      const ev = subscribe.get<EventHeader>('Event');
      this.event = ev?.package.toLowerCase() ?? '';
      this.eventId = ev?.id;
    }
    this.expires = subscribe.expires ?? dum.masterProfile.get('defaultSubscriptionExpires');
    // In a shared dialog the Request-URI is our Contact: the resource is the dialog's.
    let resource = shared?.subscriptions[0]?.resource;
    if (resource === undefined)
      try {
        resource = canonicalAor(subscribe.uri);
      } catch {
        resource = '';
      }
    this.resource = resource;
    if (shared) this.owner = shared;
    else if (implicit?.shared)
      this.owner = new SharedDialog(implicit.shared.dialog, implicit.shared.owner);
    else {
      const contact = dum.contactFor(dum.masterProfile, subscribe.uri);
      const dialog = Dialog.asUas(subscribe, dum.newTag(), contact);
      const set = new DialogSet(
        new DialogSetId(subscribe.callId, dialog.id.localTag).compact(),
        'uas',
        subscribe,
        dum.makeAppDialogSet(subscribe),
      );
      this.owner = new ServerSubscriptionDialog(dum, dialog, set);
    }
    this.dialog = this.owner.dialog;
  }

  /** Every subscription sharing this one's dialog (RFC 6665 §4.5.2), this one included. */
  get dialogSubscriptions(): readonly ServerSubscription[] {
    return this.owner.subscriptions;
  }

  get state(): ServerSubscriptionState {
    return this.st;
  }

  /** @internal Put the subscription in its dialog (and the dialog in the DUM when it is the first). */
  register(): void {
    this.owner.add(this);
    this.dum.trackServerSubscription(this, true);
  }

  /** @internal */
  start(): void {
    this.register();
    const cb = this.handler.onNewSubscription;
    if (!cb) {
      this.accept(202);
      this.send(this.neutralNotify());
      return;
    }
    this.notify(() => cb.call(this.handler, this.handle(), this.subscribe));
  }

  /** Accept the SUBSCRIBE (202 by default; 200 when the subscription is authorized). Send a NOTIFY next (RFC 6665 §4.2.1.2). */
  accept(status: 200 | 202 = 202): void {
    this.assertLive();
    const tx = this.tx;
    if (!tx || this.st !== 'new')
      throw new DumError('SIP_ERR_DUM_STATE', 'the SUBSCRIBE was already answered');
    this.tx = undefined;
    this.notifyState = status === 202 ? 'pending' : 'active';
    this.st = this.notifyState;
    this.startExpiry(this.expires);
    this.reply200(this.subscribe, tx, status);
  }

  /** Refuse the SUBSCRIBE (300-699); the subscription ends. */
  reject(status = 403): void {
    this.assertLive();
    const tx = this.tx;
    if (!tx || this.st !== 'new')
      throw new DumError('SIP_ERR_DUM_STATE', 'the SUBSCRIBE was already answered');
    if (status < 300 || status > 699)
      throw new DumError('SIP_ERR_DUM_STATE', `reject takes 300-699, not ${status}`);
    this.tx = undefined;
    reply(this.dum, this.subscribe, tx, status, undefined, this.dialog.id.localTag);
    this.finish();
  }

  /** The subscription state the next NOTIFYs carry. */
  setSubscriptionState(state: 'pending' | 'active'): void {
    this.assertLive();
    this.notifyState = state;
    if (this.st !== 'new') this.st = state;
  }

  /** A NOTIFY with this body (the new state of the resource); send it with `send`. */
  update(body: Uint8Array | string, contentType: string): SipRequest {
    this.assertLive();
    this.lastBody = { body, contentType };
    return this.makeNotify(this.notifyState, body, contentType);
  }

  /**
   * A NOTIFY with the state the DUM's state agent holds for this resource and event: the
   * publications (RFC 3903) composed by the event's compositor (`dum.setPublicationComposer`;
   * by default the latest publication, or a closed PIDF for `presence`), or no body when
   * there is no state. Resolves once the publication store has answered; send it with
   * `send`. While the subscription is active, the DUM sends one by itself whenever a
   * publication of the resource changes.
   */
  async publishedState(): Promise<SipRequest> {
    this.assertLive();
    const state = await this.dum.composeState(this.resource, this.event);
    this.assertLive();
    return state ? this.update(state.body, state.contentType) : this.neutralNotify();
  }

  /** @internal A publication of the resource changed: an active subscription is told (RFC 3903 §2). */
  statePublished(state: EventState | undefined): void {
    if (this.isEnded || this.st !== 'active') return;
    this.send(state ? this.update(state.body, state.contentType) : this.neutralNotify());
  }

  /** A NOTIFY without a body (RFC 6665 §4.2.2: e.g. while pending); send it with `send`. */
  neutralNotify(): SipRequest {
    this.assertLive();
    return this.makeNotify(this.notifyState);
  }

  /** Send a NOTIFY made by `update` or `neutralNotify`. A 481 or a timeout ends the subscription. */
  send(notify: SipRequest): void {
    this.assertLive();
    this.transmit(notify, false);
  }

  /** End the subscription: a terminated NOTIFY with `reason` (and `retry-after`), then `onTerminated`. */
  end(reason = 'noresource', retryAfter?: number): void {
    if (this.isEnded || this.st === 'terminated') return;
    if (this.st === 'new' && this.tx) {
      this.reject(reason === 'rejected' ? 403 : 480);
      return;
    }
    this.terminateWith(reason, retryAfter);
  }

  /**
   * @internal A request in a dialog this subscription shares with another usage (an
   * in-dialog REFER's), already matched to it by Event and id: a SUBSCRIBE refreshing or
   * ending it; anything else gets 481.
   */
  receiveRequest(req: SipRequest, tx: ServerTransactionLike, dialog: Dialog | undefined): void {
    if (req.method !== 'SUBSCRIBE' || dialog !== this.dialog || this.isEnded) {
      reply(this.dum, req, tx, 481);
      return;
    }
    const refused = this.dialog.receiveRequest(req, true);
    if (refused !== undefined) {
      reply(this.dum, req, tx, refused);
      return;
    }
    this.receiveSubscribe(req, tx);
  }

  /** @internal A SUBSCRIBE of this Event/id pair in the dialog (a refresh or an unsubscribe), already checked by the dialog. */
  receiveSubscribe(req: SipRequest, tx: ServerTransactionLike): void {
    if (this.st === 'new') {
      // Still deciding on the SUBSCRIBE that made it: try again later.
      reply(this.dum, req, tx, 500, undefined, this.dialog.id.localTag, [['Retry-After', '1']]);
      return;
    }
    const expires = req.expires ?? this.dum.masterProfile.get('defaultSubscriptionExpires');
    if (expires === 0) {
      // §4.2.1.4: unsubscribe: 200, then the final NOTIFY.
      this.expires = 0;
      this.reply200(req, tx, 200);
      this.terminateWith(undefined, undefined);
      return;
    }
    this.expires = expires;
    this.startExpiry(expires);
    this.reply200(req, tx, 200);
    this.notify(() => this.handler.onRefresh?.(this.handle(), req));
    if (!this.isEnded) {
      const b = this.lastBody;
      this.transmit(
        b
          ? this.makeNotify(this.notifyState, b.body, b.contentType)
          : this.makeNotify(this.notifyState),
        false,
      );
    }
  }

  private reply200(req: SipRequest, tx: ServerTransactionLike, status: number): void {
    reply(this.dum, req, tx, status, undefined, this.dialog.id.localTag, [
      ['Expires', String(this.expires)],
      ['Contact', this.dialog.localContact.toString()],
    ]);
  }

  protected makeNotify(
    state: string,
    body?: Uint8Array | string,
    contentType?: string,
    params?: string,
  ): SipRequest {
    const req = this.dialog.makeRequest('NOTIFY', {
      ...(body !== undefined ? { body, contentType: contentType ?? 'text/plain' } : {}),
    });
    req.setHeader('Event', this.eventId ? `${this.event};id=${this.eventId}` : this.event);
    const remaining = Math.max(0, Math.ceil((this.expiresAt - this.dum.stack.clock.now()) / 1000));
    req.setHeader(
      'Subscription-State',
      state === 'terminated' ? `terminated${params ?? ''}` : `${state};expires=${remaining}`,
    );
    return req;
  }

  protected terminateWith(
    reason: string | undefined,
    retryAfter: number | undefined,
    expired = false,
  ): void {
    this.stopTimer();
    let params = '';
    if (reason) params += `;reason=${reason}`;
    if (retryAfter !== undefined) params += `;retry-after=${retryAfter}`;
    const b = this.lastBody;
    const notify = b
      ? this.makeNotify('terminated', b.body, b.contentType, params)
      : this.makeNotify('terminated', undefined, undefined, params);
    this.st = 'terminated';
    this.transmit(notify, true);
    this.notify(() =>
      expired
        ? this.handler.onExpired?.(this.handle())
        : this.handler.onTerminated?.(this.handle()),
    );
  }

  protected transmit(notify: SipRequest, last: boolean): void {
    this.dum.sendClient(notify, this.dum.masterProfile, (res) => {
      if (last) {
        this.finish();
        return;
      }
      if (this.isEnded) return;
      if (res.status === 481 || res.status === 408) {
        // §4.2.2: the subscriber is gone.
        this.stopTimer();
        this.st = 'terminated';
        this.notify(() => this.handler.onTerminated?.(this.handle()));
        this.finish();
      }
    });
  }

  protected startExpiry(expires: number): void {
    this.stopTimer();
    const clock = this.dum.stack.clock;
    this.expiresAt = clock.now() + expires * 1000;
    this.timer = clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.isEnded && this.st !== 'terminated') this.terminateWith('timeout', undefined, true);
    }, expires * 1000);
  }

  protected stopTimer(): void {
    if (this.timer !== undefined) this.dum.stack.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  protected finish(): void {
    if (this.isEnded) return;
    this.stopTimer();
    this.st = 'terminated';
    this.dum.trackServerSubscription(this, false);
    this.destroy();
    this.owner.remove(this);
  }
}

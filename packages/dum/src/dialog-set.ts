import { SipRequest } from '@sipworks/message';
import type { ServerTransactionLike } from '@sipworks/stack';
import type { Dialog } from './dialog.ts';
import type { AppDialogSet } from './dum.ts';
import type { DialogSetId } from './ids.ts';
import type { ClientSubscription } from './usages/client-subscription.ts';
import type { InviteSession } from './usages/invite-session.ts';
import type { ServerSubscription } from './usages/server-subscription.ts';

/** A subscription usage of either side. */
export type SubscriptionUsage = ClientSubscription | ServerSubscription;

/**
 * Every dialog born of one request (Call-ID and local tag): one per remote tag when the
 * request forked. On the UAC side it holds the request that created it (the last one
 * sent, after auth retries and redirects); on the UAS side, the request received.
 * The DUM keeps dialog sets by `DialogSetId` key and their dialogs by `DialogId` key.
 */
export class DialogSet {
  readonly id: DialogSetId;
  readonly side: 'uac' | 'uas';
  /** Undefined until read when the DUM has no factory (most calls never read it). */
  private app: AppDialogSet | undefined;
  /** The request that created the dialog set, or what holds it (an incoming invite session). */
  private creatorRef: SipRequest | { readonly request: SipRequest };
  /** The invite session of the dialog set, while it lives. */
  inviteSession: InviteSession | undefined;
  /** What takes SUBSCRIBE and NOTIFY in the set's dialogs, while subscriptions live. */
  subscriptionUsage:
    | {
        receiveRequest(
          req: SipRequest,
          tx: ServerTransactionLike,
          dialog: Dialog | undefined,
        ): void;
        /** The live subscriptions (either side) in the dialog with this remote tag. */
        subscriptionsIn(remoteTag: string): readonly SubscriptionUsage[];
      }
    | undefined;
  /**
   * The set's dialog while it has at most one, which is always for a UAS and almost
   * always for a UAC; a Map by remote tag only once a fork brings a second (§13.2.2.4).
   * A Map per set would cost a hash table per established call.
   */
  private single: Dialog | undefined;
  private forked: Map<string, Dialog> | undefined;

  constructor(
    id: DialogSetId,
    side: 'uac' | 'uas',
    creator: SipRequest,
    app: AppDialogSet | undefined,
  ) {
    this.id = id;
    this.side = side;
    this.creatorRef = creator;
    this.app = app;
    this.inviteSession = undefined;
    this.subscriptionUsage = undefined;
  }

  /** The application's object for the set (reSIProcate's AppDialogSet): the factory's, or an empty one. */
  get appDialogSet(): AppDialogSet {
    this.app ??= {};
    return this.app;
  }

  /** @internal The application's object, without making one. */
  get appDialogSetIfAny(): AppDialogSet | undefined {
    return this.app;
  }

  /** The request that created the dialog set. */
  get creator(): SipRequest {
    const c = this.creatorRef;
    return c instanceof SipRequest ? c : c.request;
  }
  set creator(request: SipRequest) {
    this.creatorRef = request;
  }

  /**
   * @internal The request is the one `holder` keeps (a callee's session, which keeps only
   * the INVITE's bytes once the call is up): read through it, not held twice.
   */
  creatorFrom(holder: { readonly request: SipRequest }): void {
    this.creatorRef = holder;
  }

  /** The dialog with this remote tag. */
  dialog(remoteTag: string): Dialog | undefined {
    if (this.forked) return this.forked.get(remoteTag);
    return this.single?.id.remoteTag === remoteTag ? this.single : undefined;
  }

  get dialogs(): Dialog[] {
    if (this.forked) return [...this.forked.values()];
    return this.single ? [this.single] : [];
  }

  get size(): number {
    if (this.forked) return this.forked.size;
    return this.single ? 1 : 0;
  }

  /** @internal Use `dum.addDialog`, which also indexes the dialog by its id. */
  put(dialog: Dialog): void {
    const tag = dialog.id.remoteTag;
    if (this.forked) this.forked.set(tag, dialog);
    else if (this.single === undefined || this.single.id.remoteTag === tag) this.single = dialog;
    else {
      this.forked = new Map([
        [this.single.id.remoteTag, this.single],
        [tag, dialog],
      ]);
      this.single = undefined;
    }
  }

  /** @internal */
  delete(dialog: Dialog): void {
    const tag = dialog.id.remoteTag;
    if (this.forked) {
      if (this.forked.get(tag) === dialog) this.forked.delete(tag);
    } else if (this.single === dialog) this.single = undefined;
  }
}

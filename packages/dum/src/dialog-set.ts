import type { SipRequest } from '@sipworks/message';
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
  readonly appDialogSet: AppDialogSet;
  /** The request that created the dialog set. */
  creator: SipRequest;
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
  private readonly byRemoteTag = new Map<string, Dialog>();

  constructor(id: DialogSetId, side: 'uac' | 'uas', creator: SipRequest, app: AppDialogSet) {
    this.id = id;
    this.side = side;
    this.creator = creator;
    this.appDialogSet = app;
    this.inviteSession = undefined;
    this.subscriptionUsage = undefined;
  }

  /** The dialog with this remote tag. */
  dialog(remoteTag: string): Dialog | undefined {
    return this.byRemoteTag.get(remoteTag);
  }

  get dialogs(): Dialog[] {
    return [...this.byRemoteTag.values()];
  }

  get size(): number {
    return this.byRemoteTag.size;
  }

  /** @internal Use `dum.addDialog`, which also indexes the dialog by its id. */
  put(dialog: Dialog): void {
    this.byRemoteTag.set(dialog.id.remoteTag, dialog);
  }

  /** @internal */
  delete(dialog: Dialog): void {
    if (this.byRemoteTag.get(dialog.id.remoteTag) === dialog)
      this.byRemoteTag.delete(dialog.id.remoteTag);
  }
}

import type { Contact, SipRequest, SipResponse } from '@sipworks/message';
import type { Handle } from './handles.ts';
import type { SipfragStatus } from './sipfrag.ts';
import type { ClientInviteSession } from './usages/client-invite-session.ts';
import type { ClientPublication } from './usages/client-publication.ts';
import type { ClientRegistration } from './usages/client-registration.ts';
import type { ClientSubscription } from './usages/client-subscription.ts';
import type { InviteSession } from './usages/invite-session.ts';
import type { ClientOutOfDialogReq, ServerOutOfDialogReq } from './usages/out-of-dialog.ts';
import type { ClientPagerMessage, ServerPagerMessage } from './usages/pager.ts';
import type { ServerReferSubscription } from './usages/refer.ts';
import type { ServerInviteSession } from './usages/server-invite-session.ts';
import type { ServerPublication } from './usages/server-publication.ts';
import type { ServerRegistration } from './usages/server-registration.ts';
import type { ServerSubscription } from './usages/server-subscription.ts';

/**
 * Why something ended. An invite session that a REFER in its dialog transferred (the
 * referred call got a 2xx, RFC 3515 §2.4.5, on either side) and that then ends by BYE
 * reports `referred` rather than `local-bye` / `remote-bye`.
 */
export type EndReason =
  | 'local-bye'
  | 'remote-bye'
  | 'cancelled'
  | 'rejected'
  | 'timeout'
  | 'replaced'
  | 'referred'
  | 'error'
  | 'stale';

/** Events of a dialog set that no usage owns (RFC 3261 §13.2.2.1). */
export interface DialogSetHandler {
  /** A 100 Trying for the dialog-creating request. */
  onTrying?(request: SipRequest, response: SipResponse): void;
  /** A provisional response without a To tag: it creates no dialog. */
  onNonDialogCreatingProvisional?(request: SipRequest, response: SipResponse): void;
}

/** Out-of-dialog requests (OPTIONS and any method the application registers). */
export interface OutOfDialogHandler {
  /** A 2xx to our request. */
  onSuccess?(handle: Handle<ClientOutOfDialogReq>, response: SipResponse): void;
  /** A final non-2xx (after auth retries and redirects), or a timeout as a locally made 408/503. */
  onFailure?(handle: Handle<ClientOutOfDialogReq>, response: SipResponse): void;
  /** A request for us: answer it through `handle.get().accept()` / `.reject()`. */
  onReceivedRequest?(handle: Handle<ServerOutOfDialogReq>, request: SipRequest): void;
}

/** Pager MESSAGE (RFC 3428), sending side. */
export interface ClientPagerMessageHandler {
  onSuccess?(handle: Handle<ClientPagerMessage>, response: SipResponse): void;
  /** The page failed; `body` is the content that was not delivered, so the application can keep it. */
  onFailure?(
    handle: Handle<ClientPagerMessage>,
    response: SipResponse,
    body: Uint8Array,
    contentType: string,
  ): void;
}

/** Pager MESSAGE (RFC 3428), receiving side. */
export interface ServerPagerMessageHandler {
  /** A MESSAGE arrived: `accept()` or `reject(code)` it through the handle. */
  onMessageArrived(handle: Handle<ServerPagerMessage>, message: SipRequest): void;
}

/** Registration, client side (RFC 3261 §10.2). */
export interface ClientRegistrationHandler {
  /** A 2xx: the bindings are in `handle.get().allContacts` / `myContacts`. */
  onSuccess?(handle: Handle<ClientRegistration>, response: SipResponse): void;
  /** The 2xx to `removeMyBindings()` / `removeAll()`; the usage ends. */
  onRemoved?(handle: Handle<ClientRegistration>, response: SipResponse): void;
  /** A final failure (after auth retries and 423 retries), or a timeout as a locally made 408/503. */
  onFailure?(handle: Handle<ClientRegistration>, response: SipResponse): void;
  /**
   * The outbound flow of the registration failed (its connection closed, or a keep-alive
   * got no pong; RFC 5626 §4.4.1): a new REGISTER is on its way to form a new flow.
   */
  onFlowTerminated?(handle: Handle<ClientRegistration>): void;
  /**
   * After a failure: seconds to wait before registering again, or -1 not to retry (the
   * usage ends). `retrySeconds` is the response's Retry-After, or -1 when it has none.
   * Without this callback, Retry-After is honoured and there is no retry without it.
   */
  onRequestRetry?(
    handle: Handle<ClientRegistration>,
    retrySeconds: number,
    response: SipResponse,
  ): number;
}

/**
 * Registrar side (RFC 3261 §10.3): one callback per operation; answer through the
 * handle (`accept()` or `reject(status)`), now or later. A missing callback accepts.
 */
export interface ServerRegistrationHandler {
  /** At least one new binding. */
  onAdd?(handle: Handle<ServerRegistration>, request: SipRequest): void;
  /** Existing bindings refreshed, none added. */
  onRefresh?(handle: Handle<ServerRegistration>, request: SipRequest): void;
  /** Every Contact has expires 0. */
  onRemove?(handle: Handle<ServerRegistration>, request: SipRequest): void;
  /** `Contact: *` with Expires: 0. */
  onRemoveAll?(handle: Handle<ServerRegistration>, request: SipRequest): void;
  /** No Contact: the current bindings are asked for. */
  onQuery?(handle: Handle<ServerRegistration>, request: SipRequest): void;
}

/**
 * Subscriptions (RFC 6665), subscriber side, per event package. A NOTIFY is answered
 * with `handle.get().acceptUpdate()` / `rejectUpdate(status)` inside the callback;
 * when the callback returns without answering, the DUM answers 200.
 */
export interface ClientSubscriptionHandler {
  /** A NOTIFY with Subscription-State: pending. */
  onUpdatePending?(handle: Handle<ClientSubscription>, notify: SipRequest): void;
  /** A NOTIFY with Subscription-State: active. */
  onUpdateActive?(handle: Handle<ClientSubscription>, notify: SipRequest): void;
  /** A NOTIFY with another (extension) state. */
  onUpdateExtension?(handle: Handle<ClientSubscription>, notify: SipRequest): void;
  /**
   * The subscription ended: a terminated NOTIFY (`notify`), or without one (the
   * SUBSCRIBE failed, no NOTIFY came within 64*T1, the refresh got 481 or timed out).
   */
  onTerminated?(handle: Handle<ClientSubscription>, notify: SipRequest | undefined): void;
  /** A NOTIFY from another fork of the SUBSCRIBE made a second subscription. */
  onNewSubscription?(handle: Handle<ClientSubscription>, notify: SipRequest): void;
  /**
   * A terminated NOTIFY whose reason allows a new subscription (none, deactivated,
   * probation, timeout, giveup; RFC 6665 §4.1.3): seconds to wait before subscribing
   * again with a new SUBSCRIBE (same handle), or -1 to end. `retrySeconds` is the
   * retry-after parameter, or -1.
   */
  onRequestRetry?(
    handle: Handle<ClientSubscription>,
    retrySeconds: number,
    notify: SipRequest,
  ): number;
  /** For `refer` (a REFER sent by `dum.makeRefer`, RFC 3515): the 2xx to the REFER. */
  onReferAccepted?(handle: Handle<ClientSubscription>, response: SipResponse): void;
  /** For `refer`: the REFER failed; `onTerminated` follows. */
  onReferRejected?(handle: Handle<ClientSubscription>, response: SipResponse): void;
  /**
   * For `refer` (in or out of dialog): a NOTIFY's sipfrag status line (RFC 3515
   * §2.4.5), `undefined` when the body has none that can be read.
   */
  onReferProgress?(
    handle: Handle<ClientSubscription>,
    status: SipfragStatus | undefined,
    notify: SipRequest,
  ): void;
}

/**
 * Subscriptions (RFC 6665), notifier side, per event package. Without
 * `onNewSubscription` every SUBSCRIBE is accepted (202) and a neutral NOTIFY sent.
 */
export interface ServerSubscriptionHandler {
  /** A SUBSCRIBE made a subscription: `accept()` or `reject()` it through the handle, then NOTIFY. */
  onNewSubscription?(handle: Handle<ServerSubscription>, subscribe: SipRequest): void;
  /** A refresh was answered 200; a NOTIFY with the last body follows. */
  onRefresh?(handle: Handle<ServerSubscription>, subscribe: SipRequest): void;
  /** The subscription ended (unsubscribe, `end()`, the subscriber gone). */
  onTerminated?(handle: Handle<ServerSubscription>): void;
  /** The subscription expired: a terminated NOTIFY with reason=timeout was sent. */
  onExpired?(handle: Handle<ServerSubscription>): void;
  /**
   * For `refer`: a REFER outside any dialog (RFC 3515 §2.4.2) made a subscription:
   * `acceptRefer()` or `rejectRefer(status)` it through the handle, then report with
   * `notifyProgress` (or `dum.makeInviteSessionFromRefer`). Without it such REFERs are
   * declined (603).
   */
  onNewSubscriptionFromRefer?(handle: Handle<ServerReferSubscription>, refer: SipRequest): void;
}

/** Publications (RFC 3903), client side, per event package. */
export interface ClientPublicationHandler {
  /** A 2xx: the entity tag is `handle.get().etag`. */
  onSuccess?(handle: Handle<ClientPublication>, response: SipResponse): void;
  /** The 2xx to `end()`: the publication is removed and the usage ends. */
  onRemove?(handle: Handle<ClientPublication>, response: SipResponse): void;
  /** A final failure (after 412 and 423 recovery): the usage ends. */
  onFailure?(handle: Handle<ClientPublication>, response: SipResponse): void;
}

/**
 * Publications (RFC 3903), state agent side, per event package. Answer through the
 * handle (`accept()` / `reject(status)`) inside the callback; when it returns without
 * answering (or is missing), the DUM accepts.
 */
export interface ServerPublicationHandler {
  onInitial?(handle: Handle<ServerPublication>, etag: string, publish: SipRequest): void;
  onRefresh?(handle: Handle<ServerPublication>, etag: string, publish: SipRequest): void;
  onUpdate?(handle: Handle<ServerPublication>, etag: string, publish: SipRequest): void;
  onRemoved?(handle: Handle<ServerPublication>, etag: string, publish: SipRequest): void;
  onExpired?(handle: Handle<ServerPublication>, etag: string): void;
}

/**
 * Invite sessions (RFC 3261 §13-15). Every callback gets the session's handle: a
 * `ClientInviteSession` on the caller's side (the handle `dum.send` returned), a
 * `ServerInviteSession` on the callee's.
 */
export interface InviteSessionHandler {
  /** An INVITE outside any dialog made a `ServerInviteSession`: answer it through the handle. */
  onNewSession?(handle: Handle<ServerInviteSession>, invite: SipRequest): void;
  /**
   * The caller's side of `onNewSession`: the first response to our INVITE that made a
   * dialog (a provisional with a To tag, or the 2xx when none came before), once per
   * session, before `onProvisional` / `onAnswer` / `onConnected` for that response.
   */
  onNewClientSession?(handle: Handle<ClientInviteSession>, response: SipResponse): void;
  /** A provisional response with a To tag: an early dialog. */
  onProvisional?(handle: Handle<ClientInviteSession>, response: SipResponse): void;
  /** A provisional response with a session description (183 with SDP). */
  onEarlyMedia?(handle: Handle<ClientInviteSession>, response: SipResponse): void;
  /** The session is up: the 2xx arrived and was ACKed (UAC), or the ACK arrived (UAS). */
  onConnected?(handle: Handle<InviteSession>, message: SipRequest | SipResponse): void;
  /**
   * An offer: in the INVITE (answer it in `accept`, or in a reliable 1xx), in the 2xx
   * or a reliable 1xx to our INVITE or re-INVITE without one (answer with
   * `provideAnswer` now: it goes in the ACK or the PRACK), in a PRACK (`provideAnswer`
   * now: it goes in the 200), or in a re-INVITE or UPDATE (`provideAnswer`, or
   * `reject`, now or later).
   */
  onOffer?(
    handle: Handle<InviteSession>,
    message: SipRequest | SipResponse,
    body: Uint8Array,
  ): void;
  /**
   * The answer to our offer: in the 2xx (or the first 1xx with a body), in a reliable
   * 1xx, in the ACK or the PRACK, or in the 2xx to our re-INVITE or UPDATE.
   */
  onAnswer?(
    handle: Handle<InviteSession>,
    message: SipRequest | SipResponse,
    body: Uint8Array,
  ): void;
  /**
   * An INVITE without an offer (`accept` with one, or send it in a reliable 1xx), or a
   * re-INVITE without one (`provideOffer`: it goes in the 200, the answer in the ACK).
   */
  onOfferRequired?(handle: Handle<InviteSession>, message: SipRequest): void;
  /**
   * Our offer in a re-INVITE or UPDATE was refused (the response), or its answer
   * missing (the response, or undefined for an ACK without the answer to the offer in
   * our 2xx). The session goes on with the last agreed descriptions.
   */
  onOfferRejected?(handle: Handle<InviteSession>, response: SipResponse | undefined): void;
  /** The INVITE failed (300-699, after auth retries and redirects); `onTerminated` follows. */
  onFailure?(handle: Handle<ClientInviteSession>, response: SipResponse): void;
  /** The INVITE ended in a 3xx that was not followed; `onFailure` follows. */
  onRedirected?(handle: Handle<ClientInviteSession>, response: SipResponse): void;
  /** A 2xx from another fork was ACKed and its dialog ended with a BYE (§13.2.2.4). */
  onForkDestroyed?(handle: Handle<ClientInviteSession>): void;
  /** An INFO in the dialog: answer with `acceptNit` / `rejectNit`. */
  onInfo?(handle: Handle<InviteSession>, info: SipRequest): void;
  /** A MESSAGE in the dialog: answer with `acceptNit` / `rejectNit`. */
  onMessage?(handle: Handle<InviteSession>, message: SipRequest): void;
  /**
   * A REFER in the session's dialog (RFC 3515 §2.4.2): `acceptRefer()` or
   * `rejectRefer(status)` it through `sub`, then report with `notifyProgress` (or
   * `dum.makeInviteSessionFromRefer`, which does).
   */
  onRefer?(
    handle: Handle<InviteSession>,
    sub: Handle<ServerReferSubscription>,
    refer: SipRequest,
  ): void;
  /**
   * A REFER with `Refer-Sub: false` (RFC 4488); without this callback it goes to
   * `onRefer`. `acceptRefer()` answers with `Refer-Sub: false` and ends the usage (no
   * NOTIFY): make the call with `dum.makeInviteSessionFromRefer(refer)`.
   */
  onReferNoSub?(
    handle: Handle<InviteSession>,
    sub: Handle<ServerReferSubscription>,
    refer: SipRequest,
  ): void;
  /** The 2xx to our REFER; `sub` is its subscription (none when the 2xx said `Refer-Sub: false`). */
  onReferAccepted?(
    handle: Handle<InviteSession>,
    sub: Handle<ClientSubscription> | undefined,
    response: SipResponse,
  ): void;
  /** Our REFER failed (or timed out, as a locally made 408). */
  onReferRejected?(handle: Handle<InviteSession>, response: SipResponse): void;
  /** A NOTIFY for our REFER: its sipfrag status line, `undefined` when unreadable (RFC 3515 §2.4.5). */
  onReferProgress?(
    handle: Handle<InviteSession>,
    sub: Handle<ClientSubscription>,
    status: SipfragStatus | undefined,
    notify: SipRequest,
  ): void;
  onAckReceived?(handle: Handle<ServerInviteSession>, ack: SipRequest): void;
  /** No ACK for our 2xx within 64*T1: a BYE was sent (§13.3.1.4). */
  onAckNotReceived?(handle: Handle<ServerInviteSession>): void;
  /**
   * A PRACK acknowledged one of our reliable provisional responses (RFC 3262 §3); it
   * was answered 200 (with the answer to an offer it carried, given from `onOffer`).
   */
  onPrack?(handle: Handle<ServerInviteSession>, prack: SipRequest): void;
  /** No final response within the profile's staleCallTime: the INVITE is cancelled. */
  onStaleCallTimeout?(handle: Handle<ClientInviteSession>): void;
  /**
   * The session timer ran out without a refresh (RFC 4028 §10): a BYE was sent and
   * `onTerminated(timeout)` follows.
   */
  onSessionExpired?(handle: Handle<InviteSession>): void;
  /** The session ended (once); its handle goes stale when the session is gone. */
  onTerminated?(
    handle: Handle<InviteSession>,
    reason: EndReason,
    message?: SipRequest | SipResponse,
  ): void;
}

/** One stored binding of an address of record (RFC 3261 §10.3). */
export interface ContactBinding {
  aor: string;
  contact: Contact;
  /** Absolute expiry, ms since the epoch. */
  expires: number;
  callId: string;
  cseq: number;
  q?: number;
  instanceId?: string;
  regId?: number;
  path?: string[];
}

/** The changes one REGISTER makes to the bindings of its address of record. */
export interface RegistrationUpdate {
  /**
   * The REGISTER's Call-ID and CSeq. The registrar has checked them against the bindings
   * it read (§10.3 steps 6-7); a store shared by several registrars may check again as
   * it writes, and reject the update when a binding it touches now holds the same
   * Call-ID with a CSeq as high (another registrar stored a newer REGISTER meanwhile).
   */
  callId: string;
  cseq: number;
  /** Remove every binding first (`Contact: *`, RFC 3261 §10.3 step 6). */
  removeAll?: boolean;
  /** Binding keys (Contact URIs as written) to remove. */
  remove: string[];
  /** Bindings to add or refresh. */
  put: ContactBinding[];
}

/**
 * Where a registrar keeps its bindings. The DUM ships one in memory; the interface is
 * small so that other stores (SQLite, Redis...) can be plugged in.
 */
export interface RegistrationPersistenceManager {
  getContacts(aor: string): Promise<ContactBinding[]>;
  /** Add or refresh one binding. */
  putContact(binding: ContactBinding): Promise<void>;
  removeContact(aor: string, contactUri: string): Promise<void>;
  removeAll(aor: string): Promise<void>;
  /** Every address of record with at least one binding. */
  aors(): Promise<string[]>;
  /**
   * Optional: apply one REGISTER's changes all at once, or none of them (RFC 3261 §10.3
   * step 7), and resolve with every binding of the AOR afterwards. A registrar uses it
   * when the store has it; otherwise it calls `removeAll`, `removeContact` and
   * `putContact` one by one, then `getContacts`.
   */
  updateContacts?(aor: string, update: RegistrationUpdate): Promise<ContactBinding[]>;
}

import {
  NameAddr,
  parseHeader,
  parseUri,
  type Replaces,
  reasonPhrase,
  type SipRequest,
  type SipResponse,
  Uri,
} from '@sipworks/message';
import type { ServerTransactionLike } from '@sipworks/stack';
import type { Dialog } from '../dialog.ts';
import type { DialogSet } from '../dialog-set.ts';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type {
  ClientSubscriptionHandler,
  InviteSessionHandler,
  ServerSubscriptionHandler,
} from '../handlers.ts';
import type { Handle } from '../handles.ts';
import { DialogId } from '../ids.ts';
import type { Profile } from '../profile.ts';
import { parseSipfrag, SIPFRAG_CONTENT_TYPE, type SipfragStatus, sipfrag } from '../sipfrag.ts';
import { ClientSubscription, reply, type SubscriptionOwner } from './client-subscription.ts';
import type { InviteSession } from './invite-session.ts';
import { ServerSubscription, type ServerSubscriptionOwner } from './server-subscription.ts';

/** How to send a REFER (RFC 3515), in a dialog (`inviteSession.refer`) or outside (`dum.makeRefer`). */
export interface ReferOptions {
  /**
   * `false` asks for no implicit subscription (RFC 4488 `Refer-Sub: false`, with
   * `Supported: norefersub`): when the recipient honours it (its 2xx says
   * `Refer-Sub: false`), no NOTIFY follows. Default: a subscription.
   */
  referSub?: boolean;
  /**
   * Referred-By (RFC 3892): an address, or `false` for none. Default: our address in
   * the dialog (in dialog) or the profile's address of record (outside).
   */
  referredBy?: NameAddr | string | false;
  /**
   * Attended transfer (RFC 5589 §7): a `Replaces` naming this dialog is embedded in the
   * Refer-To URI, so that the recipient's new call replaces it at the target. A
   * `DialogId` is read as this UA sees its dialog with the target.
   */
  replaces?: Handle<InviteSession> | DialogId;
}

/** The parts of a REFER the recipient acts on (RFC 3515 §2.4.2). */
export interface ReferRequestInfo {
  referTo: NameAddr;
  referredBy: NameAddr | undefined;
  /** False when the REFER says `Refer-Sub: false` (RFC 4488 §4). */
  referSub: boolean;
  /** A Replaces embedded in the Refer-To URI (RFC 3891 §6.1), parsed. */
  replaces: Replaces | undefined;
}

/**
 * The value of a Replaces header naming `id` as this UA sees the dialog, for a request
 * to the dialog's remote party (RFC 3891 §6.1): the remote party's tag goes in `to-tag`
 * (its local tag, as it matches them), ours in `from-tag`.
 */
export function replacesValue(id: DialogId, earlyOnly = false): string {
  return `${id.callId};to-tag=${id.remoteTag};from-tag=${id.localTag}${earlyOnly ? ';early-only' : ''}`;
}

/** A dialog id from a session handle or an id. */
export function dialogIdOf(x: Handle<InviteSession> | DialogId): DialogId {
  if (x instanceof DialogId) return x;
  const id = x.get().dialog?.id;
  if (!id) throw new DumError('SIP_ERR_DUM_STATE', 'the session to replace has no dialog yet');
  return id;
}

/** The Refer-To address, with a Replaces for `replaces` embedded in its URI (RFC 3891 §6.1). */
export function referToAddress(
  referTo: NameAddr | Uri | string,
  replaces?: Handle<InviteSession> | DialogId,
): NameAddr {
  let target: NameAddr;
  if (referTo instanceof NameAddr) target = referTo.clone();
  else if (referTo instanceof Uri) target = new NameAddr(referTo.clone());
  else
    target = referTo.includes('<')
      ? (parseHeader<NameAddr>('Refer-To', referTo)[0] as NameAddr)
      : new NameAddr(parseUri(referTo));
  if (replaces === undefined) return target;
  const uri = target.uri.clone();
  uri.headers.set('Replaces', replacesValue(dialogIdOf(replaces)));
  return new NameAddr(uri, { displayName: target.displayName });
}

/** Put Refer-To, Referred-By and Refer-Sub on a REFER. */
function decorate(
  req: SipRequest,
  referTo: NameAddr,
  options: ReferOptions,
  self: NameAddr | undefined,
): void {
  req.setHeader('Refer-To', referTo.toString());
  const by = options.referredBy;
  if (by !== false) {
    const addr =
      typeof by === 'string'
        ? (parseHeader<NameAddr>('Referred-By', by.includes('<') ? by : `<${by}>`)[0] as NameAddr)
        : (by ?? (self ? new NameAddr(self.uri.clone()) : undefined));
    if (addr) req.setHeader('Referred-By', addr.toString());
  }
  if (options.referSub === false) {
    req.setHeader('Refer-Sub', 'false');
    req.setHeader('Supported', 'norefersub');
  }
}

/** `Refer-Sub: false` in a message (RFC 4488 §4). */
function saysNoSub(msg: SipRequest | SipResponse): boolean {
  return msg.header('Refer-Sub')?.trim().toLowerCase() === 'false';
}

/** Run an application callback; what it throws is logged. */
function guarded(dum: DialogUsageManager, what: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    dum.logger.error({ err: e }, `${what} threw`);
  }
}

/**
 * The ClientSubscriptionHandler of a subscription made by a REFER: each NOTIFY's
 * sipfrag status line (RFC 3515 §2.4.5) goes to `onReferProgress` (of the session's
 * InviteSessionHandler for an in-dialog REFER, and of the application's `refer`
 * ClientSubscriptionHandler), and the NOTIFYs themselves to that handler as usual.
 */
function referHandler(
  dum: DialogUsageManager,
  app: ClientSubscriptionHandler | undefined,
  session?: { handle: Handle<InviteSession>; handler: InviteSessionHandler },
): ClientSubscriptionHandler {
  const progress = (h: Handle<ClientSubscription>, notify: SipRequest): void => {
    const type = notify.header('Content-Type')?.split(';')[0]?.trim().toLowerCase();
    let frag: SipfragStatus | undefined;
    if (type === 'message/sipfrag') frag = parseSipfrag(notify.body);
    if (!frag)
      dum.logger.debug?.({ type }, 'a refer NOTIFY without a readable sipfrag status line');
    if (session) {
      // The transfer worked: the session's end is reported as `referred`.
      if (frag && frag.status >= 200 && frag.status < 300 && session.handle.isValid())
        session.handle.get().markReferred();
      guarded(dum, 'onReferProgress', () =>
        session.handler.onReferProgress?.(session.handle, h, frag, notify),
      );
    }
    guarded(dum, 'onReferProgress', () => app?.onReferProgress?.(h, frag, notify));
  };
  return {
    onUpdatePending: (h, n) => {
      app?.onUpdatePending?.(h, n);
      progress(h, n);
    },
    onUpdateActive: (h, n) => {
      app?.onUpdateActive?.(h, n);
      progress(h, n);
    },
    onUpdateExtension: (h, n) => {
      app?.onUpdateExtension?.(h, n);
      progress(h, n);
    },
    onTerminated: (h, n) => {
      if (n && n.body.length > 0) progress(h, n);
      app?.onTerminated?.(h, n);
    },
    onNewSubscription: (h, n) => app?.onNewSubscription?.(h, n),
  };
}

/**
 * The subscriptions that share an invite session's dialog (RFC 3515 §2.4.6: each REFER
 * in the dialog makes one, told apart by `Event: refer;id=<CSeq>`). It takes the
 * SUBSCRIBE and NOTIFY requests of the dialog set; the set stays in the DUM while a
 * subscription or the session lives.
 */
export class DialogSubscriptions implements SubscriptionOwner, ServerSubscriptionOwner {
  private readonly dum: DialogUsageManager;
  private readonly set: DialogSet;
  private readonly clients = new Map<string, ClientSubscription>();
  private readonly servers = new Map<string, ServerSubscription>();

  private constructor(dum: DialogUsageManager, set: DialogSet) {
    this.dum = dum;
    this.set = set;
  }

  /** The set's instance, made on first use. */
  static of(dum: DialogUsageManager, set: DialogSet): DialogSubscriptions {
    const u = set.subscriptionUsage;
    if (u instanceof DialogSubscriptions) return u;
    const m = new DialogSubscriptions(dum, set);
    set.subscriptionUsage = m;
    return m;
  }

  get size(): number {
    return this.clients.size + this.servers.size;
  }

  addClient(sub: ClientSubscription): void {
    this.clients.set(key(sub.event, sub.eventId), sub);
  }

  addServer(sub: ServerSubscription): void {
    this.servers.set(key(sub.event, sub.eventId), sub);
  }

  /** @internal The live subscriptions of either side in the session's dialog. */
  subscriptionsIn(remoteTag: string): readonly (ClientSubscription | ServerSubscription)[] {
    return [...this.clients.values(), ...this.servers.values()].filter(
      (s) => !s.isEnded && s.dialog?.id.remoteTag === remoteTag,
    );
  }

  /** A NOTIFY (to our subscriptions) or SUBSCRIBE (a refresh of one of theirs) in the dialog. */
  receiveRequest(req: SipRequest, tx: ServerTransactionLike, dialog: Dialog | undefined): void {
    let pkg: string | undefined;
    let id: string | undefined;
    try {
      const ev = req.get<{ package: string; id: string | undefined }>('Event');
      pkg = ev?.package.toLowerCase();
      id = ev?.id;
    } catch {
      pkg = undefined;
    }
    if (!dialog || pkg === undefined) {
      reply(this.dum, req, tx, dialog ? 400 : 481, dialog ? 'Bad Request (no Event)' : undefined);
      return;
    }
    if (req.method === 'NOTIFY') {
      const subs = this.clients;
      // RFC 3515 §2.4.6: the id may be left out by a notifier for the only REFER of a dialog.
      const sub =
        subs.get(key(pkg, id)) ?? (id === undefined && subs.size === 1 ? first(subs) : undefined);
      if (sub) sub.receiveNotify(req, tx, false);
      else reply(this.dum, req, tx, 481);
      return;
    }
    const sub = this.servers.get(key(pkg, id));
    if (sub) sub.receiveRequest(req, tx, dialog);
    else reply(this.dum, req, tx, 481);
  }

  forget(sub: ClientSubscription | ServerSubscription): void {
    const k = key(sub.event, sub.eventId);
    if (sub instanceof ClientSubscription) {
      if (this.clients.get(k) === sub) this.clients.delete(k);
    } else if (this.servers.get(k) === sub) this.servers.delete(k);
    if (this.size > 0) return;
    if (this.set.subscriptionUsage === this) this.set.subscriptionUsage = undefined;
    // The session ended first: the dialog set leaves with its last subscription.
    if (!this.set.inviteSession) this.dum.removeDialogSet(this.set);
  }
}

function key(event: string, id: string | undefined): string {
  return `${event}\u0000${id ?? ''}`;
}

function first<T>(m: Map<string, T>): T | undefined {
  for (const v of m.values()) return v;
  return undefined;
}

/**
 * @internal Send a REFER in the session's dialog (RFC 3515 §2.4.1). Its implicit
 * subscription (`Event: refer;id=<CSeq>`, §2.4.6) shares the dialog; the 2xx goes to
 * `onReferAccepted`, a failure to `onReferRejected`.
 */
export function sendInDialogRefer(
  dum: DialogUsageManager,
  session: InviteSession,
  profile: Profile,
  handler: InviteSessionHandler,
  referTo: NameAddr | Uri | string,
  options: ReferOptions = {},
): SipRequest {
  const dialog = session.dialog;
  if (!session.isConnected || !dialog || dialog.early)
    throw new DumError('SIP_ERR_DUM_STATE', 'a REFER needs a connected session');
  const target = referToAddress(referTo, options.replaces);
  const req = dialog.makeRequest('REFER');
  decorate(req, target, options, dialog.localUri);
  const sessionHandle = session.handle();
  const mux = DialogSubscriptions.of(dum, session.dialogSet);
  const sub = new ClientSubscription(
    dum,
    req,
    profile,
    referHandler(dum, dum.clientSubscriptionHandler('refer'), { handle: sessionHandle, handler }),
    { event: 'refer', eventId: String(req.cseq.seq) },
  );
  sub.attach(dialog, mux);
  mux.addClient(sub);
  const wantsNoSub = options.referSub === false;
  const onFinal = (res: SipResponse): void => {
    if (res.status >= 200 && res.status < 300) {
      const noSub = wantsNoSub && saysNoSub(res);
      if (noSub) sub.drop();
      else sub.initialAccepted(res);
      const h = noSub || sub.isEnded ? undefined : sub.handle();
      guarded(dum, 'onReferAccepted', () => handler.onReferAccepted?.(sessionHandle, h, res));
      return;
    }
    sub.drop();
    guarded(dum, 'onReferRejected', () => handler.onReferRejected?.(sessionHandle, res));
  };
  try {
    dum.sendClient(req, profile, onFinal);
  } catch (e) {
    sub.drop();
    throw e;
  }
  return req;
}

/**
 * @internal Put Refer-To, Referred-By (default: the profile's address of record) and
 * Refer-Sub on an out-of-dialog REFER.
 */
export function decorateOutOfDialogRefer(
  req: SipRequest,
  referTo: NameAddr | Uri | string,
  profile: Profile,
  options: ReferOptions = {},
): void {
  decorate(req, referToAddress(referTo, options.replaces), options, profile.get('aor'));
}

/**
 * @internal Start the subscription of an out-of-dialog REFER (RFC 3515 §2.4.1): a
 * `ClientSubscription` for `refer`, with the application's `refer`
 * ClientSubscriptionHandler (`onReferAccepted`, `onReferRejected`, `onReferProgress`
 * and the usual NOTIFY callbacks).
 */
export function startOutOfDialogRefer(
  dum: DialogUsageManager,
  req: SipRequest,
  profile: Profile,
  options: ReferOptions = {},
): Handle<ClientSubscription> {
  const app = dum.clientSubscriptionHandler('refer');
  let answered = false;
  let handle: Handle<ClientSubscription> | undefined;
  const sub = new ClientSubscription(dum, req, profile, referHandler(dum, app), {
    event: 'refer',
    accepted: (res) => {
      if (answered) return true;
      answered = true;
      const noSub = options.referSub === false && saysNoSub(res);
      if (handle) app?.onReferAccepted?.(handle, res);
      return !noSub;
    },
    rejected: (res) => {
      if (handle) app?.onReferRejected?.(handle, res);
    },
  });
  handle = sub.handle();
  sub.start();
  return handle;
}

/** Read Refer-To, Referred-By, Refer-Sub and an embedded Replaces; a string says what is wrong. */
export function readRefer(req: SipRequest): ReferRequestInfo | string {
  if (req.headers('Refer-To').length !== 1) return 'a REFER carries exactly one Refer-To';
  let referTo: NameAddr | undefined;
  let referredBy: NameAddr | undefined;
  try {
    referTo = req.get<NameAddr>('Refer-To');
  } catch {
    return 'malformed Refer-To';
  }
  if (!referTo) return 'a REFER carries exactly one Refer-To';
  try {
    referredBy = req.get<NameAddr>('Referred-By');
  } catch {
    return 'malformed Referred-By';
  }
  let replaces: Replaces | undefined;
  try {
    const v = referTo.uri.headers.get('Replaces');
    if (typeof v === 'string') replaces = parseHeader<Replaces>('Replaces', v)[0];
  } catch {
    return 'malformed Replaces in the Refer-To URI';
  }
  return { referTo, referredBy, referSub: !saysNoSub(req), replaces };
}

/**
 * The recipient's side of a REFER (RFC 3515 §2.4.2-2.4.5), a `ServerSubscription` for
 * the `refer` event. `acceptRefer()` answers 202 and sends the first NOTIFY
 * (`SIP/2.0 100 Trying`); `notifyProgress(status)` reports how the referenced request
 * goes, a final status ending the subscription (`terminated;reason=noresource`);
 * `rejectRefer(status)` refuses it. A REFER with `Refer-Sub: false` (RFC 4488) is
 * accepted with `Refer-Sub: false` in the 2xx and no NOTIFY at all.
 */
export class ServerReferSubscription extends ServerSubscription {
  /** The REFER. */
  readonly refer: SipRequest;
  /** Where the REFER sends us (RFC 3515 §2.1). */
  readonly referTo: NameAddr;
  /** Who referred us (RFC 3892), when the REFER says. */
  readonly referredBy: NameAddr | undefined;
  /** False when the REFER asked for no subscription (RFC 4488). */
  readonly referSub: boolean;
  /** A Replaces embedded in the Refer-To URI (attended transfer, RFC 3891). */
  readonly replaces: Replaces | undefined;
  /** The invite session whose dialog the REFER came in, for an in-dialog REFER. */
  readonly session: Handle<InviteSession> | undefined;
  private finalSent = false;

  /** @internal */
  constructor(
    dum: DialogUsageManager,
    refer: SipRequest,
    tx: ServerTransactionLike,
    handler: ServerSubscriptionHandler,
    info: ReferRequestInfo,
    session: Handle<InviteSession> | undefined,
    shared?: { dialog: Dialog; set: DialogSet; owner: ServerSubscriptionOwner },
  ) {
    super(dum, refer, tx, handler, {
      event: 'refer',
      // RFC 3515 §2.4.6: in a dialog, NOTIFYs name the REFER by its CSeq.
      eventId: shared ? String(refer.cseq.seq) : undefined,
      ...(shared ? { shared } : {}),
    });
    this.refer = refer;
    this.referTo = info.referTo;
    this.referredBy = info.referredBy;
    this.referSub = info.referSub;
    this.replaces = info.replaces;
    this.session = session;
  }

  /**
   * Accept the REFER (202 by default; RFC 3515 §2.4.2) and send the first NOTIFY,
   * `SIP/2.0 100 Trying` (§2.4.4). With `Refer-Sub: false` the 2xx says so and the
   * usage ends (RFC 4488 §4).
   */
  acceptRefer(status = 202): SipResponse {
    this.assertLive();
    const tx = this.tx;
    if (!tx || this.st !== 'new')
      throw new DumError('SIP_ERR_DUM_STATE', 'the REFER was already answered');
    if (status < 200 || status >= 300)
      throw new DumError('SIP_ERR_DUM_STATE', `acceptRefer takes a 2xx, not ${status}`);
    this.tx = undefined;
    const contact: [string, string] = ['Contact', this.dialog.localContact.toString()];
    if (!this.referSub) {
      const res = reply(this.dum, this.refer, tx, status, undefined, this.dialog.id.localTag, [
        ['Refer-Sub', 'false'],
        contact,
      ]);
      this.finish();
      return res;
    }
    this.notifyState = 'active';
    this.st = 'active';
    this.startExpiry(this.expires);
    const res = reply(this.dum, this.refer, tx, status, undefined, this.dialog.id.localTag, [
      contact,
    ]);
    this.notifyProgress(100);
    return res;
  }

  /** Refuse the REFER (300-699; 603 Declined by default); the usage ends. */
  rejectRefer(status = 603): void {
    this.reject(status);
  }

  /**
   * Tell the referrer how the referenced request goes (RFC 3515 §2.4.5): a NOTIFY with
   * the sipfrag `SIP/2.0 <status> <reason>`. A provisional status keeps the
   * subscription active; a final one (200-699) ends it with
   * `Subscription-State: terminated;reason=noresource` (§2.4.7). Does nothing once the
   * subscription has ended (or had none).
   */
  notifyProgress(status: number, reason?: string): void {
    if (this.isEnded || this.st === 'terminated' || this.finalSent) return;
    if (this.st === 'new')
      throw new DumError('SIP_ERR_DUM_STATE', 'accept the REFER before notifying');
    const body = sipfrag(status, reason ?? reasonPhrase(status));
    if (status < 200) {
      this.send(this.update(body, SIPFRAG_CONTENT_TYPE));
      return;
    }
    this.finalSent = true;
    if (status < 300 && this.session?.isValid()) this.session.get().markReferred();
    this.lastBody = { body, contentType: SIPFRAG_CONTENT_TYPE };
    this.end('noresource');
  }
}

/**
 * @internal A REFER in an invite session's dialog (RFC 3515 §2.4.2): a 400 when its
 * headers are wrong; else a `ServerReferSubscription` sharing the dialog goes to
 * `onRefer` (or `onReferNoSub` for `Refer-Sub: false`, when the handler has it).
 */
export function receiveInDialogRefer(
  dum: DialogUsageManager,
  session: InviteSession,
  handler: InviteSessionHandler,
  request: SipRequest,
  tx: ServerTransactionLike,
  dialog: Dialog,
): void {
  const info = readRefer(request);
  const tag = dialog.id.localTag;
  if (typeof info === 'string') {
    reply(dum, request, tx, 400, `Bad Request (${info})`, tag);
    return;
  }
  const cb = !info.referSub && handler.onReferNoSub ? handler.onReferNoSub : handler.onRefer;
  if (!cb) {
    reply(dum, request, tx, 501, 'Not Implemented (no handler for REFER)', tag);
    return;
  }
  const mux = DialogSubscriptions.of(dum, session.dialogSet);
  const sessionHandle = session.handle();
  const sub = new ServerReferSubscription(
    dum,
    request,
    tx,
    dum.serverSubscriptionHandler('refer') ?? {},
    info,
    sessionHandle,
    { dialog, set: session.dialogSet, owner: mux },
  );
  mux.addServer(sub);
  guarded(dum, 'onRefer', () => cb.call(handler, sessionHandle, sub.handle(), request));
}

/**
 * @internal A REFER outside any dialog (RFC 3515 §2.4.2): when a ServerSubscriptionHandler
 * for `refer` is registered, a `ServerReferSubscription` (with its own dialog) goes to its
 * `onNewSubscriptionFromRefer` (a handler without it declines with 603). Returns false
 * when no handler is registered.
 */
export function receiveOutOfDialogRefer(
  dum: DialogUsageManager,
  request: SipRequest,
  tx: ServerTransactionLike,
  handler: ServerSubscriptionHandler | undefined,
): boolean {
  if (!handler) return false;
  const contact = request.contacts[0];
  if (!contact || contact.star) {
    reply(dum, request, tx, 400, 'Bad Request (a REFER that creates a dialog needs a Contact)');
    return true;
  }
  const info = readRefer(request);
  if (typeof info === 'string') {
    reply(dum, request, tx, 400, `Bad Request (${info})`);
    return true;
  }
  const sub = new ServerReferSubscription(dum, request, tx, handler, info, undefined);
  sub.register();
  const cb = handler.onNewSubscriptionFromRefer;
  if (!cb) {
    sub.rejectRefer(603);
    return true;
  }
  guarded(dum, 'onNewSubscriptionFromRefer', () => cb.call(handler, sub.handle(), request));
  return true;
}

/**
 * @internal Where the call a REFER asks for goes (RFC 3515 §2.4.2, RFC 3261 §19.1.5):
 * the Refer-To URI without its headers and `method` parameter; the embedded Replaces
 * and the REFER's Referred-By go into the INVITE as headers.
 */
export function inviteFromRefer(sub: ReferRequestInfo): {
  target: Uri;
  headers: [string, string][];
} {
  const uri = sub.referTo.uri;
  if (!uri.isSip)
    throw new DumError('SIP_ERR_DUM_STATE', `cannot make a call to a ${uri.scheme}: Refer-To`);
  const method = uri.params.get('method');
  if (typeof method === 'string' && method.toUpperCase() !== 'INVITE')
    throw new DumError('SIP_ERR_DUM_STATE', `the Refer-To asks for ${method}, not INVITE`);
  const target = new Uri({
    scheme: uri.scheme,
    user: uri.user,
    password: uri.password,
    host: uri.host,
    port: uri.port,
    params: [...uri.params].filter(([k]) => k.toLowerCase() !== 'method'),
  });
  const headers: [string, string][] = [];
  if (sub.replaces) headers.push(['Replaces', sub.replaces.toString()]);
  if (sub.referredBy) headers.push(['Referred-By', sub.referredBy.toString()]);
  return { target, headers };
}

/**
 * @internal The handler of a call made for a REFER: the application's, with each
 * provisional and the final outcome of the INVITE reported to the referrer as sipfrag
 * NOTIFYs (RFC 3515 §2.4.5) before the application hears of it.
 */
export function notifyingHandler(
  dum: DialogUsageManager,
  app: InviteSessionHandler,
  sub: Handle<ServerReferSubscription>,
): InviteSessionHandler {
  let done = false;
  const report = (status: number, reason: string): void => {
    if (done) return;
    if (status >= 200) done = true;
    if (!sub.isValid()) return;
    guarded(dum, 'a refer NOTIFY', () => sub.get().notifyProgress(status, reason));
  };
  const overrides: InviteSessionHandler = {
    onProvisional(h, res) {
      report(res.status, res.reason);
      app.onProvisional?.(h, res);
    },
    onConnected(h, msg) {
      if ('status' in msg) report(msg.status, msg.reason);
      else report(200, 'OK');
      app.onConnected?.(h, msg);
    },
    onFailure(h, res) {
      report(res.status, res.reason);
      app.onFailure?.(h, res);
    },
    onTerminated(h, reason, msg) {
      if (msg && 'status' in msg) report(msg.status, msg.reason);
      else
        report(reason === 'timeout' ? 408 : 500, reason === 'timeout' ? 'Request Timeout' : reason);
      app.onTerminated?.(h, reason, msg);
    },
  };
  return overlay(app, overrides);
}

/**
 * A handler that answers with `overrides` where it has them and with `app` otherwise
 * (methods bound to `app`), so callbacks added to the interface later still reach the
 * application.
 */
export function overlay<T extends object>(app: T, overrides: Partial<T>): T {
  return new Proxy(app, {
    get(target, prop) {
      if (typeof prop === 'string' && Object.hasOwn(overrides, prop))
        return (overrides as Record<string, unknown>)[prop];
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

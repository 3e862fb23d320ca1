import {
  createRequest,
  createResponse,
  type MediaType,
  NameAddr,
  parseHeader,
  parseUri,
  type SipRequest,
  type SipResponse,
  Uri,
} from '@sipworks/message';
import {
  type ClientTransactionLike,
  type Logger,
  type ReceivedInfo,
  type ServerTransactionLike,
  SipStack,
  type SipStackOptions,
  sentByHost,
  silentLogger,
  type TransactionUser,
} from '@sipworks/stack';
import { ClientAuthManager } from './client-auth.ts';
import type { Dialog } from './dialog.ts';
import { DialogSet } from './dialog-set.ts';
import { randomHex } from './digest.ts';
import { DumError } from './errors.ts';
import type {
  ClientPagerMessageHandler,
  ClientPublicationHandler,
  ClientRegistrationHandler,
  ClientSubscriptionHandler,
  DialogSetHandler,
  InviteSessionHandler,
  OutOfDialogHandler,
  RegistrationPersistenceManager,
  ServerPagerMessageHandler,
  ServerPublicationHandler,
  ServerRegistrationHandler,
  ServerSubscriptionHandler,
} from './handlers.ts';
import type { Handle, Handled } from './handles.ts';
import { HandleManager } from './handles.ts';
import { DialogId, DialogSetId } from './ids.ts';
import { MasterProfile, type Profile, UserProfile } from './profile.ts';
import { RedirectManager } from './redirect.ts';
import { InMemoryRegistrationPersistence } from './registration-persistence.ts';
import type { ServerAuthManager } from './server-auth.ts';
import { ClientInviteSession } from './usages/client-invite-session.ts';
import { ClientPublication } from './usages/client-publication.ts';
import { ClientRegistration } from './usages/client-registration.ts';
import { ClientSubscription, reply as replyIn } from './usages/client-subscription.ts';
import type { InviteSession } from './usages/invite-session.ts';
import { ClientOutOfDialogReq, ServerOutOfDialogReq } from './usages/out-of-dialog.ts';
import { ClientPagerMessage, ServerPagerMessage } from './usages/pager.ts';
import { ServerInviteSession } from './usages/server-invite-session.ts';
import {
  InMemoryPublicationStore,
  type PublicationStore,
  receivePublish,
  ServerPublication,
} from './usages/server-publication.ts';
import { ServerRegistration } from './usages/server-registration.ts';
import { ServerSubscription } from './usages/server-subscription.ts';

/** The application's object for one dialog set (reSIProcate's AppDialogSet). */
export interface AppDialogSet {
  /** Called when the dialog set ends. */
  onDestroyed?(): void;
}

/** Makes the application's object for each dialog set: for incoming requests, and when the application has none. */
export type AppDialogSetFactory = (request: SipRequest) => AppDialogSet;

export interface DialogUsageManagerOptions {
  /** The stack to run on; the DUM makes its own (without transports) when none is given. */
  stack?: SipStack;
  stackOptions?: SipStackOptions;
  masterProfile?: MasterProfile;
  clientAuthManager?: ClientAuthManager;
  redirectManager?: RedirectManager;
  appDialogSetFactory?: AppDialogSetFactory;
  logger?: Logger;
}

/** Methods whose requests the DUM answers itself when nobody registered for them. */
const LOCAL_TARGET_METHODS = new Set(['OPTIONS']);

/** How many times one request may be re-sent with credentials or to a redirect target. */
const MAX_RETRIES = 5;

/**
 * The Dialog Usage Manager: the application's one interface to SIP, after reSIProcate's.
 * It is the transaction user of a `SipStack`; it owns the profiles, the handlers, the
 * handle manager, the client and server auth managers and the redirect manager, and it
 * turns SIP traffic into usages (out-of-dialog requests, pager messages; invite
 * sessions, registrations, subscriptions and publications) that the application drives
 * through handles.
 *
 * `makeX` builds the initial request from a profile and returns it so the application
 * can adjust it; `send` sends it and returns a handle. Responses and incoming requests
 * reach the application through the handlers.
 */
export class DialogUsageManager implements TransactionUser {
  readonly stack: SipStack;
  readonly masterProfile: MasterProfile;
  readonly handles = new HandleManager();
  readonly clientAuthManager: ClientAuthManager;
  readonly redirectManager: RedirectManager;
  readonly logger: Logger;
  private serverAuth: { manager: ServerAuthManager; methods: Set<string> | undefined } | undefined;
  private readonly outOfDialog = new Map<string, OutOfDialogHandler>();
  private clientPager: ClientPagerMessageHandler | undefined;
  private serverPager: ServerPagerMessageHandler | undefined;
  private dialogSetHandler: DialogSetHandler | undefined;
  private inviteHandler: InviteSessionHandler | undefined;
  private clientRegistration: ClientRegistrationHandler | undefined;
  private serverRegistration: ServerRegistrationHandler | undefined;
  private readonly clientSubscriptions = new Map<string, ClientSubscriptionHandler>();
  private readonly serverSubscriptions = new Map<string, ServerSubscriptionHandler>();
  private readonly clientPublications = new Map<string, ClientPublicationHandler>();
  private readonly serverPublications = new Map<string, ServerPublicationHandler>();
  private persistence: RegistrationPersistenceManager | undefined;
  /** The in-memory store the DUM made because none was set. */
  private ownPersistence: InMemoryRegistrationPersistence | undefined;
  /** Date.now() minus the stack clock's time when the DUM was made. */
  private readonly epochOffset: number;
  private readonly appDialogSetFactory: AppDialogSetFactory;
  /** Requests made by makeX, waiting for send(). */
  private readonly made = new WeakMap<
    SipRequest,
    { method: string; profile: Profile; start: () => Handle<never> }
  >();
  /** Dialog sets by `DialogSetId` key. */
  private readonly dialogSets = new Map<string, DialogSet>();
  /** Dialogs by `DialogId` key. */
  private readonly dialogs = new Map<string, Dialog>();
  /** The invite session of each INVITE server transaction, for CANCEL (§9.2). */
  private readonly invitesByTx = new WeakMap<ServerTransactionLike, ServerInviteSession>();
  private readonly ownsStack: boolean;
  private shuttingDown = false;
  private tagCounter = 0;
  private readonly tagPrefix = randomHex(3);

  constructor(options: DialogUsageManagerOptions = {}) {
    this.ownsStack = options.stack === undefined;
    this.stack = options.stack ?? new SipStack(options.stackOptions);
    this.masterProfile = options.masterProfile ?? new MasterProfile();
    this.clientAuthManager = options.clientAuthManager ?? new ClientAuthManager();
    this.redirectManager = options.redirectManager ?? new RedirectManager();
    this.appDialogSetFactory = options.appDialogSetFactory ?? (() => ({}));
    this.logger = options.logger ?? silentLogger;
    this.stack.setTransactionUser(this);
    this.epochOffset = Date.now() - this.stack.clock.now();
  }

  /**
   * Wall-clock time in ms since the epoch, advancing with the stack's clock (so a
   * virtual clock in tests moves it too): binding expiries are kept in this time.
   */
  now(): number {
    return this.epochOffset + this.stack.clock.now();
  }

  // ---- profiles and handlers ----

  /** A user profile that falls back to the master profile. */
  makeUserProfile(settings?: ConstructorParameters<typeof UserProfile>[1]): UserProfile {
    return new UserProfile(this.masterProfile, settings);
  }

  setDialogSetHandler(h: DialogSetHandler | undefined): void {
    this.dialogSetHandler = h;
  }
  setInviteSessionHandler(h: InviteSessionHandler | undefined): void {
    this.inviteHandler = h;
  }
  setClientRegistrationHandler(h: ClientRegistrationHandler | undefined): void {
    this.clientRegistration = h;
  }
  /** Be a registrar (RFC 3261 §10.3): REGISTER is added to the supported methods. */
  setServerRegistrationHandler(h: ServerRegistrationHandler | undefined): void {
    this.serverRegistration = h;
    if (!h) return;
    const methods = this.masterProfile.get('supportedMethods');
    if (!methods.includes('REGISTER'))
      this.masterProfile.set('supportedMethods', [...methods, 'REGISTER']);
  }
  addClientSubscriptionHandler(event: string, h: ClientSubscriptionHandler): void {
    this.clientSubscriptions.set(event.toLowerCase(), h);
  }
  /** Be a notifier for `event` (RFC 6665 §4.2): the event is added to the master profile's supportedEvents. */
  addServerSubscriptionHandler(event: string, h: ServerSubscriptionHandler): void {
    const e = event.toLowerCase();
    this.serverSubscriptions.set(e, h);
    const events = this.masterProfile.get('supportedEvents');
    if (!events.includes(e)) this.masterProfile.set('supportedEvents', [...events, e]);
  }
  addClientPublicationHandler(event: string, h: ClientPublicationHandler): void {
    this.clientPublications.set(event.toLowerCase(), h);
  }
  /** Be a state agent for `event` (RFC 3903 §6): PUBLISH is added to the supported methods. */
  addServerPublicationHandler(event: string, h: ServerPublicationHandler): void {
    this.serverPublications.set(event.toLowerCase(), h);
    const methods = this.masterProfile.get('supportedMethods');
    if (!methods.includes('PUBLISH'))
      this.masterProfile.set('supportedMethods', [...methods, 'PUBLISH']);
  }
  /** The state agent's store: the one set, or the in-memory one the DUM makes on first use. */
  get publicationStore(): PublicationStore {
    this.pubStore ??= new InMemoryPublicationStore({ now: () => this.now() });
    return this.pubStore;
  }
  /**
   * Where the state agent keeps publications (RFC 3903 §6): a store shared by several
   * DUMs (Redis) lets any of them take a refresh, modify or remove. Set it before the
   * first PUBLISH arrives.
   */
  setPublicationStore(store: PublicationStore | undefined): void {
    this.pubStore = store;
  }
  private pubStore: PublicationStore | undefined;
  private readonly publicationsByEtag = new Map<string, ServerPublication>();
  /** Handle requests of this method outside dialogs (OPTIONS is answered from the profile when none is set). */
  addOutOfDialogHandler(method: string, h: OutOfDialogHandler): void {
    const m = method.toUpperCase();
    this.outOfDialog.set(m, h);
    const methods = this.masterProfile.get('supportedMethods');
    if (!methods.includes(m)) this.masterProfile.set('supportedMethods', [...methods, m]);
  }
  setClientPagerMessageHandler(h: ClientPagerMessageHandler | undefined): void {
    this.clientPager = h;
  }
  setServerPagerMessageHandler(h: ServerPagerMessageHandler | undefined): void {
    this.serverPager = h;
  }
  /** Where the registrar keeps its bindings (an `InMemoryRegistrationPersistence` when none is set). */
  setRegistrationPersistenceManager(m: RegistrationPersistenceManager | undefined): void {
    this.persistence = m;
  }
  /** The registrar's store: the one set, or the in-memory one the DUM makes on first use. */
  get registrationPersistenceManager(): RegistrationPersistenceManager {
    if (this.persistence) return this.persistence;
    this.ownPersistence ??= new InMemoryRegistrationPersistence({
      now: () => this.now(),
      clock: this.stack.clock,
    });
    return this.ownPersistence;
  }
  get handlers(): {
    dialogSet: DialogSetHandler | undefined;
    inviteSession: InviteSessionHandler | undefined;
    clientRegistration: ClientRegistrationHandler | undefined;
    serverRegistration: ServerRegistrationHandler | undefined;
  } {
    return {
      dialogSet: this.dialogSetHandler,
      inviteSession: this.inviteHandler,
      clientRegistration: this.clientRegistration,
      serverRegistration: this.serverRegistration,
    };
  }

  /**
   * Challenge requests outside dialogs with digest auth before any handler sees them.
   * `methods` limits it to some methods (default: every method but ACK and CANCEL).
   */
  setServerAuthManager(manager: ServerAuthManager | undefined, methods?: string[]): void {
    this.serverAuth = manager
      ? { manager, methods: methods ? new Set(methods.map((m) => m.toUpperCase())) : undefined }
      : undefined;
  }

  // ---- making requests ----

  /** A new tag for From or To. */
  newTag(): string {
    return `${this.tagPrefix}${(this.tagCounter++).toString(36)}${randomHex(3)}`;
  }

  newCallId(): string {
    return `${randomHex(12)}@sipworks`;
  }

  /** Our Contact: the profile's override, else the address of the stack's first transport. */
  contactFor(profile: Profile, target?: Uri): NameAddr {
    const override = profile.get('overrideContact');
    if (override) return override.clone();
    const user = profile.get('aor')?.uri.user;
    const secure = target?.isSecure ?? false;
    const wanted = target?.params.get('transport')?.toUpperCase();
    const ts = this.stack.transports;
    const t =
      (wanted ? ts.find((x) => x.protocol === wanted) : undefined) ??
      (secure ? ts.find((x) => x.secure) : undefined) ??
      ts[0];
    if (!t)
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        'the stack has no transport: add one before making requests',
      );
    const sentBy = t.advertised ?? {
      host: sentByHost(t.local.address, t.local.family),
      port: t.local.port,
    };
    const params: Record<string, string> =
      t.protocol === 'UDP' ? {} : { transport: t.protocol.toLowerCase() };
    const uri = new Uri({
      scheme: secure ? 'sips' : 'sip',
      user,
      host: sentBy.host,
      port: sentBy.port,
      params,
    });
    const c = new NameAddr(uri);
    const instance = profile.get('instanceId');
    if (instance) c.params.set('+sip.instance', `<${instance}>`, { quoted: true });
    return c;
  }

  /** @internal Build a request outside a dialog from a profile. */
  buildRequest(
    method: string,
    target: NameAddr,
    profile: Profile,
    options?: { callId?: string; fromTag?: string; cseq?: number; contact?: boolean },
  ): SipRequest {
    const aor = profile.get('aor');
    if (!aor) throw new DumError('SIP_ERR_DUM_STATE', 'the profile has no address of record (aor)');
    const from = aor.clone();
    from.params.set('tag', options?.fromTag ?? this.newTag());
    const to = target.clone();
    to.params.delete('tag');
    const headers: [string, string][] = [];
    const proxy = profile.get('outboundProxy');
    if (proxy) {
      const p = proxy.clone();
      if (!p.params.has('lr')) p.params.set('lr');
      headers.push(['Route', `<${p}>`]);
    }
    const ua = profile.get('userAgent');
    if (ua) headers.push(['User-Agent', ua]);
    const req = createRequest({
      method,
      uri: target.uri.clone(),
      from,
      to,
      callId: options?.callId ?? this.newCallId(),
      cseq: options?.cseq ?? 1,
      headers,
      ...(options?.contact === false ? {} : { contact: this.contactFor(profile, target.uri) }),
    });
    return req;
  }

  /**
   * An out-of-dialog request (OPTIONS, or any method) to `target`, built from `profile`,
   * for the application to adjust and then `send`.
   */
  makeOutOfDialogRequest(
    target: NameAddr | Uri | string,
    method: string,
    profile: Profile = this.masterProfile,
  ): SipRequest {
    const m = method.toUpperCase();
    const req = this.buildRequest(m, asNameAddr(target), profile);
    if (m === 'OPTIONS')
      req.setHeader('Accept', this.masterProfile.get('supportedMimeTypes').join(', '));
    this.made.set(req, {
      method: m,
      profile,
      start: () => {
        const usage = new ClientOutOfDialogReq(this, req, profile, this.outOfDialog.get(m));
        usage.start();
        return usage.handle() as unknown as Handle<never>;
      },
    });
    return req;
  }

  /** A pager-mode MESSAGE sender for `target` (RFC 3428): queue pages with `page()`. */
  makePagerMessage(
    target: NameAddr | Uri | string,
    profile: Profile = this.masterProfile,
  ): Handle<ClientPagerMessage> {
    this.assertUp();
    return new ClientPagerMessage(this, asNameAddr(target), profile, this.clientPager).handle();
  }

  /**
   * An INVITE to `target` (RFC 3261 §13.2.1) built from `profile`, with Contact, Allow
   * and Supported, and the offer as its body; without `offer` the INVITE carries none
   * and the offer is expected in the 2xx (late offer). `send` it to start a
   * `ClientInviteSession`.
   */
  makeInviteSession(
    target: NameAddr | Uri | string,
    profile: Profile = this.masterProfile,
    offer?: { body: string | Uint8Array; contentType?: string },
  ): SipRequest {
    const handler = this.inviteHandler;
    if (!handler)
      throw new DumError(
        'SIP_ERR_DUM_NO_HANDLER',
        'set an InviteSessionHandler before making invite sessions',
      );
    const req = this.buildRequest('INVITE', asNameAddr(target), profile);
    req.setHeader('Allow', profile.get('supportedMethods').join(', '));
    const tags = profile.get('supportedOptionTags');
    if (tags.length > 0) req.setHeader('Supported', tags.join(', '));
    if (offer) req.setBody(offer.body, offer.contentType ?? 'application/sdp');
    this.made.set(req, {
      method: 'INVITE',
      profile,
      start: () => {
        const set = new DialogSet(
          DialogSetId.of(req, 'from'),
          'uac',
          req,
          this.appDialogSetFactory(req),
        );
        this.addDialogSet(set);
        const usage = new ClientInviteSession(this, set, profile, handler);
        usage.start();
        return usage.handle() as unknown as Handle<never>;
      },
    });
    return req;
  }

  /**
   * A REGISTER for `aor` (default: the profile's) (RFC 3261 §10.2): Request-URI the
   * registrar (the profile's outbound proxy, else the domain of the address of record),
   * To and From the address of record, Contact ours (`+sip.instance` and `reg-id` when
   * the profile has an instance id) unless `contact` is given, and Expires (default: the
   * profile's defaultRegistrationExpires). `send` it to start a `ClientRegistration`.
   */
  makeRegistration(
    aor: NameAddr | Uri | string | undefined,
    profile: Profile = this.masterProfile,
    options?: { expires?: number; contact?: NameAddr | string },
  ): SipRequest {
    const own = profile.get('aor');
    const target = aor === undefined ? own : asNameAddr(aor);
    if (!target)
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        'no address of record: give one or set the profile aor',
      );
    const to = new NameAddr(target.uri.clone(), { displayName: target.displayName });
    const req = this.buildRequest('REGISTER', to, profile, { contact: false });
    const from = to.clone();
    from.params.set('tag', req.from.tag ?? this.newTag());
    req.setHeader('From', from);
    const proxy = profile.get('outboundProxy');
    let registrar: Uri;
    if (proxy) {
      registrar = new Uri({ scheme: proxy.scheme, host: proxy.host, port: proxy.port });
      const t = proxy.params.get('transport');
      if (t) registrar.params.set('transport', t);
      req.removeHeader('Route');
    } else {
      const u = to.uri;
      registrar = new Uri({ scheme: u.scheme, host: u.host, port: u.port });
    }
    req.uri = registrar;
    let contact: NameAddr;
    if (options?.contact !== undefined)
      contact =
        typeof options.contact === 'string'
          ? (parseHeader<NameAddr>('Contact', options.contact)[0] as NameAddr)
          : options.contact.clone();
    else {
      contact = this.contactFor(profile, registrar);
      if (profile.get('instanceId') && !contact.params.has('reg-id'))
        contact.params.set('reg-id', '1');
    }
    req.setHeader('Contact', contact);
    req.setHeader('Expires', String(options?.expires ?? profile.get('defaultRegistrationExpires')));
    const tags = profile.get('supportedOptionTags');
    if (tags.length > 0) req.setHeader('Supported', tags.join(', '));
    this.made.set(req, {
      method: 'REGISTER',
      profile,
      start: () => {
        const usage = new ClientRegistration(this, req, profile, this.clientRegistration);
        usage.start();
        return usage.handle() as unknown as Handle<never>;
      },
    });
    return req;
  }

  /**
   * A SUBSCRIBE for `event` at `target` (RFC 6665 §4.1.2.1) built from `profile`, with
   * Event, Expires (default: the profile's defaultSubscriptionExpires), Accept (the
   * profile's MIME types), Contact and an optional body. `send` it to start a
   * `ClientSubscription`; a ClientSubscriptionHandler for the event must be added first.
   */
  makeSubscription(
    target: NameAddr | Uri | string,
    event: string,
    profile: Profile = this.masterProfile,
    options?: { expires?: number; body?: string | Uint8Array; contentType?: string },
  ): SipRequest {
    const pkg = event.split(';')[0]?.trim().toLowerCase() ?? '';
    const handler = this.clientSubscriptions.get(pkg);
    if (!handler)
      throw new DumError(
        'SIP_ERR_DUM_NO_HANDLER',
        `add a ClientSubscriptionHandler for '${pkg}' before subscribing`,
      );
    const req = this.buildRequest('SUBSCRIBE', asNameAddr(target), profile);
    req.setHeader('Event', event);
    req.setHeader('Expires', String(options?.expires ?? profile.get('defaultSubscriptionExpires')));
    req.setHeader('Accept', profile.get('supportedMimeTypes').join(', '));
    req.setHeader('Allow', profile.get('supportedMethods').join(', '));
    if (options?.body !== undefined) req.setBody(options.body, options.contentType ?? 'text/plain');
    this.made.set(req, {
      method: 'SUBSCRIBE',
      profile,
      start: () => {
        const usage = new ClientSubscription(this, req, profile, handler);
        usage.start();
        return usage.handle() as unknown as Handle<never>;
      },
    });
    return req;
  }

  /**
   * A PUBLISH of `body` for `event` at `target` (RFC 3903 §4.1) built from `profile`,
   * with Event and Expires (default: the profile's defaultPublicationExpires). `send`
   * it to start a `ClientPublication`.
   */
  makePublication(
    target: NameAddr | Uri | string,
    event: string,
    profile: Profile,
    body: string | Uint8Array,
    contentType: string,
    options?: { expires?: number },
  ): SipRequest {
    const pkg = event.split(';')[0]?.trim().toLowerCase() ?? '';
    const req = this.buildRequest('PUBLISH', asNameAddr(target), profile, { contact: false });
    req.setHeader('Event', event);
    req.setHeader('Expires', String(options?.expires ?? profile.get('defaultPublicationExpires')));
    req.setBody(body, contentType);
    this.made.set(req, {
      method: 'PUBLISH',
      profile,
      start: () => {
        const usage = new ClientPublication(this, req, profile, this.clientPublications.get(pkg));
        usage.start();
        return usage.handle() as unknown as Handle<never>;
      },
    });
    return req;
  }

  /** The invite session of a dialog, if the DUM has one. */
  findInviteSession(id: DialogId): Handle<InviteSession> | undefined {
    const dialog = this.dialogs.get(id.key);
    if (!dialog) return undefined;
    const session = this.dialogSets.get(id.dialogSetId.key)?.inviteSession;
    return session && !session.isEnded ? session.handle() : undefined;
  }

  /** @internal */
  addDialogSet(set: DialogSet): void {
    this.dialogSets.set(set.id.key, set);
  }

  /** @internal Forget a dialog set and every dialog in it. */
  removeDialogSet(set: DialogSet): void {
    for (const d of set.dialogs) this.removeDialog(d);
    if (this.dialogSets.get(set.id.key) !== set) return;
    this.dialogSets.delete(set.id.key);
    try {
      set.appDialogSet.onDestroyed?.();
    } catch (e) {
      this.logger.error({ err: e }, 'AppDialogSet.onDestroyed threw');
    }
  }

  /** @internal */
  addDialog(set: DialogSet, dialog: Dialog): void {
    set.put(dialog);
    this.dialogs.set(dialog.id.key, dialog);
  }

  /** @internal */
  removeDialog(dialog: Dialog): void {
    this.dialogSets.get(dialog.id.dialogSetId.key)?.delete(dialog);
    if (this.dialogs.get(dialog.id.key) === dialog) this.dialogs.delete(dialog.id.key);
  }

  /** Dialogs the DUM knows (early and confirmed). */
  get dialogCount(): number {
    return this.dialogs.size;
  }

  /** Send a request made by a `makeX` method; returns the handle of its usage. */
  send<T extends Handled = never>(request: SipRequest): Handle<T> {
    this.assertUp();
    const m = this.made.get(request);
    if (!m)
      throw new DumError(
        'SIP_ERR_DUM_STATE',
        'send() takes a request made by this DUM (makeOutOfDialogRequest, ...)',
      );
    this.made.delete(request);
    return m.start() as unknown as Handle<T>;
  }

  /**
   * @internal Send a request with a client transaction, answering 401/407 with the
   * profile's credentials and following 3xx through the RedirectManager; `onFinal`
   * gets the final response (a timeout or transport error arrives as a locally made
   * 408 or 503, without a transaction). For an INVITE, `onFinal` also gets the 2xx
   * retransmissions and the 2xx of other forks that its transaction passes on
   * (RFC 6026), and `onProvisional` the provisional responses.
   */
  sendClient(
    request: SipRequest,
    profile: Profile,
    onFinal: (res: SipResponse, tx: ClientTransactionLike | undefined) => void,
    onProvisional?: (res: SipResponse, tx: ClientTransactionLike) => void,
  ): void {
    const tried = new Set<string>([request.uri.toString()]);
    let retries = 0;
    const go = (req: SipRequest): void => {
      this.stack.sendRequest(req, {
        onResponse: (res, tx) => {
          if (res.status < 200) {
            onProvisional?.(res, tx);
            return;
          }
          if ((res.status === 401 || res.status === 407) && retries < MAX_RETRIES) {
            const again = this.clientAuthManager.handleChallenge(req, res, profile);
            if (again) {
              retries++;
              go(again);
              return;
            }
          }
          if (
            res.status >= 300 &&
            res.status < 400 &&
            retries < MAX_RETRIES &&
            tried.size < this.redirectManager.maxTargets
          ) {
            const target = this.redirectManager.targets(res, tried)[0];
            if (target) {
              retries++;
              tried.add(target.toString());
              const next = req.clone();
              next.uri = target;
              next.setHeader('CSeq', `${req.cseq.seq + 1} ${req.cseq.method}`);
              next.removeHeader('Via');
              go(next);
              return;
            }
          }
          onFinal(res, tx);
        },
        onError: (err) => {
          const status = err.code === 'SIP_ERR_TX_TIMEOUT' ? 408 : 503;
          onFinal(
            createResponse(
              req,
              status,
              `${status === 408 ? 'Request Timeout' : 'Service Unavailable'} (${err.message})`,
              { toTag: this.newTag() },
            ),
            undefined,
          );
        },
      });
    };
    if (profile.get('preemptiveAuth'))
      this.clientAuthManager.addCachedCredentials(request, profile);
    go(request);
  }

  // ---- receiving (the TransactionUser side) ----

  onRequest(
    request: SipRequest,
    tx: ServerTransactionLike | undefined,
    received: ReceivedInfo,
  ): void {
    if (!tx) {
      // An ACK outside any transaction: the ACK for a 2xx, for the dialog's session.
      if (request.method === 'ACK') this.receiveAck(request);
      return;
    }
    try {
      this.dispatch(request, tx, received);
    } catch (e) {
      this.logger.error({ err: e }, 'a handler threw while handling a request');
      if (tx.state === 'trying' || tx.state === 'proceeding') {
        try {
          tx.respond(createResponse(request, 500, undefined, { toTag: this.newTag() }));
        } catch {
          /* already answered */
        }
      }
    }
  }

  onCancel(invite: ServerTransactionLike, cancel: SipRequest): void {
    const session = this.invitesByTx.get(invite);
    if (session && !session.isEnded) {
      session.receiveCancel(cancel);
      return;
    }
    invite.respond(
      createResponse((invite as unknown as { request: SipRequest }).request, 487, undefined, {
        toTag: this.newTag(),
      }),
    );
  }

  /** A response that matched no transaction: a 2xx to an INVITE whose transaction ended goes to its session. */
  onStrayResponse(response: SipResponse): void {
    try {
      if (response.status < 200 || response.status >= 300 || response.cseq.method !== 'INVITE')
        return;
      const set = this.dialogSets.get(DialogSetId.of(response, 'from').key);
      if (set?.side === 'uac') set.inviteSession?.receiveStray2xx(response);
    } catch (e) {
      this.logger.warn({ err: e }, 'a stray response could not be handled');
    }
  }

  /** The ACK for a 2xx (§13.3.1.4, §17.2.3): to the session of its dialog; others are dropped. */
  private receiveAck(ack: SipRequest): void {
    try {
      const tag = ack.to.tag;
      if (tag === undefined) return;
      const id = new DialogId(ack.callId, tag, ack.from.tag ?? '');
      if (!this.dialogs.has(id.key)) return;
      this.dialogSets.get(id.dialogSetId.key)?.inviteSession?.receiveAck(ack);
    } catch (e) {
      this.logger.error({ err: e }, 'an ACK could not be handled');
    }
  }

  private reply(
    request: SipRequest,
    tx: ServerTransactionLike,
    status: number,
    headers?: [string, string][],
    reason?: string,
  ): void {
    const res = createResponse(request, status, reason, {
      toTag: this.newTag(),
      ...(headers ? { headers } : {}),
    });
    this.decorate(res);
    tx.respond(res);
  }

  /** Checks of RFC 3261 §8.2, then hand the request to its usage. */
  private dispatch(request: SipRequest, tx: ServerTransactionLike, received: ReceivedInfo): void {
    const method = request.method;
    const profile = this.masterProfile;
    // Shutting down: no new usages; requests within dialogs still reach theirs (the final NOTIFY, a BYE).
    if (this.shuttingDown && request.to.tag === undefined) {
      this.reply(request, tx, 503, [['Retry-After', '5']]);
      return;
    }
    // §8.2.1: a method we do not support: 405 with Allow.
    if (!profile.isMethodSupported(method)) {
      this.reply(request, tx, 405, [['Allow', profile.get('supportedMethods').join(', ')]]);
      return;
    }
    // §8.2.2.1: a Request-URI scheme we do not support: 416 (RFC 4475 §3.3.2, §3.3.3).
    let scheme: string;
    try {
      scheme = request.uri.scheme;
    } catch {
      this.reply(request, tx, 400, undefined, 'Bad Request (malformed Request-URI)');
      return;
    }
    if (!profile.isSchemeSupported(scheme)) {
      this.reply(request, tx, 416);
      return;
    }
    // §8.2.2.3: option tags in Require we do not understand: 420 with Unsupported (RFC 4475 §3.3.5).
    if (method !== 'CANCEL') {
      const required = request.getAll<string>('Require');
      const known = profile.get('supportedOptionTags');
      const unknown = required.filter((t) => !known.includes(t.toLowerCase()));
      if (unknown.length > 0) {
        this.reply(request, tx, 420, [['Unsupported', unknown.join(', ')]]);
        return;
      }
    }
    // §8.2.3: a body we cannot handle: 415 with Accept (RFC 4475 §3.3.6).
    if (request.body.length > 0) {
      let ct: string | undefined;
      try {
        ct = request.contentType?.mimeType;
      } catch {
        this.reply(request, tx, 400, undefined, 'Bad Request (malformed Content-Type)');
        return;
      }
      const encoding = request.header('Content-Encoding');
      if (
        !ct ||
        !profile.isMimeTypeSupported(ct) ||
        (encoding !== undefined && encoding.toLowerCase() !== 'identity')
      ) {
        this.reply(request, tx, 415, [
          ['Accept', profile.get('supportedMimeTypes').join(', ')],
          ['Accept-Encoding', 'identity'],
        ]);
        return;
      }
    }
    // A request within a dialog: to the dialog's session, or 481 (§12.2.2).
    const toTag = request.to.tag;
    if (toTag !== undefined) {
      if (method === 'SUBSCRIBE' || method === 'NOTIFY') {
        // A subscription's dialog set (for a NOTIFY, possibly before its dialog exists).
        const set = this.dialogSets.get(new DialogSetId(request.callId, toTag).key);
        const usage = set?.subscriptionUsage;
        if (usage) {
          const dialog = this.dialogs.get(
            new DialogId(request.callId, toTag, request.from.tag ?? '').key,
          );
          usage.receiveRequest(request, tx, dialog);
          return;
        }
      }
      const id = new DialogId(request.callId, toTag, request.from.tag ?? '');
      const dialog = this.dialogs.get(id.key);
      const session = dialog && this.dialogSets.get(id.dialogSetId.key)?.inviteSession;
      if (dialog && session && !session.isEnded) session.receiveRequest(request, tx, dialog);
      else this.reply(request, tx, 481);
      return;
    }
    const auth = this.serverAuth;
    if (
      auth &&
      (auth.methods === undefined
        ? method !== 'ACK' && method !== 'CANCEL'
        : auth.methods.has(method))
    ) {
      auth.manager.verify(request).then(
        (result) => {
          if (tx.state !== 'trying' && tx.state !== 'proceeding') return;
          if (result.outcome === 'ok') this.route(request, tx, received);
          else if (result.outcome === 'failed' && result.reason === 'replayed nonce count')
            this.reply(request, tx, 403);
          else {
            const res = auth.manager.challenge(request, {
              stale: result.outcome === 'stale',
              toTag: this.newTag(),
            });
            this.decorate(res);
            tx.respond(res);
          }
        },
        (e: unknown) => {
          this.logger.error({ err: e }, 'credential lookup failed');
          if (tx.state === 'trying' || tx.state === 'proceeding') this.reply(request, tx, 500);
        },
      );
      return;
    }
    this.route(request, tx, received);
  }

  /** Hand an out-of-dialog request to its usage. */
  private route(request: SipRequest, tx: ServerTransactionLike, received: ReceivedInfo): void {
    const method = request.method;
    if (method === 'INVITE' && this.inviteHandler) {
      const contact = request.contacts[0];
      if (!contact || contact.star) {
        // §8.1.1.8: a dialog-creating request carries one Contact.
        this.reply(request, tx, 400, undefined, 'Bad Request (an INVITE needs a Contact)');
        return;
      }
      // §8.2.3 / §21.4.7: our answer would carry SDP; an Accept without it gets 406
      // (RFC 4475 §3.3.15).
      if (!acceptsSdp(request)) {
        this.reply(request, tx, 406, [['Accept', 'application/sdp']]);
        return;
      }
      const session = new ServerInviteSession(
        this,
        request,
        tx,
        received,
        this.masterProfile,
        this.inviteHandler,
      );
      this.invitesByTx.set(tx, session);
      session.start();
      return;
    }
    if (method === 'REGISTER' && this.serverRegistration) {
      const usage = new ServerRegistration(
        this,
        request,
        tx,
        this.serverRegistration,
        this.registrationPersistenceManager,
      );
      void usage.start();
      return;
    }
    if (method === 'SUBSCRIBE') {
      this.receiveSubscribe(request, tx);
      return;
    }
    if (method === 'PUBLISH' && this.serverPublications.size > 0) {
      receivePublish(
        this,
        request,
        tx,
        this.serverPublications,
        this.publicationStore,
        this.publicationsByEtag,
      ).catch((e: unknown) => this.logger.error({ err: e }, 'a PUBLISH could not be handled'));
      return;
    }
    if (method === 'MESSAGE' && this.serverPager) {
      const usage = new ServerPagerMessage(this, request, tx);
      this.serverPager.onMessageArrived(usage.handle(), request);
      return;
    }
    const h = this.outOfDialog.get(method);
    if (h?.onReceivedRequest) {
      const usage = new ServerOutOfDialogReq(this, request, tx);
      h.onReceivedRequest(usage.handle(), request);
      return;
    }
    if (LOCAL_TARGET_METHODS.has(method)) {
      // OPTIONS: answered from the profile's capabilities (§11.2).
      new ServerOutOfDialogReq(this, request, tx).accept(200);
      return;
    }
    // A supported method that no usage in this DUM takes yet.
    this.reply(request, tx, 501, undefined, `Not Implemented (no handler for ${method})`);
  }

  /** A SUBSCRIBE outside a dialog (RFC 6665 §4.2.1): 489 for an event we do not serve. */
  private receiveSubscribe(request: SipRequest, tx: ServerTransactionLike): void {
    let pkg: string | undefined;
    try {
      pkg = request.get<{ package: string }>('Event')?.package.toLowerCase();
    } catch {
      pkg = undefined;
    }
    const events = this.masterProfile.get('supportedEvents');
    const handler = pkg === undefined ? undefined : this.serverSubscriptions.get(pkg);
    if (pkg === undefined || !handler || !events.includes(pkg)) {
      this.reply(request, tx, 489, [['Allow-Events', events.join(', ')]]);
      return;
    }
    const contact = request.contacts[0];
    if (!contact || contact.star) {
      replyIn(this, request, tx, 400, 'Bad Request (a SUBSCRIBE needs a Contact)');
      return;
    }
    new ServerSubscription(this, request, tx, handler).start();
  }

  /** @internal Allow, Accept, Supported and Accept-Language, as an OPTIONS answer carries them (§11.2). */
  addCapabilities(res: SipResponse): void {
    const p = this.masterProfile;
    res.setHeader('Allow', p.get('supportedMethods').join(', '));
    res.setHeader('Accept', p.get('supportedMimeTypes').join(', '));
    res.setHeader('Accept-Language', p.get('supportedLanguages').join(', '));
    const tags = p.get('supportedOptionTags');
    if (tags.length > 0) res.setHeader('Supported', tags.join(', '));
  }

  /** @internal Headers every response of ours carries (Server). */
  decorate(res: SipResponse): void {
    const ua = this.masterProfile.get('userAgent');
    if (ua && !res.has('Server')) res.setHeader('Server', ua);
  }

  private assertUp(): void {
    if (this.shuttingDown) throw new DumError('SIP_ERR_DUM_SHUTDOWN', 'the DUM is shutting down');
  }

  /** The application's object for a new incoming dialog set. */
  makeAppDialogSet(request: SipRequest): ReturnType<AppDialogSetFactory> {
    return this.appDialogSetFactory(request);
  }

  /**
   * End every usage and stop taking requests (new ones get 503). Resolves when it is
   * safe to exit: every usage has ended (or `timeoutMs` passed, default 32 s) and, when
   * the DUM made its stack, the stack has stopped.
   */
  async shutdown(options?: { timeoutMs?: number }): Promise<void> {
    this.shuttingDown = true;
    for (const u of this.handles.all()) {
      // A publication's state stays in its store, for other state agents or a restart.
      if (u instanceof ServerPublication) u.release();
      else (u as { end?: () => void }).end?.();
    }
    const timeoutMs = options?.timeoutMs ?? 32_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.handles.whenEmpty(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        (timer as { unref?: () => void }).unref?.();
      }),
    ]);
    if (timer) clearTimeout(timer);
    this.ownPersistence?.close();
    if (this.ownsStack) await this.stack.stop();
  }
}

function asNameAddr(t: NameAddr | Uri | string): NameAddr {
  if (t instanceof NameAddr) return t;
  if (t instanceof Uri) return new NameAddr(t);
  return t.includes('<')
    ? (parseHeader<NameAddr>('To', t)[0] as NameAddr)
    : new NameAddr(parseUri(t));
}

/**
 * Whether a request's Accept header fields (all of them; none means application/sdp,
 * RFC 3261 §20.1) admit an SDP body in the answer. An unreadable Accept admits it: the
 * request is not refused for a header we cannot read.
 */
function acceptsSdp(request: SipRequest): boolean {
  if (!request.has('Accept')) return true;
  try {
    const types = request.getAll<MediaType>('Accept');
    return types.length === 0 || types.some((t) => t.matches('application/sdp'));
  } catch {
    return true;
  }
}

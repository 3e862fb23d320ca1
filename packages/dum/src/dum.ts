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
  type Flow,
  type Logger,
  type ReceivedInfo,
  type ServerTransactionLike,
  SipStack,
  type SipStackOptions,
  sentByHost,
  silentLogger,
  type TransactionUser,
  type Transport,
} from '@sipworks/stack';
import { ClientAuthManager } from './client-auth.ts';
import type { Dialog } from './dialog.ts';
import { DialogSet, type SubscriptionUsage } from './dialog-set.ts';
import { randomHex } from './digest.ts';
import { DumError } from './errors.ts';
import { type EventState, latestPublication, type PublicationComposer } from './event-state.ts';
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
import { Handle, type Handled, HandleManager } from './handles.ts';
import { DialogId, DialogSetId } from './ids.ts';
import {
  type InviteSessionEvent,
  type InviteSessionObserver,
  InviteSessionObservers,
} from './invite-observer.ts';
import { MasterProfile, type Profile, UserProfile } from './profile.ts';
import { RedirectManager } from './redirect.ts';
import { InMemoryRegistrationPersistence } from './registration-persistence.ts';
import { checkReplaces, replacingHandler } from './replaces.ts';
import type { ServerAuthManager } from './server-auth.ts';
import { ClientInviteSession } from './usages/client-invite-session.ts';
import { ClientPublication } from './usages/client-publication.ts';
import { ClientRegistration } from './usages/client-registration.ts';
import { ClientSubscription, reply as replyIn } from './usages/client-subscription.ts';
import type { InviteSession } from './usages/invite-session.ts';
import { ClientOutOfDialogReq, ServerOutOfDialogReq } from './usages/out-of-dialog.ts';
import { ClientPagerMessage, ServerPagerMessage } from './usages/pager.ts';
import {
  decorateOutOfDialogRefer,
  dialogIdOf,
  inviteFromRefer,
  notifyingHandler,
  type ReferOptions,
  type ReferRequestInfo,
  readRefer,
  receiveOutOfDialogRefer,
  replacesValue,
  type ServerReferSubscription,
  startOutOfDialogRefer,
} from './usages/refer.ts';
import { ServerInviteSession } from './usages/server-invite-session.ts';
import {
  InMemoryPublicationStore,
  type PublicationStore,
  receivePublish,
  ServerPublication,
} from './usages/server-publication.ts';
import { type RegistrarOptions, ServerRegistration } from './usages/server-registration.ts';
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
  /**
   * A uniform random number in [0, 1), for randomised waits (the retry after a 491,
   * RFC 3261 §14.1). Default: `Math.random`; a test can make it deterministic.
   */
  random?: () => number;
}

/** The NOTIFY body type of the event packages sipworks knows (RFC 3856, RFC 3842, RFC 4235). */
const EVENT_BODY_TYPES: Record<string, string> = {
  presence: 'application/pidf+xml',
  'message-summary': 'application/simple-message-summary',
  dialog: 'application/dialog-info+xml',
};

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
  /** Without one, a dialog set makes an empty object when its `appDialogSet` is first read. */
  private readonly appDialogSetFactory: AppDialogSetFactory | undefined;
  /** Requests made by makeX, waiting for send(). */
  private readonly made = new WeakMap<
    SipRequest,
    { method: string; profile: Profile; start: () => Handle<never> }
  >();
  /** AppDialogSets given to `send` for the requests they go with. */
  private readonly givenAppDialogSets = new WeakMap<SipRequest, AppDialogSet>();
  /** Dialog sets by `DialogSetId` key. */
  private readonly dialogSets = new Map<string, DialogSet>();
  /** Dialogs by `DialogId` key. */
  private readonly dialogs = new Map<string, Dialog>();
  /** The invite session of each INVITE server transaction (initial or re-INVITE), for CANCEL (§9.2). */
  private readonly invitesByTx = new WeakMap<ServerTransactionLike, InviteSession>();
  private readonly ownsStack: boolean;
  private shuttingDown = false;
  private tagCounter = 0;
  private readonly tagPrefix = randomHex(3);
  /** @internal Uniform in [0, 1): randomised waits. */
  readonly random: () => number;

  constructor(options: DialogUsageManagerOptions = {}) {
    this.ownsStack = options.stack === undefined;
    this.stack = options.stack ?? new SipStack(options.stackOptions);
    this.masterProfile = options.masterProfile ?? new MasterProfile();
    this.clientAuthManager = options.clientAuthManager ?? new ClientAuthManager();
    this.redirectManager = options.redirectManager ?? new RedirectManager();
    this.appDialogSetFactory = options.appDialogSetFactory;
    this.logger = options.logger ?? silentLogger;
    this.random = options.random ?? Math.random;
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
  /** Watch every invite session (created, provisional, confirmed, terminated) besides the handler. */
  addInviteSessionObserver(o: InviteSessionObserver): void {
    this.inviteObservers.add(o);
  }
  removeInviteSessionObserver(o: InviteSessionObserver): void {
    this.inviteObservers.remove(o);
  }
  /** @internal Tell the observers of an invite session event. */
  observeInvite(event: InviteSessionEvent): void {
    this.inviteObservers.emit(event);
  }
  private readonly inviteObservers = new InviteSessionObservers((e) =>
    this.logger.error({ err: e }, 'an InviteSessionObserver threw'),
  );
  setClientRegistrationHandler(h: ClientRegistrationHandler | undefined): void {
    this.clientRegistration = h;
  }
  /**
   * Be a registrar (RFC 3261 §10.3): REGISTER is added to the supported methods, and
   * `path` to the option tags (a registrar stores Path, RFC 3327 §5.3, so a REGISTER
   * with `Require: path` is taken).
   */
  setServerRegistrationHandler(h: ServerRegistrationHandler | undefined): void {
    this.serverRegistration = h;
    if (!h) return;
    const methods = this.masterProfile.get('supportedMethods');
    if (!methods.includes('REGISTER'))
      this.masterProfile.set('supportedMethods', [...methods, 'REGISTER']);
    const tags = this.masterProfile.get('supportedOptionTags');
    if (!tags.includes('path')) this.masterProfile.set('supportedOptionTags', [...tags, 'path']);
  }
  /**
   * Be a subscriber for `event` (RFC 6665 §4.1). For the packages sipworks knows
   * (`presence`, `message-summary`, `dialog`), the body type of their NOTIFYs is added
   * to the master profile's supportedMimeTypes, so that they are not refused with 415.
   */
  addClientSubscriptionHandler(event: string, h: ClientSubscriptionHandler): void {
    const e = event.toLowerCase();
    this.clientSubscriptions.set(e, h);
    const type = EVENT_BODY_TYPES[e];
    const types = this.masterProfile.get('supportedMimeTypes');
    if (type && !types.some((t) => t.toLowerCase() === type))
      this.masterProfile.set('supportedMimeTypes', [...types, type]);
  }
  /** Be a notifier for `event` (RFC 6665 §4.2): the event is added to the master profile's supportedEvents. */
  addServerSubscriptionHandler(event: string, h: ServerSubscriptionHandler): void {
    const e = event.toLowerCase();
    this.serverSubscriptions.set(e, h);
    const events = this.masterProfile.get('supportedEvents');
    if (!events.includes(e)) this.masterProfile.set('supportedEvents', [...events, e]);
  }
  /** @internal The ClientSubscriptionHandler added for `event`. */
  clientSubscriptionHandler(event: string): ClientSubscriptionHandler | undefined {
    return this.clientSubscriptions.get(event.toLowerCase());
  }
  /** @internal The notifier handler of an event package. */
  serverSubscriptionHandler(event: string): ServerSubscriptionHandler | undefined {
    const e = event.toLowerCase();
    return this.masterProfile.get('supportedEvents').includes(e)
      ? this.serverSubscriptions.get(e)
      : undefined;
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
  /**
   * How the state of `event` is composed from its publications for the resource's
   * subscribers (RFC 3903 §2); `false` turns the automatic NOTIFYs off for the event.
   * Default: `latestPublication`.
   */
  setPublicationComposer(event: string, composer: PublicationComposer | false | undefined): void {
    const e = event.toLowerCase();
    if (composer === undefined) this.composers.delete(e);
    else this.composers.set(e, composer);
  }
  private readonly composers = new Map<string, PublicationComposer | false>();
  /** Live notifier subscriptions by event and resource, for the publication fan-out. */
  private readonly subscribers = new Map<string, Set<ServerSubscription>>();

  /** @internal A server subscription starts (`live`) or ends. */
  trackServerSubscription(sub: ServerSubscription, live: boolean): void {
    const key = `${sub.event} ${sub.resource}`;
    let set = this.subscribers.get(key);
    if (live) {
      if (!set) this.subscribers.set(key, (set = new Set()));
      set.add(sub);
    } else if (set) {
      set.delete(sub);
      if (set.size === 0) this.subscribers.delete(key);
    }
  }

  /** @internal The composed state of a resource and event (undefined: none), from the publication store. */
  async composeState(resource: string, event: string): Promise<EventState | undefined> {
    const c = this.composers.get(event);
    const compose = c === false || c === undefined ? latestPublication : c;
    const states = await this.publicationStore.find(resource, event);
    try {
      return compose(resource, event, states);
    } catch (e) {
      this.logger.error({ err: e }, `the ${event} compositor threw`);
      return undefined;
    }
  }

  /**
   * @internal A publication of `resource` was created, modified, removed or expired: each
   * active subscription to the same resource and event gets a NOTIFY with the composed state.
   */
  publicationChanged(resource: string, event: string): void {
    if (this.composers.get(event) === false) return;
    const key = `${event} ${resource}`;
    if (!this.subscribers.get(key)?.size) return;
    // One composition for every subscriber; those still there when it is ready get it.
    this.composeState(resource, event).then(
      (state) => {
        for (const sub of [...(this.subscribers.get(key) ?? [])]) {
          try {
            sub.statePublished(state);
          } catch (e) {
            this.logger.error({ err: e }, 'a NOTIFY of published state could not be sent');
          }
        }
      },
      (e: unknown) => {
        this.logger.error({ err: e }, 'the publication store failed: subscribers not notified');
      },
    );
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
  /** What the registrar adds to its 2xx answers (Service-Route, RFC 3608 §5). */
  setRegistrarOptions(options: RegistrarOptions): void {
    this.registrarOpts = { ...options };
  }
  /** The registrar's options, as last set. */
  get registrarOptions(): Readonly<RegistrarOptions> {
    return this.registrarOpts;
  }
  private registrarOpts: RegistrarOptions = {};
  /**
   * @internal The registrar's routes over flows (RFC 5626 §5.3), by binding key: the
   * function that removes each (see `SipStack.routeOverFlow`).
   */
  readonly registrarFlowRoutes = new Map<string, () => void>();
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

  /**
   * Our Contact: the profile's override, else its GRUU (RFC 5627 §4.3, not for a
   * REGISTER), else the address of the stack's first transport (matching the target's
   * transport), with `+sip.instance` when the profile has an instance id and `;ob` when
   * it uses outbound (RFC 5626 §4.2.1, §5.4).
   */
  contactFor(profile: Profile, target?: Uri, options?: { register?: boolean }): NameAddr {
    const override = profile.get('overrideContact');
    if (override) return override.clone();
    if (!options?.register) {
      const which = profile.get('gruuContact');
      const gruu =
        which === 'public'
          ? (profile.get('publicGruu') ?? profile.get('tempGruu'))
          : which === 'temporary'
            ? profile.get('tempGruu')
            : undefined;
      if (gruu) return new NameAddr(gruu.clone());
    }
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
      // Port 0: a transport with no port of its own (a WebSocket client, RFC 7118 §5.2).
      port: sentBy.port || undefined,
      params,
    });
    const instance = profile.get('instanceId');
    if (instance && profile.get('outbound')) uri.params.set('ob');
    const c = new NameAddr(uri);
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
    // RFC 3608 §6.1: the Service-Route of the registration is the preloaded route set.
    if (method !== 'REGISTER')
      for (const r of profile.get('serviceRoute')) headers.push(['Route', r.toString()]);
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
   * and the offer is expected in the 2xx (late offer). `replaces` puts a Replaces header
   * (RFC 3891 §4) naming that dialog, as this UA sees it when the target is its remote
   * party (a `DialogId` or a session's handle), or given as the header's text. `send` it
   * to start a `ClientInviteSession`.
   */
  makeInviteSession(
    target: NameAddr | Uri | string,
    profile: Profile = this.masterProfile,
    options?: {
      body?: string | Uint8Array;
      contentType?: string;
      replaces?: DialogId | Handle<InviteSession> | string;
      /** With `replaces`: only an early dialog may be replaced (RFC 3891 §6.1). */
      earlyOnly?: boolean;
    },
  ): SipRequest {
    return this.inviteRequest(target, profile, options, this.inviteHandler);
  }

  /**
   * An INVITE for a REFER (RFC 3515 §2.4.2): to the Refer-To URI, with the Replaces
   * embedded in it (RFC 3891) and the REFER's Referred-By (RFC 3892) as headers, and
   * `offer` as its body. Given the REFER's subscription, once sent the call's
   * provisional and final responses are reported to the referrer as sipfrag NOTIFYs
   * (the final one ends the subscription): accept the REFER (`acceptRefer`) first.
   * Given the REFER request itself (as for `Refer-Sub: false`, whose usage ends when it
   * is accepted), nothing is reported.
   */
  makeInviteSessionFromRefer(
    refer: Handle<ServerReferSubscription> | SipRequest,
    profile: Profile = this.masterProfile,
    offer?: { body: string | Uint8Array; contentType?: string },
  ): SipRequest {
    let info: ReferRequestInfo;
    let report: Handle<ServerReferSubscription> | undefined;
    if (refer instanceof Handle) {
      const sub = refer.get();
      info = sub;
      report = sub.referSub ? refer : undefined;
    } else {
      const read = readRefer(refer);
      if (typeof read === 'string') throw new DumError('SIP_ERR_DUM_STATE', read);
      info = read;
    }
    const { target, headers } = inviteFromRefer(info);
    const app = this.inviteHandler;
    const req = this.inviteRequest(
      target,
      profile,
      offer,
      app && report ? notifyingHandler(this, app, report) : app,
    );
    for (const [name, value] of headers) req.setHeader(name, value);
    return req;
  }

  /**
   * A REFER outside any dialog to `target` (RFC 3515 §2.4.1), asking it to contact
   * `referTo`, built from `profile`: Refer-To, Referred-By (the profile's address of
   * record unless `referredBy` says otherwise), Contact, and `Refer-Sub: false` for
   * `referSub: false` (RFC 4488). `send` it to start a `ClientSubscription` for
   * `refer`, reported to the ClientSubscriptionHandler added for `refer`
   * (`onReferAccepted`, `onReferRejected`, `onReferProgress`, `onTerminated`).
   */
  makeRefer(
    target: NameAddr | Uri | string,
    referTo: NameAddr | Uri | string,
    profile: Profile = this.masterProfile,
    options: ReferOptions = {},
  ): SipRequest {
    const req = this.buildRequest('REFER', asNameAddr(target), profile);
    decorateOutOfDialogRefer(req, referTo, profile, options);
    req.setHeader('Allow', profile.get('supportedMethods').join(', '));
    this.made.set(req, {
      method: 'REFER',
      profile,
      start: () => startOutOfDialogRefer(this, req, profile, options) as unknown as Handle<never>,
    });
    return req;
  }

  private inviteRequest(
    target: NameAddr | Uri | string,
    profile: Profile,
    options:
      | {
          body?: string | Uint8Array;
          contentType?: string;
          replaces?: DialogId | Handle<InviteSession> | string;
          earlyOnly?: boolean;
        }
      | undefined,
    handler: InviteSessionHandler | undefined,
  ): SipRequest {
    if (!handler)
      throw new DumError(
        'SIP_ERR_DUM_NO_HANDLER',
        'set an InviteSessionHandler before making invite sessions',
      );
    const req = this.buildRequest('INVITE', asNameAddr(target), profile);
    req.setHeader('Allow', profile.get('supportedMethods').join(', '));
    const tags = profile.optionTags();
    if (tags.length > 0) req.setHeader('Supported', tags.join(', '));
    // RFC 3262 §4: a UAC that insists on reliable provisional responses requires 100rel.
    if (profile.get('prack') === 'required') req.setHeader('Require', '100rel');
    if (options?.body !== undefined)
      req.setBody(options.body, options.contentType ?? 'application/sdp');
    const replaces = options?.replaces;
    if (replaces !== undefined) {
      const value =
        typeof replaces === 'string'
          ? replaces
          : replacesValue(dialogIdOf(replaces), options?.earlyOnly ?? false);
      parseHeader('Replaces', value);
      req.setHeader('Replaces', value);
    }
    this.made.set(req, {
      method: 'INVITE',
      profile,
      start: () => {
        const set = new DialogSet(
          DialogSetId.of(req, 'from').compact(),
          'uac',
          req,
          this.makeAppDialogSet(req),
        );
        this.addDialogSet(set);
        const usage = new ClientInviteSession(this, set, profile, handler);
        this.observeInvite({
          type: 'created',
          session: usage,
          direction: 'initiator',
          request: req,
        });
        usage.start();
        return usage.handle() as unknown as Handle<never>;
      },
    });
    return req;
  }

  /**
   * A REGISTER for `aor` (default: the profile's) (RFC 3261 §10.2): Request-URI the
   * registrar (the profile's outbound proxy, else the domain of the address of record),
   * To and From the address of record, Contact ours unless `contact` is given, Expires
   * (default: the profile's defaultRegistrationExpires) and Supported. With an instance id
   * the Contact has `+sip.instance` and Supported has `gruu` (RFC 5627 §4.1); with
   * `outbound` too, the Contact has `reg-id` and `;ob` and Supported has `outbound, path`
   * (RFC 5626 §4.2.1). `send` it to start a `ClientRegistration`.
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
      contact = this.contactFor(profile, registrar, { register: true });
      // RFC 5626 §4.2.1: reg-id names the flow; only with outbound.
      if (profile.get('instanceId') && profile.get('outbound') && !contact.params.has('reg-id'))
        contact.params.set('reg-id', String(profile.get('regId')));
    }
    req.setHeader('Contact', contact);
    req.setHeader('Expires', String(options?.expires ?? profile.get('defaultRegistrationExpires')));
    const tags = [...profile.get('supportedOptionTags')];
    const add = (t: string): void => {
      if (!tags.includes(t)) tags.push(t);
    };
    if (profile.get('instanceId')) {
      // RFC 5627 §4.1: ask for GRUUs; RFC 5626 §4.2.1: outbound needs path too.
      if (profile.get('outbound')) {
        add('outbound');
        add('path');
      }
      add('gruu');
    }
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
    const handler = this.subscriberFor(event);
    const req = this.buildRequest('SUBSCRIBE', asNameAddr(target), profile);
    decorateSubscribe(req, event, profile, options);
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

  /** The ClientSubscriptionHandler of `event`'s package; a subscription needs one. */
  private subscriberFor(event: string): ClientSubscriptionHandler {
    const pkg = event.split(';')[0]?.trim().toLowerCase() ?? '';
    const handler = this.clientSubscriptions.get(pkg);
    if (!handler)
      throw new DumError(
        'SIP_ERR_DUM_NO_HANDLER',
        `add a ClientSubscriptionHandler for '${pkg}' before subscribing`,
      );
    return handler;
  }

  /**
   * A SUBSCRIBE for `event` (another package, or the same package with another `id`
   * parameter) in the dialog of an existing subscription (RFC 6665 §4.5.2): the dialog's
   * Call-ID, tags, route set and next CSeq, with Event, Expires, Accept and Allow.
   * `send` it to start a `ClientSubscription` that shares the dialog; NOTIFYs of the
   * dialog reach each subscription by their Event package and id.
   */
  makeSubscriptionInDialog(
    existing: Handle<ClientSubscription>,
    event: string,
    options?: { expires?: number; body?: string | Uint8Array; contentType?: string },
  ): SipRequest {
    const sub = existing.get();
    const dialog = sub.dialog;
    if (!dialog || sub.isEnded || sub.state === 'ending')
      throw new DumError('SIP_ERR_DUM_STATE', 'the subscription has no dialog to share yet');
    const handler = this.subscriberFor(event);
    const profile = sub.userProfile;
    const req = dialog.makeRequest('SUBSCRIBE');
    decorateSubscribe(req, event, profile, options);
    this.made.set(req, {
      method: 'SUBSCRIBE',
      profile,
      start: () => {
        const usage = new ClientSubscription(this, req, profile, handler);
        usage.startInDialog(sub, req);
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

  /** The subscriptions we made (subscriber side) that live in a dialog. */
  findClientSubscriptions(id: DialogId): Handle<ClientSubscription>[] {
    return this.subscriptionsIn(id)
      .filter((s): s is ClientSubscription => s.kind === 'ClientSubscription')
      .map((s) => s.handle());
  }

  /** The subscriptions we serve (notifier side) that live in a dialog. */
  findServerSubscriptions(id: DialogId): Handle<ServerSubscription>[] {
    return this.subscriptionsIn(id)
      .filter((s): s is ServerSubscription => s.kind === 'ServerSubscription')
      .map((s) => s.handle());
  }

  /** The application's object of a dialog set (an incoming request's, or the one given to `send`). */
  findAppDialogSet(id: DialogSetId): AppDialogSet | undefined {
    return this.dialogSets.get(id.key)?.appDialogSet;
  }

  private subscriptionsIn(id: DialogId): readonly SubscriptionUsage[] {
    if (!this.dialogs.has(id.key)) return [];
    const usage = this.dialogSets.get(id.dialogSetId.key)?.subscriptionUsage;
    return usage ? usage.subscriptionsIn(id.remoteTag) : [];
  }

  /** @internal */
  addDialogSet(set: DialogSet): void {
    // The id is compact (see DialogSetId.compact): its key is the table's key.
    this.dialogSets.set(set.id.key, set);
  }

  /** @internal Forget a dialog set and every dialog in it. */
  removeDialogSet(set: DialogSet): void {
    for (const d of set.dialogs) this.removeDialog(d);
    if (this.dialogSets.get(set.id.key) !== set) return;
    this.dialogSets.delete(set.id.key);
    try {
      set.appDialogSetIfAny?.onDestroyed?.();
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

  /**
   * Send a request made by a `makeX` method; returns the handle of its usage. A dialog-
   * creating request (INVITE, SUBSCRIBE, REFER) may bring the application's own object for
   * its dialog set (reSIProcate's AppDialogSet); otherwise the factory makes one.
   */
  send<T extends Handled = never>(
    request: SipRequest,
    options?: { appDialogSet?: AppDialogSet },
  ): Handle<T> {
    this.assertUp();
    if (options?.appDialogSet) this.givenAppDialogSets.set(request, options.appDialogSet);
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
            const auth = this.clientAuthManager;
            if (auth.isAsync) {
              // Hashing answers later (WebCrypto, in a browser): retry when it has.
              auth.handleChallengeAsync(req, res, profile).then(
                (again) => {
                  if (!again) return onFinal(res, tx);
                  retries++;
                  go(again);
                },
                (err: unknown) => {
                  this.logger.error({ err }, 'could not compute digest credentials');
                  onFinal(res, tx);
                },
              );
              return;
            }
            const again = auth.handleChallenge(req, res, profile);
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
    if (!profile.get('preemptiveAuth')) go(request);
    else if (!this.clientAuthManager.isAsync) {
      this.clientAuthManager.addCachedCredentials(request, profile);
      go(request);
    } else {
      this.clientAuthManager.addCachedCredentialsAsync(request, profile).then(
        () => go(request),
        (err: unknown) => {
          this.logger.error({ err }, 'could not compute cached digest credentials');
          go(request);
        },
      );
    }
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
      session.receiveCancel(cancel, invite);
      return;
    }
    invite.respond(
      createResponse((invite as unknown as { request: SipRequest }).request, 487, undefined, {
        toTag: this.newTag(),
      }),
    );
  }

  /**
   * @internal Call `onClosed` when the connection of `flow` closes (RFC 5626 §4.4: a
   * failed flow). Returns the function that stops watching.
   */
  watchFlow(flow: Flow, onClosed: () => void): () => void {
    const id = flow.destination.connectionId;
    if (id === undefined) return () => {};
    let byId = this.flowWatchers.get(flow.transport);
    if (!byId) this.flowWatchers.set(flow.transport, (byId = new Map()));
    let set = byId.get(id);
    if (!set) byId.set(id, (set = new Set()));
    set.add(onClosed);
    return () => {
      const m = this.flowWatchers.get(flow.transport);
      const s = m?.get(id);
      s?.delete(onClosed);
      if (s?.size === 0) m?.delete(id);
    };
  }
  private readonly flowWatchers = new WeakMap<Transport, Map<string, Set<() => void>>>();

  /** A connection closed: the usages keeping a flow on it hear of it. */
  onConnectionClosed(transport: Transport, connectionId: string): void {
    const byId = this.flowWatchers.get(transport);
    const set = byId?.get(connectionId);
    if (!set) return;
    byId?.delete(connectionId);
    for (const cb of [...set]) {
      try {
        cb();
      } catch (e) {
        this.logger.error({ err: e }, 'a flow watcher threw');
      }
    }
  }

  /** @internal A re-INVITE's server transaction, so that a CANCEL for it reaches its session (§9.2). */
  watchInviteTransaction(tx: ServerTransactionLike, session: InviteSession): void {
    this.invitesByTx.set(tx, session);
  }

  /** A response that matched no transaction: a 2xx to an INVITE whose transaction ended goes to its session. */
  onStrayResponse(response: SipResponse): void {
    try {
      if (response.status < 200 || response.status >= 300 || response.cseq.method !== 'INVITE')
        return;
      const set = this.dialogSets.get(DialogSetId.of(response, 'from').key);
      // The From tag of a response to our request is our local tag, on either side.
      set?.inviteSession?.receiveStray2xx(response);
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
      const known = profile.optionTags();
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
      // RFC 3891 §3: an INVITE that replaces one of our dialogs.
      const replaces = checkReplaces(this, request);
      if (replaces.action === 'refuse') {
        this.reply(request, tx, replaces.status, undefined, replaces.reason);
        return;
      }
      const old = replaces.action === 'replace' ? replaces.session.handle() : undefined;
      const session = new ServerInviteSession(
        this,
        request,
        tx,
        received,
        this.masterProfile,
        old ? replacingHandler(this.inviteHandler, old) : this.inviteHandler,
      );
      session.replaces = old;
      this.invitesByTx.set(tx, session);
      this.observeInvite({ type: 'created', session, direction: 'recipient', request });
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
    // RFC 3515 §2.4.2: a REFER outside any dialog, to the ServerSubscriptionHandler for `refer`.
    if (
      method === 'REFER' &&
      receiveOutOfDialogRefer(this, request, tx, this.serverSubscriptions.get('refer'))
    )
      return;
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
    const tags = p.optionTags();
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

  /** @internal The application's object for a new dialog set: the one given to `send` with its request, else the factory's. */
  makeAppDialogSet(request: SipRequest): AppDialogSet | undefined {
    const given = this.givenAppDialogSets.get(request);
    if (given) {
      this.givenAppDialogSets.delete(request);
      return given;
    }
    return this.appDialogSetFactory?.(request);
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

/** Event, Expires (default: the profile's), Accept, Allow and an optional body of a SUBSCRIBE (RFC 6665 §4.1.2.1). */
function decorateSubscribe(
  req: SipRequest,
  event: string,
  profile: Profile,
  options: { expires?: number; body?: string | Uint8Array; contentType?: string } | undefined,
): void {
  req.setHeader('Event', event);
  req.setHeader('Expires', String(options?.expires ?? profile.get('defaultSubscriptionExpires')));
  req.setHeader('Accept', profile.get('supportedMimeTypes').join(', '));
  req.setHeader('Allow', profile.get('supportedMethods').join(', '));
  if (options?.body !== undefined) req.setBody(options.body, options.contentType ?? 'text/plain');
}

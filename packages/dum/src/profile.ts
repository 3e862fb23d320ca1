import { NameAddr, parseHeader, parseUri, type Uri } from '@sipworks/message';

/** Digest credentials for one realm: a password, or the stored HA1 (RFC 7616 §3.4.2). */
export interface Credentials {
  realm: string;
  username: string;
  password?: string;
  /** H(username:realm:password), hex, for the algorithm in use; instead of `password`. */
  ha1?: string;
}

/** Every setting a profile can carry. Anything a `UserProfile` does not set falls back to its master. */
export interface ProfileSettings {
  /** Methods this UA accepts (405 with Allow for others). */
  supportedMethods: string[];
  /** URI schemes accepted in the Request-URI (416 for others). */
  supportedSchemes: string[];
  /** Option tags understood in Require (420 with Unsupported for others) and sent in Supported. */
  supportedOptionTags: string[];
  /** MIME types accepted in bodies (415 with Accept for others). */
  supportedMimeTypes: string[];
  /** Event packages accepted in SUBSCRIBE (489 for others). */
  supportedEvents: string[];
  /** Languages (Accept-Language). */
  supportedLanguages: string[];
  /** User-Agent header value, or empty for none. */
  userAgent: string;
  /** Default and allowed range for registration expiry (s). */
  defaultRegistrationExpires: number;
  minRegistrationExpires: number;
  maxRegistrationExpires: number;
  /** Default and allowed range for subscription expiry (s). */
  defaultSubscriptionExpires: number;
  /** Default publication expiry (s), and the range a state agent accepts (RFC 3903 §6). */
  defaultPublicationExpires: number;
  minPublicationExpires: number;
  maxPublicationExpires: number;
  /**
   * Session timers (RFC 4028): when on, `timer` is in Supported, INVITE and UPDATE ask
   * for `sessionExpires`, and the refresher keeps the session alive.
   */
  sessionTimers: boolean;
  /**
   * Seconds in the Retry-After of the 500 that a registrar or state agent answers when
   * its store fails (a database or Redis that is down: RFC 3261 §10.3 step 7, §21.5.1).
   */
  storeFailureRetryAfter: number;
  /**
   * Session timer (RFC 4028): interval asked for, and the smallest accepted. `minSE`
   * defaults to 90 s, the floor of RFC 4028 §4; a lower value is honoured (down to 1 s)
   * so that tests and labs can watch refreshes without waiting minutes.
   */
  sessionExpires: number;
  minSE: number;
  /** Who we ask to refresh in an INVITE we send (RFC 4028 §7.1): `uac` (us), `uas`, or leave it to the peer. */
  sessionRefresher: 'uac' | 'uas' | 'none';
  /**
   * Reliable provisional responses (RFC 3262): `never` (no 100rel: a peer's
   * Require: 100rel gets 420), `supported` (Supported: 100rel; a provisional is
   * reliable when the peer requires it or the application asks), `required` (our
   * INVITE has Require: 100rel; an INVITE without 100rel gets 421; every provisional
   * but 100 is reliable).
   */
  prack: 'never' | 'supported' | 'required';
  /** Seconds before a dialog set with no final response gives up (stale call). */
  staleCallTime: number;
  /** Identity: the address of record. */
  aor: NameAddr | undefined;
  /** Digest credentials, by realm ('' matches any realm). */
  credentials: Credentials[];
  /**
   * After a challenge was answered, send credentials for that realm with later requests
   * to the same next hop without waiting for a new challenge (default true).
   */
  preemptiveAuth: boolean;
  /** Send every out-of-dialog request through this proxy (a Route with ;lr). */
  outboundProxy: Uri | undefined;
  /** RFC 5626 instance id (`urn:uuid:...`). */
  instanceId: string | undefined;
  /**
   * SIP Outbound (RFC 5626) for registrations of this profile: `reg-id` and `;ob` on the
   * Contact, `Supported: outbound, path, gruu`, keep-alives on the flow and a new REGISTER
   * when the flow fails. Needs an `instanceId`.
   */
  outbound: boolean;
  /** The `reg-id` of this profile's flow (RFC 5626 §4.2.1; default 1). */
  regId: number;
  /**
   * Seconds between keep-alives on an outbound flow when the registrar sends no
   * Flow-Timer (RFC 5626 §4.4.1); undefined picks 95-120 s at random, as §4.4.1 suggests.
   */
  outboundKeepAliveSeconds: number | undefined;
  /** How long a keep-alive may wait for its pong before the flow counts as failed (s; default 10, RFC 5626 §4.4.1). */
  outboundPongTimeoutSeconds: number;
  /** base-time and max-time of the flow recovery backoff (s; default 30 and 1800, RFC 5626 §4.5). */
  outboundBackoffBaseSeconds: number;
  outboundBackoffMaxSeconds: number;
  /**
   * The GRUUs (RFC 5627) learned from the last 2xx to a REGISTER of this profile: set by
   * `ClientRegistration`, used as the Contact of later requests as `gruuContact` says.
   */
  publicGruu: Uri | undefined;
  tempGruu: Uri | undefined;
  /** Which GRUU to put in the Contact of requests other than REGISTER (RFC 5627 §4.3; default `public`). */
  gruuContact: 'public' | 'temporary' | 'none';
  /**
   * The Service-Route learned from the last 2xx to a REGISTER of this profile (RFC 3608
   * §6.1): the preloaded route set of its later out-of-dialog and dialog-creating requests
   * (after the outbound proxy, when there is one). Set by `ClientRegistration`.
   */
  serviceRoute: NameAddr[];
  /** Contact to use instead of one built from the transport. */
  overrideContact: NameAddr | undefined;
}

const DEFAULTS: ProfileSettings = {
  supportedMethods: [
    'INVITE',
    'ACK',
    'CANCEL',
    'BYE',
    'OPTIONS',
    'MESSAGE',
    'INFO',
    'UPDATE',
    'PRACK',
    'REFER',
    'NOTIFY',
    'SUBSCRIBE',
  ],
  supportedSchemes: ['sip', 'sips', 'tel'],
  // RFC 3891 §6.2, RFC 4488 §4: Replaces and Refer-Sub are understood.
  supportedOptionTags: ['replaces', 'norefersub'],
  supportedMimeTypes: [
    'application/sdp',
    'text/plain',
    'message/sipfrag',
    'multipart/mixed',
    'application/pidf+xml',
  ],
  supportedEvents: [],
  supportedLanguages: ['en'],
  userAgent: 'sipworks',
  defaultRegistrationExpires: 3600,
  minRegistrationExpires: 60,
  maxRegistrationExpires: 86400,
  defaultSubscriptionExpires: 3600,
  defaultPublicationExpires: 3600,
  minPublicationExpires: 60,
  maxPublicationExpires: 86400,
  sessionTimers: false,
  storeFailureRetryAfter: 5,
  sessionExpires: 1800,
  minSE: 90,
  sessionRefresher: 'none',
  prack: 'supported',
  staleCallTime: 180,
  aor: undefined,
  credentials: [],
  preemptiveAuth: true,
  outboundProxy: undefined,
  instanceId: undefined,
  outbound: false,
  regId: 1,
  outboundKeepAliveSeconds: undefined,
  outboundPongTimeoutSeconds: 10,
  outboundBackoffBaseSeconds: 30,
  outboundBackoffMaxSeconds: 1800,
  publicGruu: undefined,
  tempGruu: undefined,
  gruuContact: 'public',
  serviceRoute: [],
  overrideContact: undefined,
};

/**
 * Settings, with fallback: a `UserProfile` answers from its own settings and asks its
 * master for anything it does not set.
 */
export class Profile {
  protected readonly own: Partial<ProfileSettings> = {};
  protected readonly parent: Profile | undefined;

  constructor(parent?: Profile, settings?: Partial<ProfileSettings>) {
    this.parent = parent;
    if (settings) Object.assign(this.own, settings);
  }

  get<K extends keyof ProfileSettings>(key: K): ProfileSettings[K] {
    if (key in this.own) return this.own[key] as ProfileSettings[K];
    return this.parent ? this.parent.get(key) : DEFAULTS[key];
  }

  set<K extends keyof ProfileSettings>(key: K, value: ProfileSettings[K]): this {
    this.own[key] = value;
    return this;
  }

  /** Forget a setting so the master's applies again. */
  unset(key: keyof ProfileSettings): this {
    delete this.own[key];
    return this;
  }

  hasOwn(key: keyof ProfileSettings): boolean {
    return key in this.own;
  }

  /** Methods in upper case. */
  isMethodSupported(method: string): boolean {
    return this.get('supportedMethods').includes(method.toUpperCase());
  }

  /**
   * The option tags we understand and list in Supported: `supportedOptionTags`, with
   * `100rel` unless `prack` is `never` (RFC 3262) and `timer` when `sessionTimers` is on
   * (RFC 4028).
   */
  optionTags(): string[] {
    const tags = [...this.get('supportedOptionTags')];
    if (this.get('prack') !== 'never' && !tags.includes('100rel')) tags.push('100rel');
    if (this.get('sessionTimers') && !tags.includes('timer')) tags.push('timer');
    return tags;
  }

  isSchemeSupported(scheme: string): boolean {
    return this.get('supportedSchemes').includes(scheme.toLowerCase());
  }

  isMimeTypeSupported(mime: string): boolean {
    const m = mime.toLowerCase();
    return this.get('supportedMimeTypes').some((x) => x.toLowerCase() === m);
  }

  /** The credentials for a realm (an exact realm first, then one with realm ''). */
  credentialsFor(realm: string): Credentials | undefined {
    const all = this.get('credentials');
    return all.find((c) => c.realm === realm) ?? all.find((c) => c.realm === '');
  }
}

/** The DUM's profile: what the UA supports, defaults and bounds. */
export class MasterProfile extends Profile {
  constructor(settings?: Partial<ProfileSettings>) {
    super(undefined, settings);
  }
}

/** One user's identity, credentials and outbound proxy, falling back to a master profile. */
export class UserProfile extends Profile {
  constructor(
    master: Profile,
    settings?: Partial<Omit<ProfileSettings, 'aor' | 'outboundProxy'>> & {
      aor?: NameAddr | string;
      outboundProxy?: Uri | string;
    },
  ) {
    const { aor, outboundProxy, ...rest } = settings ?? {};
    super(master, rest);
    if (aor !== undefined)
      this.own.aor =
        typeof aor === 'string' ? (parseHeader<NameAddr>('From', aor)[0] as NameAddr) : aor;
    if (outboundProxy !== undefined)
      this.own.outboundProxy =
        typeof outboundProxy === 'string' ? parseUri(outboundProxy) : outboundProxy;
  }

  /** Add credentials for a realm. */
  addCredentials(c: Credentials): this {
    this.own.credentials = [...(this.own.credentials ?? []), c];
    return this;
  }
}

export { NameAddr };

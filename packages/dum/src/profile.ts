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
   * Seconds in the Retry-After of the 500 that a registrar or state agent answers when
   * its store fails (a database or Redis that is down: RFC 3261 §10.3 step 7, §21.5.1).
   */
  storeFailureRetryAfter: number;
  /** Session timer (RFC 4028): interval asked for, and the smallest accepted. */
  sessionExpires: number;
  minSE: number;
  /** Reliable provisional responses (RFC 3262). */
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
  supportedOptionTags: [],
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
  storeFailureRetryAfter: 5,
  sessionExpires: 1800,
  minSE: 90,
  prack: 'supported',
  staleCallTime: 180,
  aor: undefined,
  credentials: [],
  preemptiveAuth: true,
  outboundProxy: undefined,
  instanceId: undefined,
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

import { AuthHeader, type NameAddr, type SipRequest, type SipResponse } from '@sipworks/message';
import {
  type AsyncHasher,
  baseAlgorithm,
  DIGEST_ALGORITHMS,
  type DigestAlgorithm,
  type DigestInput,
  digestResponse,
  digestResponseAsync,
  type Hasher,
  nodeCrypto,
  nodeHasher,
  randomHex,
  webHasher,
  webHasherAlgorithms,
} from './digest.ts';
import { DumError } from './errors.ts';
import type { Profile } from './profile.ts';

interface RealmState {
  realm: string;
  nonce: string;
  opaque: string | undefined;
  algorithm: DigestAlgorithm;
  algorithmName: string;
  sess: boolean;
  qop: string | undefined;
  nc: number;
  cnonce: string;
  proxy: boolean;
  /** The next hop the challenge came through (see `nextHop`): where cached credentials are sent. */
  scope: string;
}

type Credentials = { username: string; password?: string; ha1?: string };

/** A retry being built: the request, and the realms whose credentials it gets. */
interface PendingRetry {
  retry: SipRequest;
  proxy: boolean;
  answer: { st: RealmState; creds: Credentials }[];
}

/** Options of `ClientAuthManager`. */
export interface ClientAuthManagerOptions {
  /** A hasher that answers at once. Default: `nodeHasher` where `node:crypto` exists. */
  hasher?: Hasher;
  /**
   * A hasher that answers later (WebCrypto), used when no `hasher` is given. Default,
   * where there is no `node:crypto` (a browser): `webHasher`. With one, challenges are
   * answered through `handleChallengeAsync` and `addCachedCredentialsAsync`, which the
   * DialogUsageManager calls itself.
   */
  asyncHasher?: AsyncHasher;
  /**
   * The algorithms this side answers (a challenge in another is passed over). Default:
   * all of `DIGEST_ALGORITHMS`, or those `webHasher` can compute here when it is the
   * default.
   */
  algorithms?: readonly DigestAlgorithm[];
}

/**
 * Answers 401 and 407 challenges with a profile's credentials (RFC 3261 §22, RFC 7616,
 * RFC 8760): MD5, SHA-256 and SHA-512-256 and their `-sess` forms, qop `auth` and
 * `auth-int`, nonce counts and cnonces, `stale=true` retried without asking the
 * application, several challenges in one response, state cached per realm.
 *
 * The cached state also lets later requests of the same profile carry credentials before
 * they are challenged (`addCachedCredentials`): only towards the next hop the challenge
 * came through (the first Route, or the Request-URI's host and port), with the nonce
 * count incremented each time, the way reSIProcate and PJSIP reuse a digest session. A
 * server that no longer takes the nonce answers `stale=true`, which is retried at once.
 */
export class ClientAuthManager {
  private readonly hasher: Hasher | undefined;
  private readonly asyncHasher: AsyncHasher | undefined;
  private readonly algorithms: readonly DigestAlgorithm[];
  /** Realm state, per profile. */
  private readonly realms = new WeakMap<Profile, Map<string, RealmState>>();

  constructor(options: ClientAuthManagerOptions = {}) {
    if (options.hasher) this.hasher = options.hasher;
    else if (options.asyncHasher) this.asyncHasher = options.asyncHasher;
    else if (nodeCrypto) this.hasher = nodeHasher;
    else this.asyncHasher = webHasher;
    this.algorithms =
      options.algorithms ??
      (this.asyncHasher === webHasher ? webHasherAlgorithms() : DIGEST_ALGORITHMS);
  }

  /**
   * Whether this manager hashes asynchronously (a browser's WebCrypto): then only
   * `handleChallengeAsync` and `addCachedCredentialsAsync` can compute credentials.
   */
  get isAsync(): boolean {
    return this.hasher === undefined;
  }

  /**
   * The request to send again after a 401/407, with credentials for every challenge the
   * profile can answer, its CSeq incremented and its Via removed (the stack adds a
   * new branch). `undefined` when nothing can be answered, or when the same nonce was
   * already refused (wrong credentials), in which case the response stands.
   */
  handleChallenge(
    request: SipRequest,
    response: SipResponse,
    profile: Profile,
  ): SipRequest | undefined {
    const hasher = this.syncHasher('handleChallenge');
    const pending = this.prepare(request, response, profile);
    if (!pending) return undefined;
    for (const { st, creds } of pending.answer) {
      const input = this.input(pending.retry, st, creds);
      pending.retry.addHeader(
        pending.proxy ? 'Proxy-Authorization' : 'Authorization',
        this.header(st, input, digestResponse(hasher, input)),
      );
    }
    return pending.retry;
  }

  /** `handleChallenge`, with either kind of hasher (the one to call in a browser). */
  async handleChallengeAsync(
    request: SipRequest,
    response: SipResponse,
    profile: Profile,
  ): Promise<SipRequest | undefined> {
    const pending = this.prepare(request, response, profile);
    if (!pending) return undefined;
    for (const { st, creds } of pending.answer) {
      const input = this.input(pending.retry, st, creds);
      pending.retry.addHeader(
        pending.proxy ? 'Proxy-Authorization' : 'Authorization',
        this.header(st, input, await this.hash(input)),
      );
    }
    return pending.retry;
  }

  /**
   * Read a challenge into the profile's realm state, and build the retry without its
   * credentials (they are added by the caller, at once or after hashing).
   */
  private prepare(
    request: SipRequest,
    response: SipResponse,
    profile: Profile,
  ): PendingRetry | undefined {
    const proxy = response.status === 407;
    const challenges = response.getAll<AuthHeader>(
      proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate',
    );
    const chosen = new Map<
      string,
      { h: AuthHeader; algorithm: DigestAlgorithm; sess: boolean; name: string }
    >();
    for (const h of challenges) {
      if (h.scheme.toLowerCase() !== 'digest' || h.realm === undefined || h.nonce === undefined)
        continue;
      const alg = baseAlgorithm(h.params.get('algorithm') ?? undefined);
      if (!alg || !this.algorithms.includes(alg.algorithm)) continue;
      const prev = chosen.get(h.realm);
      // Several challenges for one realm: the strongest algorithm we support (RFC 8760 §2.4).
      if (
        !prev ||
        DIGEST_ALGORITHMS.indexOf(alg.algorithm) < DIGEST_ALGORITHMS.indexOf(prev.algorithm)
      )
        chosen.set(h.realm, { h, ...alg, name: h.params.get('algorithm') ?? 'MD5' });
    }
    if (chosen.size === 0) return undefined;
    let states = this.realms.get(profile);
    if (!states) this.realms.set(profile, (states = new Map()));
    const retry = request.clone();
    let answered = 0;
    for (const [realm, c] of chosen) {
      const creds = profile.credentialsFor(realm);
      if (!creds) continue;
      const old = states.get(realm);
      // The same nonce refused again, without stale=true: the credentials are wrong.
      if (old && old.nonce === c.h.nonce && !c.h.stale && alreadyAnswered(request, realm, proxy)) {
        // Nothing wrong stays cached for later requests.
        states.delete(realm);
        continue;
      }
      const qops = c.h.qop;
      const qop =
        qops.includes('auth-int') && !qops.includes('auth')
          ? 'auth-int'
          : qops.includes('auth')
            ? 'auth'
            : undefined;
      states.set(realm, {
        realm,
        nonce: c.h.nonce as string,
        opaque: c.h.opaque,
        algorithm: c.algorithm,
        algorithmName: c.name,
        sess: c.sess,
        qop,
        nc: 0,
        cnonce: randomHex(8),
        proxy,
        scope: nextHop(request),
      });
      answered++;
    }
    if (answered === 0) return undefined;
    retry.removeHeader(proxy ? 'Proxy-Authorization' : 'Authorization');
    retry.setHeader('CSeq', `${request.cseq.seq + 1} ${request.cseq.method}`);
    retry.removeHeader('Via');
    const answer: PendingRetry['answer'] = [];
    for (const realm of chosen.keys()) {
      const st = states.get(realm);
      const creds = profile.credentialsFor(realm);
      if (st && creds && st.proxy === proxy) answer.push({ st, creds });
    }
    return { retry, proxy, answer };
  }

  /**
   * Add cached credentials to a new request for each realm this profile has answered
   * through the same next hop (pre-emptive authorization), except for realms the request
   * already has credentials for. Not for ACK and CANCEL, which are never challenged
   * (RFC 3261 §22.1). Returns how many were added.
   */
  addCachedCredentials(request: SipRequest, profile: Profile): number {
    const hasher = this.syncHasher('addCachedCredentials');
    const cached = this.cached(request, profile);
    for (const { st, creds } of cached) {
      const input = this.input(request, st, creds);
      request.addHeader(
        st.proxy ? 'Proxy-Authorization' : 'Authorization',
        this.header(st, input, digestResponse(hasher, input)),
      );
    }
    return cached.length;
  }

  /** `addCachedCredentials`, with either kind of hasher (the one to call in a browser). */
  async addCachedCredentialsAsync(request: SipRequest, profile: Profile): Promise<number> {
    const cached = this.cached(request, profile);
    for (const { st, creds } of cached) {
      const input = this.input(request, st, creds);
      request.addHeader(
        st.proxy ? 'Proxy-Authorization' : 'Authorization',
        this.header(st, input, await this.hash(input)),
      );
    }
    return cached.length;
  }

  /** The realms whose cached credentials a new request gets (see `addCachedCredentials`). */
  private cached(request: SipRequest, profile: Profile): PendingRetry['answer'] {
    const states = this.realms.get(profile);
    if (!states || request.method === 'ACK' || request.method === 'CANCEL') return [];
    const hop = nextHop(request);
    const out: PendingRetry['answer'] = [];
    for (const st of states.values()) {
      if (st.scope !== hop || alreadyAnswered(request, st.realm, st.proxy)) continue;
      const creds = profile.credentialsFor(st.realm);
      if (creds) out.push({ st, creds });
    }
    return out;
  }

  /** Forget the cached state of a profile (after its credentials change, say). */
  clear(profile: Profile): void {
    this.realms.delete(profile);
  }

  private syncHasher(method: string): Hasher {
    if (this.hasher) return this.hasher;
    throw new DumError(
      'SIP_ERR_DUM_STATE',
      `this ClientAuthManager hashes asynchronously (WebCrypto): call ${method}Async`,
    );
  }

  private hash(input: DigestInput): Promise<string> {
    if (this.hasher) return Promise.resolve(digestResponse(this.hasher, input));
    return digestResponseAsync(this.asyncHasher as AsyncHasher, input);
  }

  /** What the digest of one set of credentials is computed over; counts the nonce use. */
  private input(request: SipRequest, st: RealmState, creds: Credentials): DigestInput {
    st.nc++;
    return {
      algorithm: st.algorithm,
      sess: st.sess,
      username: creds.username,
      realm: st.realm,
      password: creds.password,
      ha1: creds.ha1,
      nonce: st.nonce,
      cnonce: st.cnonce,
      qop: st.qop,
      nc: st.nc.toString(16).padStart(8, '0'),
      method: request.method,
      uri: request.uri.toString(),
      body: request.body,
    };
  }

  /** The Authorization (or Proxy-Authorization) value for computed credentials. */
  private header(st: RealmState, input: DigestInput, response: string): string {
    const a = new AuthHeader('Digest');
    a.params.set('username', input.username, { quoted: true });
    a.params.set('realm', st.realm, { quoted: true });
    a.params.set('nonce', st.nonce, { quoted: true });
    a.params.set('uri', input.uri, { quoted: true });
    a.params.set('response', response, { quoted: true });
    a.params.set('algorithm', st.algorithmName);
    if (st.opaque !== undefined) a.params.set('opaque', st.opaque, { quoted: true });
    if (st.qop) {
      a.params.set('qop', st.qop);
      a.params.set('nc', input.nc as string);
      a.params.set('cnonce', st.cnonce, { quoted: true });
    }
    return a.toString();
  }
}

function alreadyAnswered(request: SipRequest, realm: string, proxy: boolean): boolean {
  return request
    .getAll<AuthHeader>(proxy ? 'Proxy-Authorization' : 'Authorization')
    .some((a) => a.realm === realm);
}

/**
 * Where a request goes first: the first Route's URI, or the Request-URI (host and port,
 * lower case). Credentials cached for one next hop are never offered to another.
 */
function nextHop(request: SipRequest): string {
  let uri = request.uri;
  if (request.has('Route')) {
    try {
      const first = request.getAll<NameAddr>('Route')[0];
      if (first) uri = first.uri;
    } catch {
      /* an unreadable Route: the Request-URI */
    }
  }
  return `${uri.host.toLowerCase()}:${uri.port ?? ''}`;
}

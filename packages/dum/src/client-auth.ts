import { AuthHeader, type NameAddr, type SipRequest, type SipResponse } from '@sipworks/message';
import {
  baseAlgorithm,
  DIGEST_ALGORITHMS,
  type DigestAlgorithm,
  digestResponse,
  type Hasher,
  nodeHasher,
  randomHex,
} from './digest.ts';
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
  private readonly hasher: Hasher;
  /** Realm state, per profile. */
  private readonly realms = new WeakMap<Profile, Map<string, RealmState>>();

  constructor(options?: { hasher?: Hasher }) {
    this.hasher = options?.hasher ?? nodeHasher;
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
      if (!alg) continue;
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
    for (const realm of chosen.keys()) {
      const st = states.get(realm);
      const creds = profile.credentialsFor(realm);
      if (st && creds && st.proxy === proxy)
        retry.addHeader(
          proxy ? 'Proxy-Authorization' : 'Authorization',
          this.credentials(retry, st, creds),
        );
    }
    retry.setHeader('CSeq', `${request.cseq.seq + 1} ${request.cseq.method}`);
    retry.removeHeader('Via');
    return retry;
  }

  /**
   * Add cached credentials to a new request for each realm this profile has answered
   * through the same next hop (pre-emptive authorization), except for realms the request
   * already has credentials for. Not for ACK and CANCEL, which are never challenged
   * (RFC 3261 §22.1). Returns how many were added.
   */
  addCachedCredentials(request: SipRequest, profile: Profile): number {
    const states = this.realms.get(profile);
    if (!states || request.method === 'ACK' || request.method === 'CANCEL') return 0;
    const hop = nextHop(request);
    let added = 0;
    for (const st of states.values()) {
      if (st.scope !== hop || alreadyAnswered(request, st.realm, st.proxy)) continue;
      const creds = profile.credentialsFor(st.realm);
      if (!creds) continue;
      request.addHeader(
        st.proxy ? 'Proxy-Authorization' : 'Authorization',
        this.credentials(request, st, creds),
      );
      added++;
    }
    return added;
  }

  /** Forget the cached state of a profile (after its credentials change, say). */
  clear(profile: Profile): void {
    this.realms.delete(profile);
  }

  private credentials(
    request: SipRequest,
    st: RealmState,
    creds: { username: string; password?: string; ha1?: string },
  ): string {
    st.nc++;
    const nc = st.nc.toString(16).padStart(8, '0');
    const uri = request.uri.toString();
    const response = digestResponse(this.hasher, {
      algorithm: st.algorithm,
      sess: st.sess,
      username: creds.username,
      realm: st.realm,
      password: creds.password,
      ha1: creds.ha1,
      nonce: st.nonce,
      cnonce: st.cnonce,
      qop: st.qop,
      nc,
      method: request.method,
      uri,
      body: request.body,
    });
    const a = new AuthHeader('Digest');
    a.params.set('username', creds.username, { quoted: true });
    a.params.set('realm', st.realm, { quoted: true });
    a.params.set('nonce', st.nonce, { quoted: true });
    a.params.set('uri', uri, { quoted: true });
    a.params.set('response', response, { quoted: true });
    a.params.set('algorithm', st.algorithmName);
    if (st.opaque !== undefined) a.params.set('opaque', st.opaque, { quoted: true });
    if (st.qop) {
      a.params.set('qop', st.qop);
      a.params.set('nc', nc);
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

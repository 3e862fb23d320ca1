import { AuthHeader, createResponse, type SipRequest, type SipResponse } from '@sipworks/message';
import {
  baseAlgorithm,
  constantTimeEqual,
  type DigestAlgorithm,
  digestResponse,
  type Hasher,
  nodeCrypto,
  nodeHasher,
  randomHex,
} from './digest.ts';

/** What a credential lookup returns: a password, or a stored HA1 per algorithm. */
export type StoredCredentials =
  | { password: string }
  | { ha1: Partial<Record<DigestAlgorithm, string>> };

export type CredentialLookup = (
  username: string,
  realm: string,
) => Promise<StoredCredentials | undefined>;

export type AuthResult =
  | { outcome: 'ok'; username: string }
  /** No credentials for this realm in the request: challenge. */
  | { outcome: 'missing' }
  /** Right credentials, old nonce: challenge again with stale=true (RFC 7616 §3.3). */
  | { outcome: 'stale'; username: string }
  /** Wrong credentials, unknown user, replayed nonce count, or malformed: 403 or a new challenge. */
  | { outcome: 'failed'; reason: string };

export interface ServerAuthOptions {
  /** The realm challenged (default: the Request-URI host). */
  realm?: string;
  /** `www` answers 401 with WWW-Authenticate; `proxy` 407 with Proxy-Authenticate. */
  mode?: 'www' | 'proxy';
  /** Algorithms offered, in order (default SHA-256 then MD5: SHA-256 first, RFC 8760 §2.4). */
  algorithms?: DigestAlgorithm[];
  /** How long a nonce is good for (ms, default 300,000). */
  nonceLifetimeMs?: number;
  /** Offer qop=auth (default true). */
  qop?: boolean;
  hasher?: Hasher;
  now?: () => number;
  /**
   * The key of the nonces' HMAC (default: random, per manager). Registrars that stand
   * behind one dispatcher must share it: a UA answers the challenge of one, and its
   * retry may reach another, which accepts only a nonce it can verify. Nonce counts are
   * still remembered per manager, so a replay to another registrar within the nonce's
   * lifetime is not refused.
   */
  secret?: string;
}

/**
 * Challenges requests and verifies their digest credentials (RFC 3261 §22, RFC 7616,
 * RFC 8760). Nonces carry their creation time and an HMAC, so they expire without
 * server state; nonce counts are remembered so a replay is refused; responses are
 * compared in constant time.
 */
export class ServerAuthManager {
  private readonly lookup: CredentialLookup;
  private readonly o: Required<Omit<ServerAuthOptions, 'realm' | 'secret'>> & {
    realm: string | undefined;
  };
  private readonly secret: string;
  /**
   * Highest nonce count seen per nonce, with the nonce's creation time, in the order the
   * nonces were first used; the expired ones at the front are swept as requests come.
   */
  private readonly counts = new Map<string, { seen: number; created: number }>();

  constructor(lookup: CredentialLookup, options: ServerAuthOptions = {}) {
    this.lookup = lookup;
    if (options.secret !== undefined && options.secret.length < 16)
      throw new RangeError('secret must have 16 characters or more');
    this.secret = options.secret ?? randomHex(32);
    this.o = {
      realm: options.realm,
      mode: options.mode ?? 'www',
      algorithms: options.algorithms ?? ['SHA-256', 'MD5'],
      nonceLifetimeMs: options.nonceLifetimeMs ?? 300_000,
      qop: options.qop ?? true,
      hasher: options.hasher ?? nodeHasher,
      now: options.now ?? Date.now,
    };
  }

  realmOf(request: SipRequest): string {
    return this.o.realm ?? request.uri.host;
  }

  /** A 401 (www) or 407 (proxy) with one challenge per algorithm offered. */
  challenge(request: SipRequest, options?: { stale?: boolean; toTag?: string }): SipResponse {
    const proxy = this.o.mode === 'proxy';
    const res = createResponse(request, proxy ? 407 : 401, undefined, {
      toTag: options?.toTag ?? randomHex(6),
    });
    const nonce = this.makeNonce();
    const realm = this.realmOf(request);
    for (const algorithm of this.o.algorithms) {
      const a = new AuthHeader('Digest');
      a.params.set('realm', realm, { quoted: true });
      a.params.set('nonce', nonce, { quoted: true });
      a.params.set('algorithm', algorithm);
      if (this.o.qop) a.params.set('qop', 'auth', { quoted: true });
      if (options?.stale) a.params.set('stale', 'true');
      res.addHeader(proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate', a);
    }
    return res;
  }

  /** Check a request's credentials for our realm. */
  async verify(request: SipRequest): Promise<AuthResult> {
    const realm = this.realmOf(request);
    const all = request.getAll<AuthHeader>(
      this.o.mode === 'proxy' ? 'Proxy-Authorization' : 'Authorization',
    );
    const a = all.find((x) => x.scheme.toLowerCase() === 'digest' && x.realm === realm);
    if (!a) return { outcome: 'missing' };
    const { username, nonce, response } = a;
    const alg = baseAlgorithm(a.params.get('algorithm') ?? undefined);
    if (!username || !nonce || !response || !alg || !this.o.algorithms.includes(alg.algorithm))
      return { outcome: 'failed', reason: 'malformed credentials' };
    const stored = await this.lookup(username, realm);
    if (!stored) return { outcome: 'failed', reason: 'unknown user' };
    const qop = a.params.get('qop') ?? undefined;
    const nc = a.nc;
    if (qop !== undefined && qop !== 'auth' && qop !== 'auth-int')
      return { outcome: 'failed', reason: 'bad qop' };
    if (qop !== undefined && (!nc || !/^[0-9a-fA-F]{8}$/.test(nc) || !a.cnonce))
      return { outcome: 'failed', reason: 'bad nc or cnonce' };
    const ha1 = 'password' in stored ? undefined : stored.ha1[alg.algorithm];
    if (!('password' in stored) && ha1 === undefined)
      return { outcome: 'failed', reason: 'no HA1 for this algorithm' };
    const expected = digestResponse(this.o.hasher, {
      algorithm: alg.algorithm,
      sess: alg.sess,
      username,
      realm,
      password: 'password' in stored ? stored.password : undefined,
      ha1,
      nonce,
      cnonce: a.cnonce,
      qop,
      nc,
      method: request.method,
      uri: a.uri ?? '',
      body: request.body,
    });
    if (!constantTimeEqual(expected, response))
      return { outcome: 'failed', reason: 'wrong credentials' };
    const age = this.nonceAge(nonce);
    if (age === undefined) return { outcome: 'failed', reason: 'not our nonce' };
    if (age > this.o.nonceLifetimeMs) return { outcome: 'stale', username };
    // A nonce count must grow: an equal or lower one is a replay (RFC 7616 §3.4.5).
    const known = this.counts.get(nonce);
    if (nc !== undefined) {
      const n = Number.parseInt(nc, 16);
      if (n <= (known?.seen ?? 0)) return { outcome: 'failed', reason: 'replayed nonce count' };
      if (known) known.seen = n;
      else this.counts.set(nonce, { seen: n, created: this.o.now() - age });
    } else {
      if (known) return { outcome: 'failed', reason: 'replayed nonce' };
      this.counts.set(nonce, { seen: 1, created: this.o.now() - age });
    }
    this.sweep();
    return { outcome: 'ok', username };
  }

  private makeNonce(): string {
    const body = `${Math.floor(this.o.now()).toString(16)}.${randomHex(8)}`;
    return `${body}.${this.mac(body)}`;
  }

  private mac(data: string): string {
    if (nodeCrypto)
      return nodeCrypto.createHmac('sha256', this.secret).update(data).digest('hex').slice(0, 32);
    return this.o.hasher('SHA-256', `${this.secret}:${data}`).slice(0, 32);
  }

  /** How old a nonce we issued is, or undefined when we did not issue it. */
  private nonceAge(nonce: string): number | undefined {
    const parts = nonce.split('.');
    if (parts.length !== 3) return undefined;
    const [t, r, mac] = parts as [string, string, string];
    if (!constantTimeEqual(this.mac(`${t}.${r}`), mac)) return undefined;
    const created = Number.parseInt(t, 16);
    return Number.isFinite(created) ? this.o.now() - created : undefined;
  }

  /**
   * Forget the counts of expired nonces (a replay of one is stale anyway), oldest first
   * use first, up to the first live one: each verification pays for what it removes,
   * where checking every entry (an HMAC each) once there were many cost each request as
   * many HMACs as nonces were in use. An old nonce first used late waits behind younger
   * ones, at most one lifetime, so the table holds about a lifetime of nonces.
   */
  private sweep(): void {
    const oldest = this.o.now() - this.o.nonceLifetimeMs;
    for (const [nonce, c] of this.counts) {
      if (c.created >= oldest) return;
      this.counts.delete(nonce);
    }
  }
}

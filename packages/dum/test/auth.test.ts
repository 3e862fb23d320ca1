import { createRequest, createResponse, type SipRequest } from '@sipworks/message';
import { describe, expect, it } from 'vitest';
import {
  ClientAuthManager,
  computeHa1,
  constantTimeEqual,
  type DigestAlgorithm,
  digestResponse,
  MasterProfile,
  nodeHasher,
  ServerAuthManager,
  UserProfile,
} from '../src/index.ts';

function request(method = 'MESSAGE', body?: string): SipRequest {
  return createRequest({
    method,
    uri: 'sip:bob@example.test',
    from: '<sip:alice@example.test>;tag=a',
    to: '<sip:bob@example.test>',
    callId: `auth-${Math.random()}`,
    cseq: 1,
    via: undefined as never,
    ...(body ? { body, contentType: 'text/plain' } : {}),
  });
}

function withVia(r: SipRequest): SipRequest {
  r.setHeader('Via', `SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK${Math.random().toString(36).slice(2)}`);
  return r;
}

describe('digest computation (RFC 7616 §3.9.1 examples)', () => {
  const base = {
    sess: false,
    username: 'Mufasa',
    realm: 'http-auth@example.org',
    password: 'Circle of Life',
    nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
    qop: 'auth',
    nc: '00000001',
    method: 'GET',
    uri: '/dir/index.html',
  };
  it('MD5', () => {
    expect(digestResponse(nodeHasher, { ...base, algorithm: 'MD5' })).toBe(
      '8ca523f5e9506fed4657c9700eebdbec',
    );
  });
  it('SHA-256', () => {
    expect(digestResponse(nodeHasher, { ...base, algorithm: 'SHA-256' })).toBe(
      '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    );
  });
  it('a stored HA1 gives the same response as the password', () => {
    const ha1 = computeHa1(nodeHasher, 'SHA-256', base.username, base.realm, base.password);
    expect(
      digestResponse(nodeHasher, { ...base, algorithm: 'SHA-256', password: undefined, ha1 }),
    ).toBe(digestResponse(nodeHasher, { ...base, algorithm: 'SHA-256' }));
  });
  it('constant-time comparison', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
  });
});

describe('client and server auth managers together', () => {
  const master = new MasterProfile();
  const lookup = async (user: string) => (user === 'alice' ? { password: 'pw' } : undefined);

  async function roundTrip(
    server: ServerAuthManager,
    profile: UserProfile,
    req: SipRequest,
    client = new ClientAuthManager(),
  ) {
    const challenge = server.challenge(withVia(req));
    const retry = client.handleChallenge(req, challenge, profile);
    if (!retry) return { challenge, retry, result: undefined };
    return { challenge, retry, result: await server.verify(withVia(retry.clone())) };
  }

  for (const algorithm of ['MD5', 'SHA-256', 'SHA-512-256'] as DigestAlgorithm[]) {
    it(`${algorithm} with qop=auth verifies`, async () => {
      const server = new ServerAuthManager(lookup, { realm: 'r', algorithms: [algorithm] });
      const profile = new UserProfile(master).addCredentials({
        realm: 'r',
        username: 'alice',
        password: 'pw',
      });
      const { retry, result } = await roundTrip(server, profile, withVia(request()));
      expect(result).toEqual({ outcome: 'ok', username: 'alice' });
      expect(retry?.cseq.seq).toBe(2);
      expect(retry?.has('Via')).toBe(false);
    });
  }

  it('several challenges: the client answers the strongest algorithm it supports (RFC 8760 §2.4)', async () => {
    const server = new ServerAuthManager(lookup, { realm: 'r', algorithms: ['MD5', 'SHA-256'] });
    const profile = new UserProfile(master).addCredentials({
      realm: 'r',
      username: 'alice',
      password: 'pw',
    });
    const { retry, result } = await roundTrip(server, profile, withVia(request()));
    expect(retry?.header('Authorization')).toMatch(/algorithm=SHA-256/);
    expect(result?.outcome).toBe('ok');
  });

  it('407 from a proxy is answered with Proxy-Authorization', async () => {
    const server = new ServerAuthManager(lookup, { realm: 'p', mode: 'proxy' });
    const profile = new UserProfile(master).addCredentials({
      realm: 'p',
      username: 'alice',
      password: 'pw',
    });
    const { challenge, retry, result } = await roundTrip(server, profile, withVia(request()));
    expect(challenge.status).toBe(407);
    expect(retry?.has('Proxy-Authorization')).toBe(true);
    expect(result?.outcome).toBe('ok');
  });

  it('qop=auth-int and -sess algorithms', async () => {
    const req = withVia(request('MESSAGE', 'body text'));
    const server = new ServerAuthManager(lookup, {
      realm: 'r',
      algorithms: ['SHA-256'],
      qop: true,
    });
    const challenge = server.challenge(req);
    // Rewrite the challenge to offer auth-int with SHA-256-sess.
    const a = challenge.getAll<{
      params: { set(k: string, v: string, o?: { quoted: boolean }): void };
    }>('WWW-Authenticate')[0];
    a?.params.set('qop', 'auth-int', { quoted: true });
    a?.params.set('algorithm', 'SHA-256-sess');
    const profile = new UserProfile(master).addCredentials({
      realm: 'r',
      username: 'alice',
      password: 'pw',
    });
    const retry = new ClientAuthManager().handleChallenge(req, challenge, profile);
    expect(retry?.header('Authorization')).toMatch(/qop=auth-int/);
    expect(retry?.header('Authorization')).toMatch(/algorithm=SHA-256-sess/);
    const result = await server.verify(withVia(retry as SipRequest));
    expect(result.outcome).toBe('ok');
  });

  it('by default SHA-256 is offered before MD5, one challenge each (RFC 8760 §2.4, RFC 7616 §3.7)', () => {
    const server = new ServerAuthManager(lookup, { realm: 'r' });
    const challenges = server.challenge(withVia(request())).headers('WWW-Authenticate');
    expect(challenges.map((c) => /algorithm=([\w-]+)/.exec(c)?.[1])).toEqual(['SHA-256', 'MD5']);
    // Both carry the realm and qop.
    expect(challenges.every((c) => /realm="r"/.test(c) && /qop="auth/.test(c))).toBe(true);
  });

  it('a replayed nonce count is refused (RFC 7616 §3.4.5)', async () => {
    const server = new ServerAuthManager(lookup, { realm: 'r' });
    const profile = new UserProfile(master).addCredentials({
      realm: 'r',
      username: 'alice',
      password: 'pw',
    });
    const { retry, result } = await roundTrip(server, profile, withVia(request()));
    expect(result?.outcome).toBe('ok');
    const again = await server.verify(withVia(retry as SipRequest));
    expect(again).toEqual({ outcome: 'failed', reason: 'replayed nonce count' });
  });

  it('an expired nonce is stale: the client retries on stale=true without asking the application', async () => {
    let now = 1_000_000;
    const server = new ServerAuthManager(lookup, {
      realm: 'r',
      nonceLifetimeMs: 1000,
      now: () => now,
    });
    const profile = new UserProfile(master).addCredentials({
      realm: 'r',
      username: 'alice',
      password: 'pw',
    });
    const client = new ClientAuthManager();
    const req = withVia(request());
    const first = client.handleChallenge(req, server.challenge(req), profile) as SipRequest;
    now += 5000;
    const result = await server.verify(withVia(first));
    expect(result).toEqual({ outcome: 'stale', username: 'alice' });
    const staleChallenge = server.challenge(withVia(first), { stale: true });
    expect(staleChallenge.header('WWW-Authenticate')).toMatch(/stale=true/);
    const second = client.handleChallenge(first, staleChallenge, profile);
    expect(second).toBeDefined();
    expect((await server.verify(withVia(second as SipRequest))).outcome).toBe('ok');
  });

  it('with thousands of nonces in use, a replay is still refused and verification stays cheap (RFC 7616 §3.4.5)', async () => {
    let now = 1_000_000;
    const server = new ServerAuthManager(lookup, {
      realm: 'r',
      algorithms: ['MD5'],
      nonceLifetimeMs: 60_000,
      now: () => now,
    });
    const profile = new UserProfile(master).addCredentials({
      realm: 'r',
      username: 'alice',
      password: 'pw',
    });
    const client = new ClientAuthManager();
    // More nonces in use than the 10,000 at which every verification used to recheck them all.
    const started = performance.now();
    let first: SipRequest | undefined;
    for (let i = 0; i < 12_000; i++) {
      const { retry, result } = await roundTrip(server, profile, withVia(request()), client);
      expect(result?.outcome).toBe('ok');
      first ??= retry;
      now += 1;
    }
    const perVerify = (performance.now() - started) / 12_000;
    // Each round trip is a challenge, a client answer and a verification: tens of µs.
    // Rechecking 10,000 nonces (an HMAC each) per verification took tens of ms.
    expect(perVerify).toBeLessThan(5);
    expect(await server.verify(withVia(first as SipRequest))).toEqual({
      outcome: 'failed',
      reason: 'replayed nonce count',
    });
    // Once the nonce has expired, its count may be forgotten: a replay is stale.
    now += 61_000;
    expect((await server.verify(withVia(first as SipRequest))).outcome).toBe('stale');
  });

  it('wrong password fails; the same nonce refused again is not retried', async () => {
    const server = new ServerAuthManager(lookup, { realm: 'r' });
    const profile = new UserProfile(master).addCredentials({
      realm: 'r',
      username: 'alice',
      password: 'nope',
    });
    const client = new ClientAuthManager();
    const req = withVia(request());
    const challenge = server.challenge(req);
    const retry = client.handleChallenge(req, challenge, profile) as SipRequest;
    expect((await server.verify(withVia(retry))).outcome).toBe('failed');
    // The server answers the retry with the same challenge (same nonce, not stale).
    const sameNonce = createResponse(withVia(retry), 401, undefined, { toTag: 'x' });
    for (const h of challenge.headers('WWW-Authenticate'))
      sameNonce.addHeader('WWW-Authenticate', h);
    expect(client.handleChallenge(retry, sameNonce, profile)).toBeUndefined();
  });

  it("registrars sharing a secret accept each other's nonces (RFC 3261 §22.2 retry reaching another node)", async () => {
    const secret = 'shared-by-every-node-0123456789';
    const a = new ServerAuthManager(lookup, { realm: 'r', secret });
    const b = new ServerAuthManager(lookup, { realm: 'r', secret });
    const stranger = new ServerAuthManager(lookup, { realm: 'r' });
    const profile = new UserProfile(master).addCredentials({
      realm: 'r',
      username: 'alice',
      password: 'pw',
    });
    const req = withVia(request());
    const retry = new ClientAuthManager().handleChallenge(
      req,
      a.challenge(req),
      profile,
    ) as SipRequest;
    expect(await b.verify(withVia(retry.clone()))).toEqual({ outcome: 'ok', username: 'alice' });
    expect(await stranger.verify(withVia(retry.clone()))).toEqual({
      outcome: 'failed',
      reason: 'not our nonce',
    });
    expect(() => new ServerAuthManager(lookup, { secret: 'short' })).toThrow(RangeError);
  });

  it('a nonce we did not issue is refused; unknown users are refused', async () => {
    const server = new ServerAuthManager(lookup, { realm: 'r' });
    const other = new ServerAuthManager(lookup, { realm: 'r' });
    const profile = new UserProfile(master).addCredentials({
      realm: 'r',
      username: 'alice',
      password: 'pw',
    });
    const req = withVia(request());
    const retry = new ClientAuthManager().handleChallenge(
      req,
      other.challenge(req),
      profile,
    ) as SipRequest;
    expect(await server.verify(withVia(retry))).toEqual({
      outcome: 'failed',
      reason: 'not our nonce',
    });
    const stranger = new UserProfile(master).addCredentials({
      realm: 'r',
      username: 'mallory',
      password: 'pw',
    });
    const r2 = new ClientAuthManager().handleChallenge(
      req,
      server.challenge(req),
      stranger,
    ) as SipRequest;
    expect(await server.verify(withVia(r2))).toEqual({ outcome: 'failed', reason: 'unknown user' });
  });
});

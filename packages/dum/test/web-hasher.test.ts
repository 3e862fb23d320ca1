import { createHash } from 'node:crypto';
import { createRequest } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import { MemoryNetwork, MemoryTransport, VirtualClock } from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import {
  type AsyncHasher,
  ClientAuthManager,
  DialogUsageManager,
  type DigestAlgorithm,
  DumError,
  digestResponse,
  digestResponseAsync,
  MasterProfile,
  md5Hex,
  nodeHasher,
  ServerAuthManager,
  UserProfile,
  webHasher,
  webHasherAlgorithms,
} from '../src/index.ts';
import { until } from './support.ts';

describe('md5Hex (RFC 1321 §A.5 test suite)', () => {
  it.each([
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
    [
      'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
      'd174ab98d277d9f5a5611c2c9f419d9f',
    ],
    ['1234567890'.repeat(8), '57edf4a22be3c955ac49da2e2107b67a'],
  ])('MD5("%s")', (input, hex) => {
    expect(md5Hex(input)).toBe(hex);
  });

  it('agrees with node:crypto around the padding boundaries (RFC 1321 §3.1: 55, 56, 64 bytes) and on UTF-8', () => {
    const inputs = [55, 56, 57, 63, 64, 65, 119, 120, 1000].map((n) => 'x'.repeat(n));
    inputs.push('é€😀'.repeat(40));
    for (const s of inputs) expect(md5Hex(s)).toBe(createHash('md5').update(s).digest('hex'));
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff);
    expect(md5Hex(bytes)).toBe(createHash('md5').update(bytes).digest('hex'));
  });
});

describe('webHasher: WebCrypto SHA-256 and md5Hex (RFC 7616 §3.9.1 examples)', () => {
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

  it('MD5 response', async () => {
    expect(await digestResponseAsync(webHasher, { ...base, algorithm: 'MD5' })).toBe(
      '8ca523f5e9506fed4657c9700eebdbec',
    );
  });

  it('SHA-256 response', async () => {
    expect(await digestResponseAsync(webHasher, { ...base, algorithm: 'SHA-256' })).toBe(
      '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    );
  });

  it('-sess and auth-int give what the synchronous node hasher gives (RFC 7616 §3.4.2, §3.4.3)', async () => {
    for (const algorithm of ['MD5', 'SHA-256'] as DigestAlgorithm[]) {
      const d = {
        ...base,
        algorithm,
        sess: true,
        qop: 'auth-int',
        body: new TextEncoder().encode('v=0\r\n'),
      };
      expect(await digestResponseAsync(webHasher, d)).toBe(digestResponse(nodeHasher, d));
    }
  });

  it('refuses SHA-512-256, which WebCrypto lacks, and says so in webHasherAlgorithms', async () => {
    await expect(webHasher('SHA-512-256', 'x')).rejects.toThrow(/SHA-512-256/);
    expect(webHasherAlgorithms()).toEqual(['SHA-256', 'MD5']);
  });
});

describe('ClientAuthManager with an asynchronous hasher (RFC 3261 §22.2, RFC 8760 §2.4)', () => {
  const master = new MasterProfile();
  const lookup = async (user: string) => (user === 'alice' ? { password: 'pw' } : undefined);
  const profile = () =>
    new UserProfile(master).addCredentials({ realm: 'r', username: 'alice', password: 'pw' });

  it('answers a challenge through handleChallengeAsync; the synchronous call is refused', async () => {
    const server = new ServerAuthManager(lookup, { realm: 'r' });
    const client = new ClientAuthManager({ asyncHasher: webHasher });
    expect(client.isAsync).toBe(true);
    const req = withVia(request());
    const challenge = server.challenge(req);
    const p = profile();
    expect(() => client.handleChallenge(req, challenge, p)).toThrow(DumError);
    const retry = await client.handleChallengeAsync(req, challenge, p);
    expect(retry?.header('Authorization')).toMatch(/algorithm=SHA-256/);
    expect(await server.verify(withVia(retry?.clone() ?? req))).toEqual({
      outcome: 'ok',
      username: 'alice',
    });
  });

  it('passes over an algorithm it cannot compute: SHA-512-256 offered first, SHA-256 answered', async () => {
    const server = new ServerAuthManager(lookup, {
      realm: 'r',
      algorithms: ['SHA-512-256', 'SHA-256'],
    });
    const client = new ClientAuthManager({
      asyncHasher: webHasher,
      algorithms: webHasherAlgorithms(),
    });
    const req = withVia(request());
    const retry = await client.handleChallengeAsync(req, server.challenge(req), profile());
    expect(retry?.header('Authorization')).toMatch(/algorithm=SHA-256/);
    expect((await server.verify(withVia(retry?.clone() ?? req))).outcome).toBe('ok');
  });

  it('a DUM whose hasher answers later retries a challenged MESSAGE and reuses the nonce (preemptive)', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 5 });
    const start = async (port: number, clientAuthManager?: ClientAuthManager) => {
      const stack = new SipStack({ clock });
      await stack.addTransport(new MemoryTransport({ network, port }));
      await stack.start();
      return new DialogUsageManager({ stack, ...(clientAuthManager ? { clientAuthManager } : {}) });
    };
    let hashed = 0;
    const counting: AsyncHasher = (algorithm, data) => {
      hashed++;
      return webHasher(algorithm, data);
    };
    const a = await start(5071, new ClientAuthManager({ asyncHasher: counting }));
    const b = await start(5072);
    let challenges = 0;
    const server = new ServerAuthManager(lookup, { realm: 'r' });
    b.setServerAuthManager(server);
    b.setServerPagerMessageHandler({
      onMessageArrived: (h, m) => {
        if (m.has('Authorization')) h.get().accept();
      },
    });
    const origChallenge = server.challenge.bind(server);
    server.challenge = (req) => {
      challenges++;
      return origChallenge(req);
    };
    const p = a.makeUserProfile({ aor: '<sip:alice@127.0.0.1:5071>' });
    p.addCredentials({ realm: 'r', username: 'alice', password: 'pw' });
    const done: number[] = [];
    a.setClientPagerMessageHandler({
      onSuccess: (_h, r) => done.push(r.status),
      onFailure: (_h, r) => done.push(r.status),
    });
    a.makePagerMessage('sip:bob@127.0.0.1:5072', p).get().page('one');
    await until(clock, () => done.length > 0);
    a.makePagerMessage('sip:bob@127.0.0.1:5072', p).get().page('two');
    await until(clock, () => done.length > 1);
    expect(done).toEqual([200, 200]);
    // One challenge: the second MESSAGE carried cached credentials, hashed asynchronously.
    expect(challenges).toBe(1);
    expect(hashed).toBeGreaterThan(0);
  });
});

function request(): ReturnType<typeof createRequest> {
  return createRequest({
    method: 'MESSAGE',
    uri: 'sip:bob@example.test',
    from: '<sip:alice@example.test>;tag=a',
    to: '<sip:bob@example.test>',
    callId: `web-auth-${Math.random()}`,
    cseq: 1,
    via: undefined as never,
  });
}

function withVia<T extends { setHeader(n: string, v: string): unknown }>(r: T): T {
  r.setHeader('Via', `SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK${Math.random().toString(36).slice(2)}`);
  return r;
}

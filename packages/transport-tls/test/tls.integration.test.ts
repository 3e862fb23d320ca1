/**
 * SIP over TLS (RFC 3261 §26.2, RFC 5922) on real sockets: two SipStacks on 127.0.0.1,
 * with certificates made here by the openssl CLI (a throwaway CA, a server certificate
 * for DNS:sip.example.test and IP:127.0.0.1, a client certificate, one for the wrong
 * host, one from an unknown CA, an expired one, one naming the domain only as
 * URI:sip:sip.example.test).
 *
 * Without openssl the suite is skipped with a warning, except when CI=true, where a
 * missing openssl fails it.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { delimiter, join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { createRequest, type SipRequest } from '@sipworks/message';
import { type DnsResolver, SipStack, type SipStackError } from '@sipworks/stack';
import { answerAll, sendAndWait as send, waitFor } from '@sipworks/stack/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  checkSipServerIdentity,
  parseSubjectAltName,
  TlsTransport,
  type TlsTransportOptions,
} from '../src/index.ts';

const CI = process.env.CI === 'true';
const OPENSSL = findOpenssl();

if (OPENSSL === undefined && !CI) {
  console.warn(
    'tls.integration.test.ts skipped: the openssl command is not installed ' +
      '(apt-get install openssl); with CI=true this suite fails instead',
  );
}

interface KeyPair {
  cert: string;
  key: string;
}

interface Certs {
  ca: string;
  server: KeyPair;
  client: KeyPair;
  wrongHost: KeyPair;
  unknownCa: KeyPair;
  rogueClient: KeyPair;
  expired: KeyPair;
  sipUri: KeyPair;
}

let dir: string | undefined;
let certs: Certs;

const stacks: SipStack[] = [];
const sockets: net.Socket[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

/** Every `*.example.test` name is 127.0.0.1; no NAPTR or SRV records (RFC 3263 §4.2). */
const resolver: DnsResolver = {
  resolveNaptr: () => Promise.reject(dnsError('ENODATA')),
  resolveSrv: () => Promise.reject(dnsError('ENODATA')),
  resolve4: (name) =>
    name.endsWith('.example.test')
      ? Promise.resolve(['127.0.0.1'])
      : Promise.reject(dnsError('ENOTFOUND')),
  resolve6: () => Promise.reject(dnsError('ENODATA')),
};

function dnsError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

async function tlsStack(
  opts: TlsTransportOptions = {},
): Promise<{ stack: SipStack; transport: TlsTransport }> {
  const stack = new SipStack({ resolver });
  const transport = new TlsTransport({
    address: '127.0.0.1',
    port: 0,
    cert: certs.server.cert,
    key: certs.server.key,
    ca: certs.ca,
    ...opts,
  });
  await stack.addTransport(transport);
  await stack.start();
  stacks.push(stack);
  return { stack, transport };
}

function request(target: string, method = 'OPTIONS'): SipRequest {
  return createRequest({
    method,
    uri: target,
    from: '<sips:a@example.test>;tag=a1',
    to: `<${target}>`,
    callId: `tls-${Math.random()}`,
    cseq: 1,
  });
}

function failure(stack: SipStack, req: SipRequest): Promise<SipStackError | undefined> {
  return send(stack, req).then(
    () => undefined,
    (e: SipStackError) => e,
  );
}

describe.skipIf(OPENSSL === undefined && !CI)('TLS transport (RFC 3261 §26.2, RFC 5922)', () => {
  beforeAll(async () => {
    if (OPENSSL === undefined) {
      throw new Error(
        'CI=true but the openssl command is not installed: install it (apt-get install -y openssl) ' +
          'so the TLS tests can make their certificates',
      );
    }
    dir = await mkdtemp(join(os.tmpdir(), 'sipworks-tls-'));
    certs = await makeCerts(OPENSSL, dir);
  }, 30_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('OPTIONS and 200 between two stacks', () => {
    it('over a sips: URI (RFC 3261 §26.2.2: sips goes over TLS)', async () => {
      const a = await tlsStack();
      const b = await tlsStack();
      answerAll(b.stack);
      const res = await send(a.stack, request(`sips:b@127.0.0.1:${b.transport.local.port}`));
      expect(res.status).toBe(200);
      expect(res.via[0]?.transport).toBe('TLS');
      const [conn] = a.transport.connectionInfos();
      expect(conn?.authorized).toBe(true);
      expect(conn?.identity).toBe('127.0.0.1');
      expect(conn?.version).toMatch(/^TLSv1\.[23]$/);
    });

    it('over a sip: URI with ;transport=tls', async () => {
      const a = await tlsStack();
      const b = await tlsStack();
      const seen: SipRequest[] = [];
      answerAll(b.stack, 200, seen);
      const res = await send(
        a.stack,
        request(`sip:b@127.0.0.1:${b.transport.local.port};transport=tls`),
      );
      expect(res.status).toBe(200);
      expect(seen[0]?.via[0]?.transport).toBe('TLS');
    });

    it('to a SIP domain: SNI is the domain and the certificate is checked against it (RFC 5922 §7.2)', async () => {
      const a = await tlsStack();
      const b = await tlsStack();
      answerAll(b.stack);
      const res = await send(a.stack, request(`sips:b@sip.example.test:${b.transport.local.port}`));
      expect(res.status).toBe(200);
      const [client] = a.transport.connectionInfos();
      expect(client).toMatchObject({
        outbound: true,
        servername: 'sip.example.test',
        identity: 'sip.example.test',
        authorized: true,
      });
      const [server] = b.transport.connectionInfos();
      expect(server?.outbound).toBe(false);
      expect(server?.servername).toBe('sip.example.test');
    });

    it('sends no SNI to a numeric host (RFC 6066 §3)', async () => {
      const a = await tlsStack();
      const b = await tlsStack();
      answerAll(b.stack);
      await send(a.stack, request(`sips:b@127.0.0.1:${b.transport.local.port}`));
      expect(b.transport.connectionInfos()[0]?.servername).toBeUndefined();
    });

    it('the servername option overrides the resolved domain', async () => {
      const a = await tlsStack({ servername: 'sip.example.test' });
      const b = await tlsStack();
      answerAll(b.stack);
      const res = await send(a.stack, request(`sips:b@127.0.0.1:${b.transport.local.port}`));
      expect(res.status).toBe(200);
      expect(b.transport.connectionInfos()[0]?.servername).toBe('sip.example.test');
    });

    it('accepts a certificate naming the domain as URI:sip:<domain> only (RFC 5922 §7.1)', async () => {
      const a = await tlsStack();
      const b = await tlsStack({ cert: certs.sipUri.cert, key: certs.sipUri.key });
      answerAll(b.stack);
      const res = await send(a.stack, request(`sips:b@sip.example.test:${b.transport.local.port}`));
      expect(res.status).toBe(200);
      expect(a.transport.connectionInfos()[0]?.peerCertificate?.subjectaltname).toBe(
        'URI:sip:sip.example.test',
      );
    });
  });

  describe('server certificate verification', () => {
    it('rejects a server certificate from an unknown CA, at once', async () => {
      const a = await tlsStack();
      const b = await tlsStack({ cert: certs.unknownCa.cert, key: certs.unknownCa.key });
      answerAll(b.stack);
      const started = Date.now();
      const err = await failure(
        a.stack,
        request(`sips:b@sip.example.test:${b.transport.local.port}`),
      );
      expect(err?.code).toBe('SIP_ERR_TRANSPORT');
      expect(err?.message).toMatch(/unknown CA/);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(a.transport.connectionCount).toBe(0);
    });

    it('rejects a certificate for another host (hostname mismatch)', async () => {
      const a = await tlsStack();
      const b = await tlsStack({ cert: certs.wrongHost.cert, key: certs.wrongHost.key });
      answerAll(b.stack);
      const err = await failure(
        a.stack,
        request(`sips:b@sip.example.test:${b.transport.local.port}`),
      );
      expect(err?.code).toBe('SIP_ERR_TRANSPORT');
      expect(err?.message).toMatch(/hostname mismatch/);
      expect(err?.message).toMatch(/sip\.example\.test/);
    });

    it('rejects an expired certificate', async () => {
      const a = await tlsStack();
      const b = await tlsStack({ cert: certs.expired.cert, key: certs.expired.key });
      answerAll(b.stack);
      const err = await failure(
        a.stack,
        request(`sips:b@sip.example.test:${b.transport.local.port}`),
      );
      expect(err?.code).toBe('SIP_ERR_TRANSPORT');
      expect(err?.message).toMatch(/certificate expired/);
    });

    it('the send itself rejects with a TransportError that says why', async () => {
      const b = await tlsStack({ cert: certs.unknownCa.cert, key: certs.unknownCa.key });
      const t = new TlsTransport({ address: '127.0.0.1', port: 0, ca: certs.ca });
      await t.start(nullSink());
      try {
        const err = await t
          .send(new Uint8Array([13, 10, 13, 10]), {
            address: '127.0.0.1',
            port: b.transport.local.port,
            serverName: 'sip.example.test',
          })
          .then(
            () => undefined,
            (e: SipStackError) => e,
          );
        expect(err?.name).toBe('TransportError');
        expect(err?.code).toBe('SIP_ERR_TRANSPORT');
        expect(err?.message).toMatch(
          /TLS handshake with sip\.example\.test at 127\.0\.0\.1:\d+ failed: unknown CA/,
        );
      } finally {
        await t.stop();
      }
    });

    it('rejectUnauthorized: false accepts any server certificate', async () => {
      const a = await tlsStack({ rejectUnauthorized: false });
      const b = await tlsStack({ cert: certs.unknownCa.cert, key: certs.unknownCa.key });
      answerAll(b.stack);
      const res = await send(a.stack, request(`sips:b@sip.example.test:${b.transport.local.port}`));
      expect(res.status).toBe(200);
      expect(a.transport.connectionInfos()[0]?.authorized).toBe(false);
    });

    it('does not reuse a connection for a domain its certificate does not name', async () => {
      const a = await tlsStack();
      const b = await tlsStack();
      answerAll(b.stack);
      const port = b.transport.local.port;
      expect((await send(a.stack, request(`sips:b@sip.example.test:${port}`))).status).toBe(200);
      const err = await failure(a.stack, request(`sips:b@other.example.test:${port}`));
      expect(err?.code).toBe('SIP_ERR_TRANSPORT');
      expect(err?.message).toMatch(
        /authenticated for sip\.example\.test, not other\.example\.test/,
      );
      // 127.0.0.1 is in the certificate too: the connection serves it.
      expect((await send(a.stack, request(`sips:b@127.0.0.1:${port}`))).status).toBe(200);
      expect(a.transport.connectionCount).toBe(1);
    });
  });

  describe('mutual TLS', () => {
    it('a required client certificate, provided: accepted and visible to the server', async () => {
      const a = await tlsStack({ clientCert: certs.client.cert, clientKey: certs.client.key });
      const b = await tlsStack({ requireClientCert: true });
      answerAll(b.stack);
      const res = await send(a.stack, request(`sips:b@sip.example.test:${b.transport.local.port}`));
      expect(res.status).toBe(200);
      const [server] = b.transport.connectionInfos();
      expect(server?.authorized).toBe(true);
      expect(server?.peerCertificate?.subject?.CN).toBe('client.example.test');
      expect(parseSubjectAltName(server?.peerCertificate?.subjectaltname)).toContainEqual({
        type: 'URI',
        value: 'sip:client.example.test',
      });
    });

    it('a required client certificate, missing: the client transaction fails at once', async () => {
      const a = await tlsStack();
      const b = await tlsStack({ requireClientCert: true });
      const seen: SipRequest[] = [];
      answerAll(b.stack, 200, seen);
      const started = Date.now();
      const err = await failure(
        a.stack,
        request(`sips:b@sip.example.test:${b.transport.local.port}`),
      );
      expect(err?.code).toBe('SIP_ERR_TRANSPORT');
      expect(err?.message).toMatch(/client certificate|handshake/);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(seen).toHaveLength(0);
      expect(b.transport.connectionCount).toBe(0);
    });

    it('a client certificate from an unknown CA is refused', async () => {
      const a = await tlsStack({
        clientCert: certs.rogueClient.cert,
        clientKey: certs.rogueClient.key,
      });
      const b = await tlsStack({ requireClientCert: true });
      const seen: SipRequest[] = [];
      answerAll(b.stack, 200, seen);
      const err = await failure(
        a.stack,
        request(`sips:b@sip.example.test:${b.transport.local.port}`),
      );
      expect(err?.code).toBe('SIP_ERR_TRANSPORT');
      expect(err?.message).toMatch(
        /unknown CA|rejected our certificate|refused our client certificate/,
      );
      expect(seen).toHaveLength(0);
    });

    it('requestCert accepts a client without a certificate, and says so', async () => {
      const a = await tlsStack();
      const b = await tlsStack({ requestCert: true });
      answerAll(b.stack);
      const res = await send(a.stack, request(`sips:b@sip.example.test:${b.transport.local.port}`));
      expect(res.status).toBe(200);
      const [server] = b.transport.connectionInfos();
      expect(server?.authorized).toBe(false);
      expect(server?.peerCertificate).toBeUndefined();
    });
  });

  describe('connections', () => {
    it('reuses one connection for both directions (RFC 3261 §18, RFC 5923)', async () => {
      const a = await tlsStack();
      const b = await tlsStack();
      answerAll(a.stack);
      answerAll(b.stack);
      const target = `sips:b@sip.example.test:${b.transport.local.port}`;
      expect((await send(a.stack, request(target))).status).toBe(200);
      expect((await send(a.stack, request(target))).status).toBe(200);
      expect(a.transport.connectionCount).toBe(1);
      expect(b.transport.connectionCount).toBe(1);
      // b sends to a's address as seen on the connection: no new connection opens.
      const [inbound] = b.transport.connectionInfos();
      const res = await send(b.stack, request(`sips:a@127.0.0.1:${inbound?.remote.port}`));
      expect(res.status).toBe(200);
      expect(a.transport.connectionCount).toBe(1);
      expect(b.transport.connectionCount).toBe(1);
    });

    it('answers a CRLFCRLF ping with a CRLF pong over TLS (RFC 5626 §4.4.1)', async () => {
      const b = await tlsStack();
      const c = await rawClient(b.transport.local.port);
      c.socket.write('\r\n\r\n');
      await waitFor(() => c.data() === '\r\n');
      expect(c.data()).toBe('\r\n');
    });

    it('frames split and merged messages (RFC 3261 §18.3)', async () => {
      const b = await tlsStack();
      const seen: SipRequest[] = [];
      answerAll(b.stack, 200, seen);
      const c = await rawClient(b.transport.local.port);
      const msg = (n: number) =>
        `MESSAGE sips:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bKf${n}\r\nMax-Forwards: 70\r\n` +
        `From: <sips:a@x>;tag=1\r\nTo: <sips:b@x>\r\nCall-ID: f${n}@x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 3\r\n\r\nab${n}`;
      const both = msg(1) + msg(2);
      c.socket.write(both.slice(0, 41));
      await new Promise((r) => setTimeout(r, 20));
      c.socket.write(both.slice(41));
      await waitFor(() => (c.data().match(/SIP\/2.0 200/g) ?? []).length === 2);
      expect(seen.map((r) => r.bodyText)).toEqual(['ab1', 'ab2']);
    });

    it('a lost connection fails the pending transaction at once, not after Timer F', async () => {
      const a = await tlsStack();
      const server = tls.createServer({ cert: certs.server.cert, key: certs.server.key }, (s) => {
        s.once('data', () => s.destroy());
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as net.AddressInfo).port;
      const started = Date.now();
      const err = await failure(a.stack, request(`sips:x@sip.example.test:${port}`));
      expect(err?.code).toBe('SIP_ERR_TRANSPORT');
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it('a peer that is not TLS is a transport error', async () => {
      const a = await tlsStack({ connectTimeoutMs: 1000 });
      const server = net.createServer((s) => {
        s.on('data', () => s.end('SIP/2.0 400 Not TLS\r\n\r\n'));
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as net.AddressInfo).port;
      const err = await failure(a.stack, request(`sips:x@127.0.0.1:${port}`));
      expect(err?.code).toBe('SIP_ERR_TRANSPORT');
      expect(err?.message).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed/);
    });

    it('closes connections that stay idle', async () => {
      const b = await tlsStack({ idleTimeoutMs: 200 });
      const c = await rawClient(b.transport.local.port);
      await c.closed;
      expect(b.transport.connectionCount).toBe(0);
    });

    it('stop() closes the listener, every connection and every pending handshake', async () => {
      const a = await tlsStack();
      const b = await tlsStack();
      answerAll(b.stack);
      await send(a.stack, request(`sips:b@sip.example.test:${b.transport.local.port}`));
      const c = await rawClient(b.transport.local.port);
      // A TCP connection that never starts its handshake.
      const idle = net.connect({ host: '127.0.0.1', port: b.transport.local.port });
      sockets.push(idle);
      idle.on('error', () => {});
      const idleClosed = new Promise<void>((r) => idle.once('close', () => r()));
      await new Promise<void>((r) => idle.once('connect', () => r()));
      await waitFor(() => b.transport.connectionCount === 2);
      const port = b.transport.local.port;
      await b.stack.stop();
      await Promise.all([c.closed, idleClosed]);
      expect(b.transport.connectionCount).toBe(0);
      await waitFor(() => a.transport.connectionCount === 0);
      const probe = net.createServer();
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.listen(port, '127.0.0.1', () => resolve());
      });
      await new Promise<void>((r) => probe.close(() => r()));
      await a.stack.stop();
      expect(a.transport.connectionCount).toBe(0);
    });

    it('without cert and key the transport only opens connections', async () => {
      const stack = new SipStack({ resolver });
      const client = new TlsTransport({
        ca: certs.ca,
        advertised: { host: 'a.example.test', port: 5061 },
      });
      expect(client.listening).toBe(false);
      await stack.addTransport(client);
      await stack.start();
      stacks.push(stack);
      const b = await tlsStack();
      answerAll(b.stack);
      const res = await send(stack, request(`sips:b@sip.example.test:${b.transport.local.port}`));
      expect(res.status).toBe(200);
      expect(res.via[0]?.host).toBe('a.example.test');
    });
  });

  describe('checkSipServerIdentity (RFC 5922 §7)', () => {
    const cert = (subjectaltname: string | undefined, cn = 'cn.example.test') =>
      ({ subject: { CN: cn }, subjectaltname }) as unknown as tls.PeerCertificate;

    it.each([
      ['DNS:sip.example.test', 'sip.example.test', true],
      ['DNS:SIP.Example.Test', 'sip.example.test', true],
      ['URI:sip:sip.example.test', 'sip.example.test', true],
      ['URI:sip:sip.example.test;transport=tls', 'sip.example.test', true],
      ['URI:sip:alice@sip.example.test', 'sip.example.test', false],
      ['URI:sips:sip.example.test', 'sip.example.test', false],
      ['URI:https://sip.example.test/', 'sip.example.test', false],
      ['DNS:*.example.test', 'sip.example.test', false],
      ['DNS:example.test', 'sip.example.test', false],
      ['DNS:other.example.test, URI:sip:sip.example.test', 'sip.example.test', true],
      ['IP Address:127.0.0.1', '127.0.0.1', true],
      ['IP Address:127.0.0.1', '127.0.0.2', false],
    ])('%s for %s: %s', (san, domain, ok) => {
      expect(checkSipServerIdentity(domain, cert(san)) === undefined).toBe(ok);
    });

    it('uses the CN only when there is no subjectAltName', () => {
      expect(checkSipServerIdentity('cn.example.test', cert(undefined))).toBeUndefined();
      expect(
        checkSipServerIdentity('cn.example.test', cert('DNS:other.example.test')),
      ).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    });

    it('reads quoted subjectAltName values', () => {
      expect(
        parseSubjectAltName('DNS:a.test, URI:"sip:b.test;x=\\"1,2\\"", IP Address:::1'),
      ).toEqual([
        { type: 'DNS', value: 'a.test' },
        { type: 'URI', value: 'sip:b.test;x="1,2"' },
        { type: 'IP Address', value: '::1' },
      ]);
    });
  });
});

function nullSink() {
  return { receive() {}, connectionClosed() {}, error() {} };
}

/** A raw TLS client (trusting the test CA) that collects what it receives. */
async function rawClient(
  port: number,
): Promise<{ socket: tls.TLSSocket; data: () => string; closed: Promise<void> }> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: certs.ca });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  let buf = '';
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
  });
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('error', () => {});
  return { socket, data: () => buf, closed };
}

function findOpenssl(): string | undefined {
  const dirs = ['/usr/bin', ...(process.env.PATH ?? '').split(delimiter)];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, 'openssl');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

/** Make the test PKI in `dir` with the openssl CLI (P-256 keys, valid for two days). */
async function makeCerts(openssl: string, dir: string): Promise<Certs> {
  const run = promisify(execFile);
  const ssl = (...args: string[]) => run(openssl, args, { cwd: dir });
  let serial = 1;
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = async (name: string, cn: string) => {
    await ssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
  };
  const leaf = async (
    name: string,
    issuer: string,
    cn: string,
    ext: string[],
    days = '2',
  ): Promise<KeyPair> => {
    await writeFile(
      join(dir, `${name}.ext`),
      ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', ...ext].join('\n'),
    );
    await ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    await ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${issuer}.pem`,
      '-CAkey',
      `${issuer}.key`,
      '-set_serial',
      String(serial++),
      '-days',
      days,
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    );
    return {
      cert: await readFile(join(dir, `${name}.pem`), 'utf8'),
      key: await readFile(join(dir, `${name}.key`), 'utf8'),
    };
  };
  const serverExt = [
    'subjectAltName=DNS:sip.example.test,IP:127.0.0.1',
    'extendedKeyUsage=serverAuth',
  ];
  await ca('ca', 'sipworks test CA');
  await ca('rogue-ca', 'sipworks unknown CA');
  return {
    ca: await readFile(join(dir, 'ca.pem'), 'utf8'),
    server: await leaf('server', 'ca', 'sip.example.test', serverExt),
    client: await leaf('client', 'ca', 'client.example.test', [
      'subjectAltName=URI:sip:client.example.test,DNS:client.example.test',
      'extendedKeyUsage=clientAuth',
    ]),
    wrongHost: await leaf('wrong-host', 'ca', 'other.example.test', [
      'subjectAltName=DNS:other.example.test',
      'extendedKeyUsage=serverAuth',
    ]),
    unknownCa: await leaf('unknown-ca', 'rogue-ca', 'sip.example.test', serverExt),
    rogueClient: await leaf('rogue-client', 'rogue-ca', 'client.example.test', [
      'subjectAltName=URI:sip:client.example.test',
      'extendedKeyUsage=clientAuth',
    ]),
    // Not after is a day before not before (now): expired.
    expired: await leaf('expired', 'ca', 'sip.example.test', serverExt, '-1'),
    sipUri: await leaf('sip-uri', 'ca', 'sipworks test server', [
      'subjectAltName=URI:sip:sip.example.test',
      'extendedKeyUsage=serverAuth',
    ]),
  };
}

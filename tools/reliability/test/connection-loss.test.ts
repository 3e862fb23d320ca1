import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  type ClientInviteSession,
  DialogUsageManager,
  type Handle,
  type InviteSessionHandler,
  type ServerInviteSession,
} from '@sipworks/dum';
import type { SipResponse } from '@sipworks/message';
import { SipStack, type Transport } from '@sipworks/stack';
import { waitFor } from '@sipworks/stack/testing';
import { peerRequirement } from '@sipworks/test-support';
import { TcpTransport } from '@sipworks/transport-tcp';
import { TlsTransport } from '@sipworks/transport-tls';
import { WsTransport } from '@sipworks/transport-ws';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';

/**
 * Stream peers that go away in the middle of a transaction: a TCP connection reset after
 * the INVITE arrived, a WebSocket closed likewise, a TLS handshake that fails. The
 * client transaction fails at once with a transport error (RFC 3261 §17.1.4; not after
 * Timer B), the application hears it (onFailure with a locally made 503, then
 * onTerminated), and neither the DUM nor the stack keeps anything.
 */
const OFFER =
  'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function caller(transport: Transport) {
  const stack = new SipStack();
  await stack.addTransport(transport);
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  cleanups.push(() => stack.stop());
  const events: string[] = [];
  const handler: InviteSessionHandler = {
    onFailure: (_h, r: SipResponse) => events.push(`failure:${r.status}`),
    onTerminated: (_h, reason: string) => events.push(`terminated:${reason}`),
    onConnected: () => events.push('connected'),
  };
  dum.setInviteSessionHandler(handler);
  const profile = dum.makeUserProfile({ aor: '<sip:alice@127.0.0.1>' });
  const call = (uri: string): Handle<ClientInviteSession> =>
    dum.send<ClientInviteSession>(dum.makeInviteSession(uri, profile, { body: OFFER }));
  const empty = (): boolean => {
    const t = stack.transactionCount;
    return dum.dialogCount === 0 && t.client + t.server === 0;
  };
  return { stack, dum, events, call, empty };
}

/** The usage ended at once for a transport failure, and nothing is left. */
async function endedByTransport(
  c: Awaited<ReturnType<typeof caller>>,
  h: Handle<ClientInviteSession>,
  started: number,
): Promise<void> {
  await waitFor(() => c.events.some((e) => e.startsWith('terminated')), 5000);
  expect(c.events[0]).toBe('failure:503');
  expect(c.events.at(-1)).toMatch(/^terminated:/);
  // At once: not after Timer B (32 s).
  expect(Date.now() - started).toBeLessThan(3000);
  await waitFor(() => c.empty() && !h.isValid(), 5000);
}

const openssl = peerRequirement({
  peer: 'openssl',
  binary: 'openssl',
  install: 'apt-get install openssl',
  suite: 'reliability',
});

describe('stream connections lost mid-transaction (RFC 3261 §17.1.4, RFC 5626 §4.4)', () => {
  it('TCP: the peer resets the connection after reading the INVITE', async () => {
    let got = 0;
    const server = net.createServer((s) => {
      s.on('error', () => {});
      s.on('data', () => {
        got++;
        s.resetAndDestroy();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as net.AddressInfo).port;
    const c = await caller(new TcpTransport({ address: '127.0.0.1', port: 0 }));
    const started = Date.now();
    const h = c.call(`sip:bob@127.0.0.1:${port};transport=tcp`);
    await endedByTransport(c, h, started);
    expect(got).toBeGreaterThan(0);
  });

  it('TCP, server side: the caller resets after its INVITE; the answer cannot go out, the session ends, nothing is left', async () => {
    const stack = new SipStack();
    const transport = new TcpTransport({ address: '127.0.0.1', port: 0 });
    await stack.addTransport(transport);
    await stack.start();
    cleanups.push(() => stack.stop());
    const dum = new DialogUsageManager({ stack });
    const events: string[] = [];
    let session: Handle<ServerInviteSession> | undefined;
    dum.setInviteSessionHandler({
      onNewSession: (h) => {
        session = h;
        events.push('new');
      },
      onTerminated: (_h, reason: string) => events.push(`terminated:${reason}`),
    });
    const s = net.connect(transport.local.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('connect', () => r()));
    const branch = 'z9hG4bKreset1';
    s.write(
      `INVITE sip:bob@127.0.0.1:${transport.local.port};transport=tcp SIP/2.0\r\n` +
        `Via: SIP/2.0/TCP 127.0.0.1:${s.localPort};branch=${branch}\r\nMax-Forwards: 70\r\n` +
        'From: <sip:alice@127.0.0.1>;tag=r1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: reset-1\r\n' +
        `CSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:${s.localPort};transport=tcp>\r\n` +
        `Content-Type: application/sdp\r\nContent-Length: ${OFFER.length}\r\n\r\n${OFFER}`,
    );
    await waitFor(() => session !== undefined, 5000);
    s.resetAndDestroy();
    await waitFor(() => transport.connectionCount === 0, 5000);
    session?.get().accept({ body: OFFER.replace('alice', 'bob') });
    await waitFor(() => events.some((e) => e.startsWith('terminated')), 5000);
    await waitFor(() => {
      const t = stack.transactionCount;
      return dum.dialogCount === 0 && t.client + t.server === 0;
    }, 5000);
    expect(session?.isValid()).toBe(false);
  });

  it('WebSocket: the peer drops the connection after reading the INVITE', async () => {
    let got = 0;
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
    });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
    wss.on('connection', (ws) => {
      ws.on('message', () => {
        got++;
        ws.terminate();
      });
    });
    const port = (wss.address() as net.AddressInfo).port;
    const c = await caller(
      new WsTransport({ address: '127.0.0.1', listen: false, pingIntervalMs: 0 }),
    );
    const started = Date.now();
    const h = c.call(`sip:bob@127.0.0.1:${port};transport=ws`);
    await endedByTransport(c, h, started);
    expect(got).toBeGreaterThan(0);
  });

  describe.skipIf(openssl.skip)('TLS', () => {
    let dir: string;
    let cert: string;
    let key: string;
    beforeAll(() => {
      openssl.assertAvailable();
      dir = mkdtempSync(path.join(tmpdir(), 'sipworks-tls-fail-'));
      // A self-signed certificate for another name: no CA the client trusts, no match.
      execFileSync(
        openssl.binary as string,
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          path.join(dir, 'key.pem'),
          '-out',
          path.join(dir, 'cert.pem'),
          '-days',
          '2',
          '-subj',
          '/CN=other.test',
          '-addext',
          'subjectAltName=DNS:other.test',
        ],
        { stdio: 'ignore' },
      );
      cert = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
      key = readFileSync(path.join(dir, 'key.pem'), 'utf8');
      return () => rmSync(dir, { recursive: true, force: true });
    });

    it('a TLS handshake that fails (an untrusted certificate, verified by default): the INVITE fails at once', async () => {
      let handshakes = 0;
      const server = tls.createServer({ cert, key }, (s) => {
        s.on('error', () => {});
      });
      server.on('tlsClientError', () => handshakes++);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
      const port = (server.address() as net.AddressInfo).port;
      // No `ca`, no `rejectUnauthorized`: the defaults check the certificate.
      const c = await caller(new TlsTransport({ address: '127.0.0.1', port: 0 }));
      const started = Date.now();
      const h = c.call(`sips:bob@127.0.0.1:${port}`);
      await endedByTransport(c, h, started);
      await waitFor(() => handshakes > 0, 2000);
    });
  });
});

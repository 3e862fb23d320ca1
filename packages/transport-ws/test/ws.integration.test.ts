import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequest, type SipRequest } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import { answerAll, sendAndWait as send, waitFor } from '@sipworks/stack/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ClientOptions, WebSocket } from 'ws';
import { WsTransport, type WsTransportOptions } from '../src/index.ts';

const stacks: SipStack[] = [];
const clients: WebSocket[] = [];
const servers: http.Server[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

async function wsStack(
  opts: WsTransportOptions = {},
): Promise<{ stack: SipStack; transport: WsTransport }> {
  const stack = new SipStack();
  const transport = new WsTransport({ address: '127.0.0.1', port: 0, ...opts });
  await stack.addTransport(transport);
  await stack.start();
  stacks.push(stack);
  return { stack, transport };
}

function request(method: string, target: string, body?: string): SipRequest {
  return createRequest({
    method,
    uri: target,
    from: '<sip:a@example.test>;tag=a1',
    to: `<${target}>`,
    callId: `ws-${Math.random()}`,
    cseq: 1,
    ...(body !== undefined ? { body, contentType: 'text/plain' } : {}),
  });
}

type Frame = { text: string; binary: boolean };

/** A raw WebSocket client that collects the frames it receives. */
async function rawClient(
  url: string,
  protocols: string[] = ['sip'],
  options: ClientOptions = {},
): Promise<{ ws: WebSocket; frames: Frame[]; closed: Promise<void> }> {
  const ws = new WebSocket(url, protocols, options);
  clients.push(ws);
  const frames: Frame[] = [];
  ws.on('message', (data, isBinary) => {
    frames.push({ text: (data as Buffer).toString('latin1'), binary: isBinary });
  });
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  return { ws, frames, closed };
}

/** Open a handshake that should be refused; resolves with the HTTP status. */
function refusedStatus(
  url: string,
  protocols: string[],
  options: ClientOptions = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    clients.push(ws);
    const timer = setTimeout(() => reject(new Error('no answer to the handshake')), 5000);
    ws.on('error', () => {});
    ws.once('open', () => {
      clearTimeout(timer);
      reject(new Error('handshake accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
  });
}

const rawMessage = (n: number, viaHost = '127.0.0.1:1') =>
  `MESSAGE sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS ${viaHost};branch=z9hG4bKw${n}\r\nMax-Forwards: 70\r\n` +
  `From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: w${n}@x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 3\r\n\r\nab${n}`;

describe('WebSocket transport (RFC 7118)', () => {
  it('OPTIONS and MESSAGE between two stacks over WS, Via transport WS (§5)', async () => {
    const a = await wsStack();
    const b = await wsStack();
    const seen: SipRequest[] = [];
    answerAll(b.stack, 200, seen);
    const target = `sip:b@127.0.0.1:${b.transport.local.port};transport=ws`;
    const options = await send(a.stack, request('OPTIONS', target));
    expect(options.status).toBe(200);
    expect(options.via[0]?.transport).toBe('WS');
    const message = await send(a.stack, request('MESSAGE', target, 'hello over ws'));
    expect(message.status).toBe(200);
    expect(seen.map((r) => r.method)).toEqual(['OPTIONS', 'MESSAGE']);
    expect(seen[1]?.bodyText).toBe('hello over ws');
    expect(seen[1]?.via[0]?.transport).toBe('WS');
    expect(a.transport.protocol).toBe('WS');
    expect(a.transport.connectionCount).toBe(1);
    expect(b.transport.connectionCount).toBe(1);
  });

  it('reuses the connection for requests in the other direction', async () => {
    const a = await wsStack();
    const b = await wsStack();
    answerAll(a.stack);
    answerAll(b.stack);
    await send(
      a.stack,
      request('OPTIONS', `sip:b@127.0.0.1:${b.transport.local.port};transport=ws`),
    );
    const conn = [
      ...(
        b.transport as unknown as {
          connections: { connections: Iterable<{ remote: { port: number } }> };
        }
      ).connections.connections,
    ][0];
    const res = await send(
      b.stack,
      request('MESSAGE', `sip:a@127.0.0.1:${conn?.remote.port};transport=ws`, 'back'),
    );
    expect(res.status).toBe(200);
    expect(a.transport.connectionCount).toBe(1);
    expect(b.transport.connectionCount).toBe(1);
  });

  it('answers a client whose Via sent-by is unreachable on its connection (§5.4)', async () => {
    const b = await wsStack();
    answerAll(b.stack);
    const c = await rawClient(`ws://127.0.0.1:${b.transport.local.port}/`);
    c.ws.send(rawMessage(1, 'df7jal23ls0d.invalid'));
    await waitFor(() => c.frames.length === 1);
    expect(c.frames[0]?.text).toMatch(/^SIP\/2\.0 200 /);
    expect(c.frames[0]?.text).toContain('df7jal23ls0d.invalid');
  });

  it('rejects a handshake that does not offer the "sip" subprotocol (§4)', async () => {
    const b = await wsStack();
    const url = `ws://127.0.0.1:${b.transport.local.port}/`;
    expect(await refusedStatus(url, [])).toBe(400);
    expect(await refusedStatus(url, ['chat'])).toBe(400);
    const ok = await rawClient(url, ['chat', 'sip']);
    expect(ok.ws.protocol).toBe('sip');
    await waitFor(() => b.transport.connectionCount === 1);
  });

  it('rejects other paths with 404', async () => {
    const b = await wsStack({ path: '/sip' });
    expect(await refusedStatus(`ws://127.0.0.1:${b.transport.local.port}/other`, ['sip'])).toBe(
      404,
    );
    const ok = await rawClient(`ws://127.0.0.1:${b.transport.local.port}/sip`);
    expect(ok.ws.protocol).toBe('sip');
  });

  it('rejects Origins that are not allowed with 403 (RFC 6455 §10.2)', async () => {
    const b = await wsStack({ allowedOrigins: ['https://app.example.test'] });
    const url = `ws://127.0.0.1:${b.transport.local.port}/`;
    expect(await refusedStatus(url, ['sip'], { origin: 'https://evil.example.test' })).toBe(403);
    expect(await refusedStatus(url, ['sip'])).toBe(403);
    const ok = await rawClient(url, ['sip'], { origin: 'https://app.example.test' });
    expect(ok.ws.protocol).toBe('sip');

    const c = await wsStack({ allowedOrigins: (o) => o?.endsWith('.trusted.test') ?? false });
    const url2 = `ws://127.0.0.1:${c.transport.local.port}/`;
    expect(await refusedStatus(url2, ['sip'], { origin: 'https://x.other.test' })).toBe(403);
    await rawClient(url2, ['sip'], { origin: 'https://x.trusted.test' });
  });

  it('accepts binary frames; sends text frames for UTF-8 and binary otherwise (§5.1)', async () => {
    const b = await wsStack();
    const seen: SipRequest[] = [];
    answerAll(b.stack, 200, seen);
    const c = await rawClient(`ws://127.0.0.1:${b.transport.local.port}/`);
    c.ws.send(Buffer.from(rawMessage(1)), { binary: true });
    c.ws.send(rawMessage(2), { binary: false });
    await waitFor(() => c.frames.length === 2);
    expect(seen.map((r) => r.bodyText)).toEqual(['ab1', 'ab2']);
    expect(c.frames.every((f) => !f.binary && f.text.startsWith('SIP/2.0 200'))).toBe(true);

    const conn = [
      ...(
        b.transport as unknown as {
          connections: { connections: Iterable<{ id: string; remote: { port: number } }> };
        }
      ).connections.connections,
    ][0];
    const notUtf8 = Buffer.concat([
      Buffer.from(rawMessage(3).slice(0, -3)),
      Buffer.from([0xff, 0xfe, 0x00]),
    ]);
    await b.transport.send(notUtf8, {
      address: '127.0.0.1',
      port: conn?.remote.port ?? 0,
      connectionId: conn?.id,
    });
    await waitFor(() => c.frames.length === 3);
    expect(c.frames[2]?.binary).toBe(true);
  });

  it('answers a CRLFCRLF ping with CRLF (RFC 5626 §4.4.1)', async () => {
    const b = await wsStack();
    const c = await rawClient(`ws://127.0.0.1:${b.transport.local.port}/`);
    c.ws.send('\r\n\r\n');
    await waitFor(() => c.frames.length === 1);
    expect(c.frames[0]?.text).toBe('\r\n');
  });

  it('answers a message that does not parse with 400 and keeps the connection', async () => {
    const b = await wsStack();
    const seen: SipRequest[] = [];
    answerAll(b.stack, 200, seen);
    const c = await rawClient(`ws://127.0.0.1:${b.transport.local.port}/`);
    c.ws.send(rawMessage(1).replace('Max-Forwards: 70', 'Max-Forwards: seventy'));
    c.ws.send(rawMessage(2));
    await waitFor(() => c.frames.length === 2);
    expect(c.frames[0]?.text).toMatch(/^SIP\/2\.0 400 /);
    expect(c.frames[1]?.text).toMatch(/^SIP\/2\.0 200 /);
    expect(seen.length).toBe(1);
  });

  it('pings each connection and closes one that misses a pong', async () => {
    const b = await wsStack({ pingIntervalMs: 100 });
    const url = `ws://127.0.0.1:${b.transport.local.port}/`;
    const live = await rawClient(url);
    const dead = await rawClient(url, ['sip'], { autoPong: false });
    let pings = 0;
    live.ws.on('ping', () => pings++);
    await waitFor(() => b.transport.connectionCount === 2);
    await dead.closed;
    await new Promise((r) => setTimeout(r, 350));
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(live.ws.readyState).toBe(WebSocket.OPEN);
    expect(b.transport.connectionCount).toBe(1);
  });

  it('a lost connection fails the pending transaction at once', async () => {
    const a = await wsStack();
    const b = await wsStack();
    b.stack.setTransactionUser({
      onRequest() {
        for (const c of (
          b.transport as unknown as {
            connections: { connections: Iterable<{ socket: { destroy(): void } }> };
          }
        ).connections.connections)
          c.socket.destroy();
      },
    });
    const started = Date.now();
    const err = await send(
      a.stack,
      request('OPTIONS', `sip:b@127.0.0.1:${b.transport.local.port};transport=ws`),
    ).then(
      () => undefined,
      (e: { code: string }) => e,
    );
    expect(err?.code).toBe('SIP_ERR_TRANSPORT');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a refused handshake is a transport error', async () => {
    const a = await wsStack();
    const b = await wsStack({ allowedOrigins: [] });
    const err = await send(
      a.stack,
      request('OPTIONS', `sip:b@127.0.0.1:${b.transport.local.port};transport=ws`),
    ).then(
      () => undefined,
      (e: { code: string; message: string }) => e,
    );
    expect(err?.code).toBe('SIP_ERR_TRANSPORT');
    expect(err?.message).toContain('403');
  });

  it('attaches to an existing HTTP server on a path, and leaves it open on stop()', async () => {
    const server = http.createServer((_req, res) => res.end('plain http'));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const b = await wsStack({ server, path: '/sip' });
    answerAll(b.stack);
    expect(b.transport.local.port).toBe(port);
    expect(b.transport.protocol).toBe('WS');
    const a = await wsStack({ path: '/sip' });
    const res = await send(a.stack, request('OPTIONS', `sip:b@127.0.0.1:${port};transport=ws`));
    expect(res.status).toBe(200);
    await b.stack.stop();
    expect(server.listening).toBe(true);
    expect(server.listenerCount('upgrade')).toBe(0);
    const text = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
    expect(text).toBe('plain http');
  });

  it('a client-only transport (listen: false) reaches a server', async () => {
    const b = await wsStack();
    answerAll(b.stack);
    const a = await wsStack({ listen: false, advertised: { host: 'k3x9.invalid', port: 9 } });
    const res = await send(
      a.stack,
      request('OPTIONS', `sip:b@127.0.0.1:${b.transport.local.port};transport=ws`),
    );
    expect(res.status).toBe(200);
    expect(res.via[0]?.host).toBe('k3x9.invalid');
  });

  it('start() rejects when the port is taken, leaving nothing open', async () => {
    const b = await wsStack();
    const t = new WsTransport({ address: '127.0.0.1', port: b.transport.local.port });
    const sink = { receive() {}, connectionClosed() {}, error() {} };
    await expect(t.start(sink)).rejects.toThrow(/EADDRINUSE/);
    await t.stop();
    expect(() => t.local).toThrow(/not started/);
  });

  it('stop() closes the listener and every connection', async () => {
    const b = await wsStack();
    const c = await rawClient(`ws://127.0.0.1:${b.transport.local.port}/`);
    const port = b.transport.local.port;
    await b.stack.stop();
    await c.closed;
    expect(b.transport.connectionCount).toBe(0);
    const probe = http.createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((r) => probe.close(() => r()));
  });
});

describe('secure WebSocket (WSS)', () => {
  const openssl = '/usr/bin/openssl';
  let dir: string | undefined;
  let cert = '';
  let key = '';

  beforeAll(() => {
    if (!existsSync(openssl)) {
      if (process.env.CI === 'true') throw new Error(`${openssl} is needed for the WSS tests`);
      return;
    }
    dir = mkdtempSync(join(tmpdir(), 'sipworks-wss-'));
    execFileSync(
      openssl,
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    key = readFileSync(join(dir, 'key.pem'), 'utf8');
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('OPTIONS and MESSAGE between two stacks over WSS', async (ctx) => {
    if (!dir) {
      console.log(`skipped: ${openssl} not found, so no certificate can be made`);
      ctx.skip();
      return;
    }
    const a = await wsStack({ tls: { cert, key, ca: cert } });
    const b = await wsStack({ tls: { cert, key } });
    const seen: SipRequest[] = [];
    answerAll(b.stack, 200, seen);
    expect(a.transport.protocol).toBe('WSS');
    expect(a.transport.secure).toBe(true);
    const target = `sip:b@127.0.0.1:${b.transport.local.port};transport=wss`;
    const res = await send(a.stack, request('OPTIONS', target));
    expect(res.status).toBe(200);
    expect(res.via[0]?.transport).toBe('WSS');
    const msg = await send(a.stack, request('MESSAGE', target, 'hello over wss'));
    expect(msg.status).toBe(200);
    expect(seen[1]?.bodyText).toBe('hello over wss');
  });

  it('refuses a server whose certificate is not trusted', async (ctx) => {
    if (!dir) {
      console.log(`skipped: ${openssl} not found, so no certificate can be made`);
      ctx.skip();
      return;
    }
    const a = await wsStack({ tls: { cert, key } });
    const b = await wsStack({ tls: { cert, key } });
    const err = await send(
      a.stack,
      request('OPTIONS', `sip:b@127.0.0.1:${b.transport.local.port};transport=wss`),
    ).then(
      () => undefined,
      (e: { code: string }) => e,
    );
    expect(err?.code).toBe('SIP_ERR_TRANSPORT');
  });

  it('attaches to an https server (WSS), naming the domain in SNI and Host', async (ctx) => {
    if (!dir) {
      console.log(`skipped: ${openssl} not found, so no certificate can be made`);
      ctx.skip();
      return;
    }
    const server = https.createServer({ cert, key });
    servers.push(server);
    const hosts: string[] = [];
    server.on('upgrade', (req: http.IncomingMessage) => hosts.push(req.headers.host ?? ''));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const b = await wsStack({ server });
    const seen: SipRequest[] = [];
    answerAll(b.stack, 200, seen);
    expect(b.transport.protocol).toBe('WSS');
    const a = await wsStack({ listen: false, secure: true, tls: { ca: cert } });
    const port = b.transport.local.port;
    const id = await a.transport.send(new TextEncoder().encode(rawMessage(7)), {
      address: '127.0.0.1',
      port,
      serverName: 'localhost',
    });
    expect(id).toMatch(/^WSS-/);
    await waitFor(() => seen.length === 1);
    expect(hosts).toEqual([`localhost:${port}`]);
  });
});

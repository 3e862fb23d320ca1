import net from 'node:net';
import { createRequest, type SipRequest } from '@sipworks/message';
import { type Flow, SipStack, type SipStackError } from '@sipworks/stack';
import { answerAll, sendAndWait as send, waitFor } from '@sipworks/stack/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport, type TcpTransportOptions } from '../src/index.ts';

const stacks: SipStack[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
});

async function tcpStack(
  address = '127.0.0.1',
  opts?: TcpTransportOptions,
): Promise<{ stack: SipStack; transport: TcpTransport }> {
  const stack = new SipStack();
  const transport = new TcpTransport({ address, port: 0, ...opts });
  await stack.addTransport(transport);
  await stack.start();
  stacks.push(stack);
  return { stack, transport };
}

function request(method: string, target: string): SipRequest {
  return createRequest({
    method,
    uri: target,
    from: '<sip:a@example.test>;tag=a1',
    to: `<${target}>`,
    callId: `tcp-${Math.random()}`,
    cseq: 1,
  });
}

/** A raw TCP client that collects what it receives. */
async function rawClient(
  port: number,
): Promise<{ socket: net.Socket; data: () => string; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  let buf = '';
  socket.on('data', (d) => {
    buf += d.toString('latin1');
  });
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('error', () => {});
  return { socket, data: () => buf, closed };
}

describe('TCP transport (RFC 3261 §18)', () => {
  for (const address of ['127.0.0.1', '::1']) {
    it(`OPTIONS and 200 between two stacks over ${address}`, async () => {
      const a = await tcpStack(address);
      const b = await tcpStack(address);
      answerAll(b.stack);
      const host = address.includes(':') ? `[${address}]` : address;
      const res = await send(
        a.stack,
        request('OPTIONS', `sip:b@${host}:${b.transport.local.port};transport=tcp`),
      );
      expect(res.status).toBe(200);
      expect(res.via[0]?.transport).toBe('TCP');
    });
  }

  it('reuses one connection for both directions (RFC 3261 §18, RFC 5923)', async () => {
    const a = await tcpStack();
    const b = await tcpStack();
    answerAll(b.stack);
    answerAll(a.stack);
    await send(
      a.stack,
      request('OPTIONS', `sip:b@127.0.0.1:${b.transport.local.port};transport=tcp`),
    );
    await send(
      a.stack,
      request('OPTIONS', `sip:b@127.0.0.1:${b.transport.local.port};transport=tcp`),
    );
    expect(a.transport.connectionCount).toBe(1);
    expect(b.transport.connectionCount).toBe(1);
    // RFC 5923: a's requests carry ;alias, so b reaches a's listening address over the
    // connection a opened; no new connection opens.
    const res = await send(
      b.stack,
      request('OPTIONS', `sip:a@127.0.0.1:${a.transport.local.port};transport=tcp`),
    );
    expect(res.status).toBe(200);
    expect(a.transport.connectionCount).toBe(1);
    expect(b.transport.connectionCount).toBe(1);
  });

  it('frames split and merged messages (RFC 3261 §18.3)', async () => {
    const b = await tcpStack();
    const seen: SipRequest[] = [];
    answerAll(b.stack, 200, seen);
    const c = await rawClient(b.transport.local.port);
    const msg = (n: number) =>
      `MESSAGE sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKf${n}\r\nMax-Forwards: 70\r\n` +
      `From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: f${n}@x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 3\r\n\r\nab${n}`;
    const both = msg(1) + msg(2);
    c.socket.write(both.slice(0, 37));
    await new Promise((r) => setTimeout(r, 20));
    c.socket.write(both.slice(37));
    await waitFor(() => (c.data().match(/SIP\/2.0 200/g) ?? []).length === 2);
    expect(seen.map((r) => r.bodyText)).toEqual(['ab1', 'ab2']);
  });

  it('answers a CRLFCRLF ping with a CRLF pong (RFC 5626 §4.4.1)', async () => {
    const b = await tcpStack();
    const c = await rawClient(b.transport.local.port);
    c.socket.write('\r\n\r\n');
    await waitFor(() => c.data() === '\r\n');
    expect(c.data()).toBe('\r\n');
  });

  it('closes a connection whose header section exceeds the limit', async () => {
    const b = await tcpStack('127.0.0.1', { maxHeaderBytes: 1024 });
    const c = await rawClient(b.transport.local.port);
    c.socket.write(`OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nX-Long: ${'a'.repeat(4000)}\r\n`);
    await c.closed;
    expect(b.transport.connectionCount).toBe(0);
  });

  it('a lost connection fails the pending transaction at once, not after Timer F', async () => {
    const a = await tcpStack();
    const server = net.createServer((s) => {
      s.once('data', () => s.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const started = Date.now();
    const err = await send(
      a.stack,
      request('OPTIONS', `sip:x@127.0.0.1:${port};transport=tcp`),
    ).then(
      () => undefined,
      (e: SipStackError) => e,
    );
    await new Promise<void>((r) => server.close(() => r()));
    expect(err?.code).toBe('SIP_ERR_TRANSPORT');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('connection refused is a transport error', async () => {
    const a = await tcpStack();
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await send(
      a.stack,
      request('OPTIONS', `sip:x@127.0.0.1:${port};transport=tcp`),
    ).then(
      () => undefined,
      (e: SipStackError) => e,
    );
    expect(err?.code).toBe('SIP_ERR_TRANSPORT');
  });

  it('closes idle connections', async () => {
    const b = await tcpStack('127.0.0.1', { idleTimeoutMs: 200 });
    const c = await rawClient(b.transport.local.port);
    await c.closed;
    expect(b.transport.connectionCount).toBe(0);
  });

  it('a peer trickling one byte at a time is closed at firstMessageTimeoutMs, counted from the accept', async () => {
    const b = await tcpStack('127.0.0.1', { firstMessageTimeoutMs: 300 });
    const c = await rawClient(b.transport.local.port);
    const started = Date.now();
    const text =
      'OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKslow\r\n';
    let i = 0;
    const drip = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write(text.charAt(i++ % text.length));
    }, 50);
    try {
      await c.closed;
    } finally {
      clearInterval(drip);
    }
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2000);
    expect(b.transport.connectionCount).toBe(0);
  });

  it('after a whole message, a message trickled without end is closed at messageTimeoutMs', async () => {
    const b = await tcpStack('127.0.0.1', { messageTimeoutMs: 300, idleTimeoutMs: 10_000 });
    answerAll(b.stack);
    const c = await rawClient(b.transport.local.port);
    c.socket.write(
      'OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKwhole\r\n' +
        'From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: whole\r\n' +
        'CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
    );
    await waitFor(() => c.data().includes('SIP/2.0 200'));
    const started = Date.now();
    const drip = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write('X-Endless: a\r\n');
    }, 50);
    try {
      await c.closed;
    } finally {
      clearInterval(drip);
    }
    expect(Date.now() - started).toBeLessThan(2000);
    expect(b.transport.connectionCount).toBe(0);
  });

  it('stop() closes the listener and every connection', async () => {
    const b = await tcpStack();
    const c = await rawClient(b.transport.local.port);
    const port = b.transport.local.port;
    await b.stack.stop();
    await c.closed;
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((r) => probe.close(() => r()));
    expect(b.transport.connectionCount).toBe(0);
  });
});

describe('keep-alives on a flow (RFC 5626 §4.4.1)', () => {
  it('§4.4.1: sendKeepAlive sends CRLFCRLF on the flow of a transaction and sees the CRLF pong', async () => {
    const a = await tcpStack();
    const b = await tcpStack();
    answerAll(b.stack);
    const target = `sip:b@127.0.0.1:${b.transport.local.port};transport=tcp`;
    let flow: Flow | undefined;
    await new Promise<void>((resolve, reject) =>
      a.stack.sendRequest(request('OPTIONS', target), {
        onResponse: (_res, tx) => {
          flow = tx.flow;
          resolve();
        },
        onError: reject,
      }),
    );
    expect(flow?.destination.connectionId).toBeDefined();
    expect(await a.stack.sendKeepAlive(flow as Flow, 2000)).toBe(true);
  });

  it('§4.4.1, §4.5: no pong from a silent peer: false after the timeout; closeFlow closes the dead connection; the TU hears of closed connections', async () => {
    const a = await tcpStack();
    const closed: string[] = [];
    a.stack.setTransactionUser({
      onRequest: () => {},
      onConnectionClosed: (_t, id) => closed.push(id),
    });
    // A raw server that answers the OPTIONS but never a ping.
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      let buf = '';
      socket.on('data', (d) => {
        buf += d.toString('latin1');
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0 || !buf.startsWith('OPTIONS')) return;
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const keep = head
          .split('\r\n')
          .filter((l) => /^(via|from|to|call-id|cseq):/i.test(l))
          .map((l) => (/^to:/i.test(l) ? `${l};tag=raw` : l));
        socket.write(`SIP/2.0 200 OK\r\n${keep.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      let flow: Flow | undefined;
      await new Promise<void>((resolve, reject) =>
        a.stack.sendRequest(request('OPTIONS', `sip:raw@127.0.0.1:${port};transport=tcp`), {
          onResponse: (_res, tx) => {
            flow = tx.flow;
            resolve();
          },
          onError: reject,
        }),
      );
      const f = flow as Flow;
      const id = f.destination.connectionId as string;
      expect(await a.stack.sendKeepAlive(f, 300)).toBe(false);
      // The flow is dead: closeFlow closes its connection; a ping waiting on it gives up.
      const pending = a.stack.sendKeepAlive(f, 5000);
      expect(a.stack.closeFlow(f)).toBe(true);
      expect(await pending).toBe(false);
      expect(closed).toEqual([id]);
      expect(a.transport.connectionCount).toBe(0);
      // A peer that closes the connection itself: the TU is told too.
      let again: Flow | undefined;
      await new Promise<void>((resolve, reject) =>
        a.stack.sendRequest(request('OPTIONS', `sip:raw@127.0.0.1:${port};transport=tcp`), {
          onResponse: (_res, tx) => {
            again = tx.flow;
            resolve();
          },
          onError: reject,
        }),
      );
      const id2 = again?.destination.connectionId as string;
      expect(id2).not.toBe(id);
      for (const s of sockets) s.destroy();
      await waitFor(() => closed.includes(id2));
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

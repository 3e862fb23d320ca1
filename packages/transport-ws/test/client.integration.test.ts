import {
  createRequest,
  createResponse,
  type SipRequest,
  type SipResponse,
} from '@sipworks/message';
import { type Flow, SipStack, type TransactionUser } from '@sipworks/stack';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import {
  type WebSocketConstructor,
  WsClientTransport,
  type WsClientTransportOptions,
  WsTransport,
} from '../src/index.ts';

// Node 20 has no global WebSocket (only behind a flag): the ws package's client, which has
// the WHATWG shape (addEventListener, binaryType, protocol), stands in for a page's.
const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

const stacks: SipStack[] = [];
const servers: WebSocketServer[] = [];

afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
  await Promise.all(
    servers.splice(0).map((s) => {
      for (const c of s.clients) c.terminate();
      return new Promise<void>((r) => s.close(() => r()));
    }),
  );
});

/** A server stack on a WsTransport that answers 200 and remembers each request's flow. */
async function server(): Promise<{
  stack: SipStack;
  transport: WsTransport;
  seen: { request: SipRequest; flow: Flow }[];
}> {
  const stack = new SipStack();
  const transport = new WsTransport({ address: '127.0.0.1', port: 0, pingIntervalMs: 0 });
  await stack.addTransport(transport);
  const seen: { request: SipRequest; flow: Flow }[] = [];
  stack.setTransactionUser({
    onRequest(request, tx, received) {
      seen.push({
        request,
        flow: { transport: received.transport, destination: { ...received.source } },
      });
      if (request.method !== 'ACK')
        tx?.respond(createResponse(request, 200, undefined, { toTag: 's' }));
    },
  });
  await stack.start();
  stacks.push(stack);
  return { stack, transport, seen };
}

async function client(
  url: string,
  tu?: Partial<TransactionUser>,
  extra: Partial<WsClientTransportOptions> = {},
): Promise<{
  stack: SipStack;
  transport: WsClientTransport;
}> {
  const stack = new SipStack();
  const transport = new WsClientTransport({ url, WebSocket: NodeWebSocket, ...extra });
  await stack.addTransport(transport);
  stack.setTransactionUser({
    onRequest(request, tx) {
      tu?.onRequest?.(request, tx, undefined as never);
      if (request.method !== 'ACK')
        tx?.respond(createResponse(request, 200, undefined, { toTag: 'c' }));
    },
  });
  await stack.start();
  stacks.push(stack);
  return { stack, transport };
}

function request(method: string, uri: string): SipRequest {
  return createRequest({
    method,
    uri,
    from: '<sip:alice@example.test>;tag=a',
    to: `<${uri}>`,
    callId: `ws-client-${Math.random()}`,
    cseq: 1,
  });
}

function send(stack: SipStack, req: SipRequest): Promise<SipResponse> {
  return new Promise((resolve, reject) => {
    stack.sendRequest(req, {
      onResponse: (res) => {
        if (res.status >= 200) resolve(res);
      },
      onError: (err) => reject(err),
    });
  });
}

describe('WsClientTransport: SIP over the WHATWG WebSocket API (RFC 7118)', () => {
  it('opens one connection with the sip subprotocol and sends to the URL, whatever the target (§5.2: the URL is the outbound proxy)', async () => {
    const s = await server();
    const c = await client(`ws://127.0.0.1:${s.transport.local.port}/`);
    expect(c.transport.connected).toBe(true);
    expect(c.transport.protocol).toBe('WS');
    // A target that is not the server: the client has one connection, to the server.
    const res = await send(c.stack, request('OPTIONS', 'sip:bob@192.0.2.9:5999;transport=ws'));
    expect(res.status).toBe(200);
    const got = s.seen[0]?.request;
    expect(got?.method).toBe('OPTIONS');
    // §5.2: the Via sent-by is a .invalid name without a port.
    expect(got?.via[0]?.transport).toBe('WS');
    expect(got?.via[0]?.host).toMatch(/^[a-z0-9]+\.invalid$/);
    expect(got?.via[0]?.port).toBeUndefined();
    expect(s.transport.connectionCount).toBe(1);
  });

  it('receives requests from the server over the connection it opened (RFC 5626 §5.3 flow routing)', async () => {
    const s = await server();
    const received: SipRequest[] = [];
    const c = await client(`ws://127.0.0.1:${s.transport.local.port}/`, {
      onRequest: (r) => received.push(r),
    });
    await send(c.stack, request('REGISTER', 'sip:127.0.0.1;transport=ws'));
    const flow = s.seen[0]?.flow as Flow;
    const contact = `sip:alice@${c.transport.advertised.host};transport=ws`;
    // Without a route the .invalid host cannot be reached: nothing resolves it.
    const unreachable = await send(s.stack, request('MESSAGE', contact)).catch((e: Error) => e);
    expect(unreachable).toBeInstanceOf(Error);
    const unroute = s.stack.routeOverFlow(request('MESSAGE', contact).uri, flow);
    const res = await send(s.stack, request('MESSAGE', contact));
    expect(res.status).toBe(200);
    expect(received.map((r) => r.method)).toEqual(['MESSAGE']);
    unroute();
  });

  it('opens a new connection on the next send after the server closed it (reconnect: false)', async () => {
    const s = await server();
    const c = await client(`ws://127.0.0.1:${s.transport.local.port}/`, undefined, {
      reconnect: false,
    });
    await send(c.stack, request('OPTIONS', 'sip:127.0.0.1;transport=ws'));
    const first = s.seen[0]?.flow.destination.connectionId as string;
    s.transport.closeConnection(first);
    for (let i = 0; i < 100 && c.transport.connected; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(c.transport.connected).toBe(false);
    const res = await send(c.stack, request('OPTIONS', 'sip:127.0.0.1;transport=ws'));
    expect(res.status).toBe(200);
    expect(s.seen[1]?.flow.destination.connectionId).not.toBe(first);
  });

  it('reopens a lost connection by itself, backing off while the server is away (RFC 5626 §4.5), and reports each change', async () => {
    const s = await server();
    const changes: boolean[] = [];
    const c = await client(`ws://127.0.0.1:${s.transport.local.port}/`, undefined, {
      reconnect: { minDelayMs: 20, maxDelayMs: 100 },
      onConnectionChange: (up) => changes.push(up),
    });
    await send(c.stack, request('OPTIONS', 'sip:127.0.0.1;transport=ws'));
    s.transport.closeConnection(s.seen[0]?.flow.destination.connectionId as string);
    for (let i = 0; i < 200 && changes.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(changes).toEqual([true, false, true]);
    expect(c.transport.connected).toBe(true);
    expect(s.transport.connectionCount).toBe(1);
    // Over the new connection, without a send having asked for it.
    const res = await send(c.stack, request('OPTIONS', 'sip:127.0.0.1;transport=ws'));
    expect(res.status).toBe(200);
    expect(changes).toEqual([true, false, true]);
  });

  it('refuses a server that does not choose the sip subprotocol (RFC 7118 §4)', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => false });
    servers.push(wss);
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const port = (wss.address() as { port: number }).port;
    const stack = new SipStack();
    await stack.addTransport(
      new WsClientTransport({ url: `ws://127.0.0.1:${port}/`, WebSocket: NodeWebSocket }),
    );
    await expect(stack.start()).rejects.toThrow(/subprotocol|cannot connect/);
    await stack.stop();
  });

  it('rejects a URL that is not ws:// or wss://, and works without a global WebSocket only when given one', () => {
    expect(
      () => new WsClientTransport({ url: 'http://example.test/', WebSocket: NodeWebSocket }),
    ).toThrow(TypeError);
    const had = (globalThis as { WebSocket?: unknown }).WebSocket;
    delete (globalThis as { WebSocket?: unknown }).WebSocket;
    try {
      expect(() => new WsClientTransport({ url: 'ws://127.0.0.1:1/' })).toThrow(
        /no WebSocket here/,
      );
    } finally {
      if (had !== undefined) (globalThis as { WebSocket?: unknown }).WebSocket = had;
    }
    const wss = new WsClientTransport({
      url: 'wss://sip.example.test/ws',
      WebSocket: NodeWebSocket,
    });
    expect(wss.protocol).toBe('WSS');
    expect(wss.secure).toBe(true);
    expect(wss.server).toEqual({ address: 'sip.example.test', port: 443 });
  });
});

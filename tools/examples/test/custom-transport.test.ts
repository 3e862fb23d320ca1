import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  createRequest,
  createResponse,
  type SipRequest,
  type SipResponse,
} from '@sipworks/message';
import { SipStack, type SipStackError } from '@sipworks/stack';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnixSocketTransport } from '../src/unix-socket-transport.ts';

let dir: string;
const stacks: SipStack[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipworks-unix-'));
});

afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
  // stop() removed every socket file: the directory is empty.
  expect(fs.readdirSync(dir)).toEqual([]);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A started stack that answers every request with 200, and the requests it saw. */
async function startedStack(name: string): Promise<{ stack: SipStack; seen: SipRequest[] }> {
  const stack = new SipStack();
  stacks.push(stack);
  const seen: SipRequest[] = [];
  stack.setTransactionUser({
    onRequest(req, tx) {
      seen.push(req);
      tx?.respond(createResponse(req, 200, undefined, { toTag: `${name}-tag` }));
    },
  });
  await stack.start();
  return { stack, seen };
}

function options(to: string): SipRequest {
  return createRequest({
    method: 'OPTIONS',
    uri: `sip:${to}@localhost;transport=unix`,
    from: `<sip:example@localhost>;tag=${Math.random().toString(36).slice(2)}`,
    to: `<sip:${to}@localhost>`,
    callId: `unix-${Math.random().toString(36).slice(2)}`,
    cseq: 1,
  });
}

/** Send a request to the socket at `socketPath` and wait for its outcome. */
function send(stack: SipStack, req: SipRequest, socketPath: string): Promise<SipResponse> {
  return new Promise((resolve, reject) => {
    stack.sendRequest(
      req,
      {
        onResponse: (res) => {
          if (res.status >= 200) resolve(res);
        },
        onError: reject,
      },
      { destination: { address: socketPath, port: 0, protocol: 'UNIX' } },
    );
  });
}

describe('a custom transport: SIP over UNIX-domain sockets', () => {
  it('is added to running stacks, and they exchange OPTIONS both ways', async () => {
    const a = await startedStack('a');
    const b = await startedStack('b');
    const aPath = path.join(dir, 'a.sock');
    const bPath = path.join(dir, 'b.sock');
    const ta = new UnixSocketTransport({ path: aPath });
    const tb = new UnixSocketTransport({ path: bPath });
    // Both stacks are already running: the transports start as they are added.
    await a.stack.addTransport(ta);
    await b.stack.addTransport(tb);
    expect(fs.statSync(aPath).isSocket()).toBe(true);
    expect(fs.statSync(bPath).isSocket()).toBe(true);

    const res = await send(a.stack, options('b'), bPath);
    expect(res.status).toBe(200);
    expect(res.to.tag).toBe('b-tag');
    expect(res.via[0]?.transport).toBe('UNIX');
    expect(b.seen[0]?.method).toBe('OPTIONS');
    expect(b.seen[0]?.via[0]?.host).toBe('localhost');

    const back = await send(b.stack, options('a'), aPath);
    expect(back.status).toBe(200);
    expect(back.to.tag).toBe('a-tag');

    // A second request reuses the connection a opened to b.
    await send(a.stack, options('b'), bPath);
    expect(ta.connectionCount).toBe(2); // one opened to b, one accepted from b
    expect(tb.connectionCount).toBe(2);
    expect(b.seen).toHaveLength(2);
  });

  it('frames messages split across writes and answers CRLF keep-alives (RFC 5626 §4.4.1)', async () => {
    const b = await startedStack('b');
    const bPath = path.join(dir, 'b.sock');
    await b.stack.addTransport(new UnixSocketTransport({ path: bPath }));
    const raw = net.connect({ path: bPath });
    await new Promise<void>((r) => raw.once('connect', () => r()));
    let received = '';
    raw.on('data', (d) => {
      received += d.toString('latin1');
    });
    const req = options('b');
    req.setHeader('Via', 'SIP/2.0/UNIX localhost:0;branch=z9hG4bK-raw-1');
    const bytes = req.serialize();
    raw.write('\r\n\r\n');
    raw.write(bytes.subarray(0, 40));
    await new Promise((r) => setTimeout(r, 20));
    raw.write(bytes.subarray(40));
    const end = Date.now() + 3000;
    while (!received.includes('SIP/2.0 200') && Date.now() < end)
      await new Promise((r) => setTimeout(r, 10));
    raw.destroy();
    expect(received.startsWith('\r\nSIP/2.0 200 OK\r\n')).toBe(true);
    expect(b.seen).toHaveLength(1);
  });

  it('is removed at runtime: its socket goes, and requests to it fail', async () => {
    const a = await startedStack('a');
    const b = await startedStack('b');
    const aPath = path.join(dir, 'a.sock');
    const bPath = path.join(dir, 'b.sock');
    const ta = new UnixSocketTransport({ path: aPath });
    const tb = new UnixSocketTransport({ path: bPath });
    await a.stack.addTransport(ta);
    await b.stack.addTransport(tb);
    expect((await send(a.stack, options('b'), bPath)).status).toBe(200);

    await b.stack.removeTransport(tb);
    expect(b.stack.transports).not.toContain(tb);
    expect(fs.existsSync(bPath)).toBe(false);
    // a saw its connection close, and cannot connect again.
    await expect.poll(() => ta.connectionCount).toBe(0);
    const err = (await send(a.stack, options('b'), bPath).catch((e) => e)) as SipStackError;
    expect(err.code).toBe('SIP_ERR_TRANSPORT');
    // b has no UNIX transport left to send with.
    const none = (await send(b.stack, options('a'), aPath).catch((e) => e)) as SipStackError;
    expect(none.code).toBe('SIP_ERR_NO_TRANSPORT');

    // Added again, it serves again.
    await b.stack.addTransport(new UnixSocketTransport({ path: bPath }));
    expect((await send(a.stack, options('b'), bPath)).status).toBe(200);
  });

  it('replaces a stale socket file, and refuses a path in use or a file that is no socket', async () => {
    const a = await startedStack('a');
    const live = path.join(dir, 'live.sock');
    const stale = path.join(dir, 'stale.sock');
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(live, () => r()));
    // A second name for the socket outlives the server, as the file of a crashed process would.
    fs.linkSync(live, stale);
    const busy = new UnixSocketTransport({ path: live });
    await expect(a.stack.addTransport(busy)).rejects.toThrow(/in use/);
    await a.stack.removeTransport(busy);
    await new Promise<void>((r) => server.close(() => r()));
    expect(fs.statSync(stale).isSocket()).toBe(true);

    const t = new UnixSocketTransport({ path: stale });
    await a.stack.addTransport(t);
    expect(t.local.address).toBe(stale);
    await a.stack.removeTransport(t);

    const plain = path.join(dir, 'plain');
    fs.writeFileSync(plain, 'not a socket');
    const p = new UnixSocketTransport({ path: plain });
    await expect(a.stack.addTransport(p)).rejects.toThrow(/not a socket/);
    await a.stack.removeTransport(p);
    fs.rmSync(plain);
  });
});

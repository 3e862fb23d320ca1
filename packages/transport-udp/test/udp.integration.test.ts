import dgram from 'node:dgram';
import { createRequest, createResponse, parseMessage, type SipResponse } from '@sipworks/message';
import { bindingRequest, parseStun, SipStack } from '@sipworks/stack';
import { answerAll, sendAndWait as send } from '@sipworks/stack/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { UdpTransport } from '../src/index.ts';

const stacks: SipStack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
});

async function udpStack(address: string): Promise<{ stack: SipStack; transport: UdpTransport }> {
  const stack = new SipStack();
  const transport = new UdpTransport({ address, port: 0 });
  await stack.addTransport(transport);
  await stack.start();
  stacks.push(stack);
  return { stack, transport };
}

function options(target: string): ReturnType<typeof createRequest> {
  return createRequest({
    method: 'OPTIONS',
    uri: target,
    from: '<sip:a@example.test>;tag=a1',
    to: `<${target}>`,
    callId: `udp-${Math.random()}`,
    cseq: 1,
  });
}

describe('UDP transport (RFC 3261 §18)', () => {
  for (const address of ['127.0.0.1', '::1']) {
    it(`OPTIONS and 200 between two stacks over ${address}`, async () => {
      const a = await udpStack(address);
      const b = await udpStack(address);
      answerAll(b.stack);
      const host = address.includes(':') ? `[${address}]` : address;
      const res = await send(a.stack, options(`sip:b@${host}:${b.transport.local.port}`));
      expect(res.status).toBe(200);
      // The response came back to the Via that the stack wrote (rport filled in by b).
      const via = res.via[0];
      expect(via?.transport).toBe('UDP');
      expect(via?.rport).toBe(a.transport.local.port);
      expect(a.transport.local.family).toBe(address.includes(':') ? 'IPv6' : 'IPv4');
    });
  }

  it('binds port 0 to a free port and reports it', async () => {
    const a = await udpStack('127.0.0.1');
    expect(a.transport.local.port).toBeGreaterThan(0);
    expect(a.transport.protocol).toBe('UDP');
    expect(a.transport.reliable).toBe(false);
  });

  it('RFC 4475 §3.1.1.8: octets past Content-Length in a datagram are ignored', async () => {
    const b = await udpStack('127.0.0.1');
    const seen: string[] = [];
    b.stack.setTransactionUser({
      onRequest(req, tx) {
        seen.push(`${req.method} ${req.body.length}`);
        tx?.respond(createResponse(req, 200, undefined, { toTag: 'x' }));
      },
    });
    const raw = dgram.createSocket('udp4');
    await new Promise<void>((r) => raw.bind(0, '127.0.0.1', () => r()));
    const port = (raw.address() as { port: number }).port;
    const got = new Promise<SipResponse>((resolve) =>
      raw.on('message', (m) => resolve(parseMessage(m) as SipResponse)),
    );
    const text =
      `MESSAGE sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKtrail\r\n` +
      'Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: trail@x\r\nCSeq: 1 MESSAGE\r\n' +
      'Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhelloGARBAGE AFTER THE BODY';
    raw.send(text, b.transport.local.port, '127.0.0.1');
    const res = await got;
    raw.close();
    expect(res.status).toBe(200);
    expect(seen).toEqual(['MESSAGE 5']);
  });

  it('stop() closes the socket: the port can be bound again', async () => {
    const a = await udpStack('127.0.0.1');
    const port = a.transport.local.port;
    await a.stack.stop();
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '127.0.0.1', () => resolve());
    });
    s.close();
  });

  for (const address of ['127.0.0.1', '::1']) {
    it(`RFC 5626 §4.4.2: STUN keep-alives between two stacks over ${address}, and a raw Binding request answered with our reflexive address`, async () => {
      const a = await udpStack(address);
      const b = await udpStack(address);
      const flow = {
        transport: a.transport,
        destination: { address, port: b.transport.local.port },
      };
      expect(await a.stack.sendKeepAlive(flow, 3000)).toBe(true);
      const sock = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
      try {
        await new Promise<void>((r) => sock.bind(0, address, () => r()));
        const answer = new Promise<Buffer>((r) => sock.once('message', (m) => r(m)));
        sock.send(bindingRequest('a1b2c3d4e5f60718293a4b5c'), b.transport.local.port, address);
        const m = parseStun(new Uint8Array(await answer));
        expect(m?.kind).toBe('success');
        expect(m?.transactionId).toBe('a1b2c3d4e5f60718293a4b5c');
        expect(m?.mapped?.port).toBe(sock.address().port);
      } finally {
        sock.close();
      }
      // Nobody at the port: false once the deadline passes.
      const nobody = { ...flow, destination: { address, port: 9 } };
      expect(await a.stack.sendKeepAlive(nobody, 1200)).toBe(false);
    });
  }
});

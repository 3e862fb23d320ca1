import net from 'node:net';
import { createResponse, parseMessage, type SipRequest, type SipResponse } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import { waitFor } from '@sipworks/stack/testing';
import { TcpTransport } from '@sipworks/transport-tcp';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClientRegistration, DialogUsageManager } from '../src/index.ts';

const nodes: { dum: DialogUsageManager; stack: SipStack }[] = [];
const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const srv of servers.splice(0)) await new Promise<void>((r) => srv.close(() => r()));
  // The last made first: clients remove their bindings while the registrar still listens.
  for (const n of nodes.splice(0).reverse()) {
    await n.dum.shutdown({ timeoutMs: 2000 });
    await n.stack.stop();
  }
});

async function tcpDum(
  port = 0,
): Promise<{ dum: DialogUsageManager; stack: SipStack; port: number }> {
  const stack = new SipStack();
  const t = new TcpTransport({ address: '127.0.0.1', port });
  await stack.addTransport(t);
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  nodes.push({ dum, stack });
  return { dum, stack, port: t.local.port };
}

describe('SIP Outbound over TCP on loopback (RFC 5626)', () => {
  it('§4.4.1, §4.5: keep-alive pongs on the flow; the registrar drops the flow and the client registers again on a new one', async () => {
    const registrar = await tcpDum();
    registrar.dum.setServerRegistrationHandler({});
    registrar.dum.setRegistrarOptions({ gruu: true });
    const alice = await tcpDum();
    const profile = alice.dum.makeUserProfile({
      aor: `<sip:alice@127.0.0.1:${registrar.port}>`,
      outboundProxy: `sip:127.0.0.1:${registrar.port};transport=tcp`,
    });
    profile.set('instanceId', 'urn:uuid:2e1f6ad0-0bd5-4c6b-9c5f-4b0f1a3f7d10');
    profile.set('outbound', true);
    profile.set('outboundKeepAliveSeconds', 0.1);
    profile.set('outboundPongTimeoutSeconds', 2);
    profile.set('outboundBackoffBaseSeconds', 0.2);
    const ok: SipResponse[] = [];
    let flowsLost = 0;
    alice.dum.setClientRegistrationHandler({
      onSuccess: (_h, r) => ok.push(r),
      onFlowTerminated: () => flowsLost++,
    });
    const h = alice.dum.send<ClientRegistration>(
      alice.dum.makeRegistration(undefined, profile, { expires: 600 }),
    );
    await waitFor(() => ok.length === 1);
    const reg = h.get();
    expect(reg.outboundActive).toBe(true);
    expect(reg.request.contacts[0]?.uri.params.get('transport')).toBe('tcp');
    expect(reg.pubGruu?.params.get('gr')).toBe('urn:uuid:2e1f6ad0-0bd5-4c6b-9c5f-4b0f1a3f7d10');
    const firstFlow = reg.flow?.destination.connectionId;
    expect(firstFlow).toBeDefined();
    // §4.4.1: CRLFCRLF pings, each answered by a CRLF pong.
    await waitFor(() => reg.pongs >= 2);

    // The registrar loses every connection (a restart on the same port).
    const [old] = registrar.stack.transports;
    await registrar.stack.removeTransport(old as TcpTransport);
    await registrar.stack.addTransport(
      new TcpTransport({ address: '127.0.0.1', port: registrar.port }),
    );

    await waitFor(() => flowsLost === 1 && ok.length === 2, 10_000);
    expect(h.get().state).toBe('registered');
    expect(h.get().flow?.destination.connectionId).toBeDefined();
    expect(h.get().flow?.destination.connectionId).not.toBe(firstFlow);
    const bindings = await registrar.dum.registrationPersistenceManager.getContacts(
      `sip:alice@127.0.0.1:${registrar.port}`,
    );
    expect(bindings).toHaveLength(1);
    expect(bindings[0]?.regId).toBe(1);
    await waitFor(() => h.get().pongs >= 1);
  });

  it('§4.4.1: a registrar that never answers the keep-alive: the flow fails, its connection is closed, and the client registers again on a new connection', async () => {
    // A raw TCP registrar: answers each REGISTER 200 with Require: outbound, never a ping.
    const registers: { req: SipRequest; remotePort: number }[] = [];
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      let buf = Buffer.alloc(0);
      socket.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        for (let i = 0; i < 20; i++) {
          while (buf.length >= 2 && buf[0] === 13 && buf[1] === 10) buf = buf.subarray(2);
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const req = parseMessage(new Uint8Array(buf.subarray(0, end + 4))) as SipRequest;
          buf = buf.subarray(end + 4);
          registers.push({ req, remotePort: socket.remotePort ?? 0 });
          const res = createResponse(req, 200, undefined, { toTag: `raw${registers.length}` });
          const c = req.contacts[0]?.clone();
          if (c) {
            c.params.set('expires', '600');
            res.setHeader('Contact', c);
          }
          res.setHeader('Require', 'outbound');
          socket.write(res.serialize());
        }
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;

    const alice = await tcpDum();
    const profile = alice.dum.makeUserProfile({
      aor: `<sip:alice@127.0.0.1:${port}>`,
      outboundProxy: `sip:127.0.0.1:${port};transport=tcp`,
    });
    profile.set('instanceId', 'urn:uuid:7d3c0f46-8f1e-4a0e-9d7b-3b1e6f0c2a55');
    profile.set('outbound', true);
    profile.set('outboundKeepAliveSeconds', 0.05);
    profile.set('outboundPongTimeoutSeconds', 0.2);
    const ok: SipResponse[] = [];
    let flowsLost = 0;
    alice.dum.setClientRegistrationHandler({
      onSuccess: (_h, r) => ok.push(r),
      onFlowTerminated: () => flowsLost++,
    });
    const h = alice.dum.send<ClientRegistration>(
      alice.dum.makeRegistration(undefined, profile, { expires: 600 }),
    );
    await waitFor(() => ok.length === 1);
    expect(h.get().outboundActive).toBe(true);
    const first = h.get().flow?.destination.connectionId;
    // (The new flow fails the same way a quarter of a second later: counts only grow.)
    await waitFor(() => flowsLost >= 1 && ok.length >= 2, 5000);
    expect(h.get().pongs).toBe(0);
    // The second REGISTER came on a new connection (another source port), same Call-ID, CSeq + 1.
    expect(registers.length).toBeGreaterThanOrEqual(2);
    expect(registers[1]?.remotePort).not.toBe(registers[0]?.remotePort);
    expect(registers[1]?.req.callId).toBe(registers[0]?.req.callId);
    expect(registers[1]?.req.cseq.seq).toBe((registers[0]?.req.cseq.seq ?? 0) + 1);
    expect(h.get().flow?.destination.connectionId).not.toBe(first);
    // Stop before the next keep-alive fails again.
    h.get().end();
  });
});

import type { SipResponse } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import { waitFor } from '@sipworks/stack/testing';
import { TcpTransport } from '@sipworks/transport-tcp';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClientRegistration, DialogUsageManager } from '../src/index.ts';

const nodes: { dum: DialogUsageManager; stack: SipStack }[] = [];
afterEach(async () => {
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
});

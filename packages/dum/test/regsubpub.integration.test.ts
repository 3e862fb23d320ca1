import type { SipRequest, SipResponse } from '@sipworks/message';
import { SipStack, type Transport } from '@sipworks/stack';
import { waitFor } from '@sipworks/stack/testing';
import { TcpTransport } from '@sipworks/transport-tcp';
import { UdpTransport } from '@sipworks/transport-udp';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildPidf,
  type ClientPublication,
  type ClientRegistration,
  type ClientSubscription,
  DialogUsageManager,
  PIDF_CONTENT_TYPE,
  parsePidf,
} from '../src/index.ts';

const nodes: { dum: DialogUsageManager; stack: SipStack }[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0).reverse()) {
    await n.dum.shutdown({ timeoutMs: 2000 });
    await n.stack.stop();
  }
});

type Protocol = 'udp' | 'tcp';

async function dumOver(protocol: Protocol): Promise<{ dum: DialogUsageManager; port: number }> {
  const stack = new SipStack();
  const t: Transport =
    protocol === 'udp'
      ? new UdpTransport({ address: '127.0.0.1', port: 0 })
      : new TcpTransport({ address: '127.0.0.1', port: 0 });
  await stack.addTransport(t);
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  nodes.push({ dum, stack });
  return { dum, port: t.local.port };
}

function basics(n: SipRequest | undefined): string[] {
  return parsePidf(n?.body ?? new Uint8Array())?.tuples.map((t) => t.basic) ?? [];
}

describe('REGISTER, SUBSCRIBE/NOTIFY and PUBLISH between two DUMs on loopback', () => {
  for (const protocol of ['udp', 'tcp'] as const) {
    it(`RFC 3261 §10, RFC 6665, RFC 3903 over ${protocol.toUpperCase()}: register, subscribe, publish, fan-out, unpublish, unsubscribe, unregister`, async () => {
      // The server: registrar, presence state agent and notifier in one DUM.
      const server = await dumOver(protocol);
      server.dum.setServerRegistrationHandler({});
      server.dum.addServerPublicationHandler('presence', {});
      server.dum.addServerSubscriptionHandler('presence', {
        onNewSubscription: (h) => {
          const s = h.get();
          s.accept(200);
          void s.publishedState().then((n) => s.send(n));
        },
      });
      const client = await dumOver(protocol);
      const aor = `sip:alice@127.0.0.1:${server.port}`;
      const profile = client.dum.makeUserProfile({
        aor: `<${aor}>`,
        outboundProxy: `sip:127.0.0.1:${server.port};transport=${protocol}`,
      });

      // REGISTER (§10.2).
      const registered: SipResponse[] = [];
      const removed: SipResponse[] = [];
      client.dum.setClientRegistrationHandler({
        onSuccess: (_h, r) => registered.push(r),
        onRemoved: (_h, r) => removed.push(r),
      });
      const reg = client.dum.send<ClientRegistration>(
        client.dum.makeRegistration(undefined, profile, { expires: 600 }),
      );
      await waitFor(() => registered.length === 1);
      const bindings = await server.dum.registrationPersistenceManager.getContacts(aor);
      expect(bindings).toHaveLength(1);
      expect(bindings[0]?.contact.uri.port).toBe(client.port);
      if (protocol === 'tcp') expect(bindings[0]?.contact.uri.params.get('transport')).toBe('tcp');

      // SUBSCRIBE to alice's own presence (RFC 6665 §4.1): nothing published yet: closed.
      const notifies: SipRequest[] = [];
      const ended: (SipRequest | undefined)[] = [];
      client.dum.addClientSubscriptionHandler('presence', {
        onUpdateActive: (_h, n) => notifies.push(n),
        onTerminated: (_h, n) => ended.push(n),
      });
      const sub = client.dum.send<ClientSubscription>(
        client.dum.makeSubscription(aor, 'presence', profile, { expires: 600 }),
      );
      await waitFor(() => notifies.length === 1);
      expect(basics(notifies[0])).toEqual(['closed']);

      // PUBLISH (RFC 3903 §4.1): the NOTIFY carries the published document.
      const published: SipResponse[] = [];
      const unpublished: SipResponse[] = [];
      client.dum.addClientPublicationHandler('presence', {
        onSuccess: (_h, r) => published.push(r),
        onRemove: (_h, r) => unpublished.push(r),
      });
      const pub = client.dum.send<ClientPublication>(
        client.dum.makePublication(
          aor,
          'presence',
          profile,
          buildPidf({
            entity: `pres:alice@127.0.0.1:${server.port}`,
            tuples: [{ id: 'p1', basic: 'open', note: `over ${protocol}` }],
          }),
          PIDF_CONTENT_TYPE,
          { expires: 600 },
        ),
      );
      await waitFor(() => published.length === 1 && notifies.length === 2);
      expect(published[0]?.header('SIP-ETag')).toBeTruthy();
      expect(basics(notifies[1])).toEqual(['open']);
      expect(parsePidf(notifies[1]?.body as Uint8Array)?.tuples[0]?.note).toBe(`over ${protocol}`);

      // Remove the publication (§4.5): closed again.
      pub.get().end();
      await waitFor(() => unpublished.length === 1 && notifies.length === 3);
      expect(basics(notifies[2])).toEqual(['closed']);

      // Unsubscribe (RFC 6665 §4.1.2.3): the final NOTIFY is terminated.
      sub.get().end();
      await waitFor(() => ended.length === 1);
      expect(ended[0]?.header('Subscription-State')).toMatch(/^terminated/);

      // Unregister (§10.2.2).
      reg.get().removeMyBindings();
      await waitFor(() => removed.length === 1);
      expect(await server.dum.registrationPersistenceManager.getContacts(aor)).toEqual([]);
      await waitFor(() => client.dum.dialogCount === 0 && server.dum.dialogCount === 0);
    });
  }
});

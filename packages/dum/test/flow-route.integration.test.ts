import { NameAddr, parseUri } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import { TcpTransport } from '@sipworks/transport-tcp';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClientRegistration, DialogUsageManager, type Handle } from '../src/index.ts';

const nodes: { dum: DialogUsageManager; stack: SipStack }[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.dum.shutdown();
    await n.stack.stop();
  }
});

async function tcpDum(): Promise<{ dum: DialogUsageManager; port: number }> {
  const stack = new SipStack();
  const t = new TcpTransport({ address: '127.0.0.1', port: 0 });
  await stack.addTransport(t);
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  nodes.push({ dum, stack });
  return { dum, port: t.local.port };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error('condition not reached');
}

/** A registrar reaching a UA over the connection it registered on (RFC 5626 §5.3, RFC 7118 §5). */
describe('the DUM registrar routes requests to a binding over its flow', () => {
  for (const contact of [
    {
      name: 'a .invalid host (a WebSocket client, RFC 7118 §5)',
      uri: 'sip:alice@k3x9.invalid;transport=tcp',
    },
    { name: 'an ;ob Contact (RFC 5626 §5.4)', uri: 'sip:alice@192.0.2.77:5999;transport=tcp;ob' },
  ]) {
    it(`${contact.name}: a MESSAGE to the Contact arrives over the REGISTER's connection, and not after unregistering`, async () => {
      const registrar = await tcpDum();
      const ua = await tcpDum();
      registrar.dum.setServerRegistrationHandler({
        onAdd: (h) => void h.get().accept(),
        onRefresh: (h) => void h.get().accept(),
        onRemove: (h) => void h.get().accept(),
        onRemoveAll: (h) => void h.get().accept(),
      });
      const profile = ua.dum.makeUserProfile({
        aor: '<sip:alice@127.0.0.1>',
        outboundProxy: `sip:127.0.0.1:${registrar.port};transport=tcp;lr`,
      });
      profile.set('overrideContact', new NameAddr(parseUri(contact.uri)));
      const got: string[] = [];
      ua.dum.setServerPagerMessageHandler({
        onMessageArrived: (h, m) => {
          got.push(m.bodyText);
          h.get().accept();
        },
      });
      let registered = 0;
      let removed = 0;
      ua.dum.setClientRegistrationHandler({
        onSuccess: () => registered++,
        onRemoved: () => removed++,
      });
      const reg: Handle<ClientRegistration> = ua.dum.send(
        ua.dum.makeRegistration(undefined, profile),
      );
      await until(() => registered > 0);

      const statuses: number[] = [];
      registrar.dum.setClientPagerMessageHandler({
        onSuccess: (_h, r) => statuses.push(r.status),
        onFailure: (_h, r) => statuses.push(r.status),
      });
      const server = registrar.dum.makeUserProfile({ aor: '<sip:registrar@127.0.0.1>' });
      registrar.dum.makePagerMessage(contact.uri, server).get().page('over your flow');
      await until(() => statuses.length > 0);
      expect(statuses).toEqual([200]);
      expect(got).toEqual(['over your flow']);

      // Unregistered: the route goes with the binding; the address itself is unreachable.
      reg.get().removeMyBindings();
      await until(() => removed > 0);
      registrar.dum.makePagerMessage(contact.uri, server).get().page('too late');
      await until(() => statuses.length > 1, 40_000);
      expect(statuses[1]).toBeGreaterThanOrEqual(400);
      expect(got).toEqual(['over your flow']);
    }, 60_000);
  }

  it('a closed connection takes its route with it (RFC 5626 §4.4), so routes do not pile up', async () => {
    const registrar = await tcpDum();
    const ua = await tcpDum();
    registrar.dum.setServerRegistrationHandler({ onAdd: (h) => void h.get().accept() });
    const profile = ua.dum.makeUserProfile({
      aor: '<sip:alice@127.0.0.1>',
      outboundProxy: `sip:127.0.0.1:${registrar.port};transport=tcp;lr`,
    });
    profile.set('overrideContact', new NameAddr(parseUri('sip:alice@q7.invalid;transport=tcp')));
    let registered = 0;
    ua.dum.setClientRegistrationHandler({ onSuccess: () => registered++ });
    ua.dum.send(ua.dum.makeRegistration(undefined, profile));
    await until(() => registered > 0);
    expect(registrar.dum.registrarFlowRoutes.size).toBe(1);
    // The UA's host goes away without unregistering: its connection closes.
    const at = nodes.findIndex((x) => x.dum === ua.dum);
    const [n] = nodes.splice(at, 1);
    await n?.stack.stop();
    await until(() => registrar.dum.registrarFlowRoutes.size === 0);
  });
});

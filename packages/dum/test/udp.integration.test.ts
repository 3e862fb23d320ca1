import type { SipResponse } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import { UdpTransport } from '@sipworks/transport-udp';
import { afterEach, describe, expect, it } from 'vitest';
import { computeHa1, DialogUsageManager, nodeHasher, ServerAuthManager } from '../src/index.ts';

const nodes: { dum: DialogUsageManager; stack: SipStack }[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.dum.shutdown();
    // The DUM was given its stack, so it leaves stopping it to its owner.
    await n.stack.stop();
  }
});

async function udpDum(user: string): Promise<{
  dum: DialogUsageManager;
  port: number;
  profile: ReturnType<DialogUsageManager['makeUserProfile']>;
}> {
  const stack = new SipStack();
  const t = new UdpTransport({ address: '127.0.0.1', port: 0 });
  await stack.addTransport(t);
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  nodes.push({ dum, stack });
  const profile = dum.makeUserProfile({ aor: `<sip:${user}@127.0.0.1:${t.local.port}>` });
  return { dum, port: t.local.port, profile };
}

describe('two DUMs over UDP on loopback', () => {
  it('OPTIONS, then a MESSAGE through a SHA-256 digest challenge', async () => {
    const a = await udpDum('alice');
    const b = await udpDum('bob');
    const realm = 'udp.example.test';
    b.dum.setServerAuthManager(
      new ServerAuthManager(
        async (u) =>
          u === 'alice'
            ? { ha1: { 'SHA-256': computeHa1(nodeHasher, 'SHA-256', u, realm, 'pw') } }
            : undefined,
        {
          realm,
          algorithms: ['SHA-256'],
        },
      ),
    );
    const got: string[] = [];
    b.dum.setServerPagerMessageHandler({
      onMessageArrived: (h, m) => {
        got.push(m.bodyText);
        h.get().accept();
      },
    });
    a.profile.addCredentials({ realm, username: 'alice', password: 'pw' });

    const optionsDone = new Promise<SipResponse>((resolve) =>
      a.dum.addOutOfDialogHandler('OPTIONS', {
        onSuccess: (_h, r) => resolve(r),
        onFailure: (_h, r) => resolve(r),
      }),
    );
    a.dum.send(a.dum.makeOutOfDialogRequest(`sip:bob@127.0.0.1:${b.port}`, 'OPTIONS', a.profile));
    // OPTIONS is challenged too (the auth manager guards every out-of-dialog request).
    expect((await optionsDone).status).toBe(200);

    const pageDone = new Promise<number>((resolve) =>
      a.dum.setClientPagerMessageHandler({
        onSuccess: (_h, r) => resolve(r.status),
        onFailure: (_h, r) => resolve(r.status),
      }),
    );
    a.dum.makePagerMessage(`sip:bob@127.0.0.1:${b.port}`, a.profile).get().page('over udp');
    expect(await pageDone).toBe(200);
    expect(got).toEqual(['over udp']);
  });
});

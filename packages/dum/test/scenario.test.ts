import { SipStack } from '@sipworks/stack';
import {
  MemoryNetwork,
  MemoryTransport,
  ScriptedPeer,
  VirtualClock,
} from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import { DialogUsageManager, ServerAuthManager } from '../src/index.ts';

async function setup() {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 11 });
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, port: 5080 }));
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
  const profile = dum.makeUserProfile({ aor: '<sip:alice@example.test>' });
  return {
    clock,
    network,
    stack,
    dum,
    peer,
    profile,
    dumAddress: { address: '127.0.0.1', port: 5080 },
  };
}

describe('DUM against a scripted peer (wire transcripts)', () => {
  it('RFC 3261 §22.2: MESSAGE, 401, MESSAGE with Authorization (CSeq + 1, same Call-ID), 200', async () => {
    const { dum, peer, profile } = await setup();
    profile.addCredentials({ realm: 'example.test', username: 'alice', password: 'pw' });
    const outcomes: number[] = [];
    dum.setClientPagerMessageHandler({
      onSuccess: (_h, r) => outcomes.push(r.status),
      onFailure: (_h, r) => outcomes.push(r.status),
    });
    dum.makePagerMessage('sip:bob@127.0.0.1:5090', profile).get().page('hi');

    const first = await peer.expectRequest('MESSAGE');
    expect(first.message.has('Authorization')).toBe(false);
    const auth = new ServerAuthManager(async () => ({ password: 'pw' }), { realm: 'example.test' });
    await peer.send(auth.challenge(first.message), first.source);

    const second = await peer.expectRequest('MESSAGE');
    expect(second.message.callId).toBe(first.message.callId);
    expect(second.message.cseq.seq).toBe(first.message.cseq.seq + 1);
    expect(second.message.via[0]?.branch).not.toBe(first.message.via[0]?.branch);
    expect((await auth.verify(second.message)).outcome).toBe('ok');
    await peer.respond(second, 200);
    await peer.expectNothing(100);
    expect(outcomes).toEqual([200]);
  });

  it('RFC 3261 §11.2: a peer OPTIONS gets 200 with Allow, Accept, Supported', async () => {
    const { dum, peer, dumAddress } = await setup();
    dum.masterProfile.set('supportedOptionTags', ['x-test']);
    await peer.send(
      'OPTIONS sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKsc1\r\n' +
        'Max-Forwards: 70\r\nFrom: <sip:peer@x>;tag=p\r\nTo: <sip:alice@x>\r\nCall-ID: sc1@x\r\nCSeq: 7 OPTIONS\r\n' +
        'Accept: application/sdp\r\nContent-Length: 0\r\n\r\n',
      dumAddress,
    );
    const res = await peer.expectResponse(200, 'OPTIONS');
    expect(res.message.headers('Allow')).toEqual(
      expect.arrayContaining(['INVITE', 'OPTIONS', 'MESSAGE']),
    );
    expect(res.message.headers('Supported')).toEqual(['x-test', '100rel']);
    expect(res.message.to.tag).toBeDefined();
    expect(res.message.cseq.seq).toBe(7);
  });

  it('RFC 3261 §12.2.2: a request with a To tag for no known dialog gets 481', async () => {
    const { peer, dumAddress } = await setup();
    await peer.send(
      'INFO sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKsc2\r\n' +
        'Max-Forwards: 70\r\nFrom: <sip:peer@x>;tag=p\r\nTo: <sip:alice@x>;tag=nodialog\r\nCall-ID: sc2@x\r\nCSeq: 2 INFO\r\n' +
        'Content-Length: 0\r\n\r\n',
      dumAddress,
    );
    await peer.expectResponse(481);
  });

  it('with a ServerAuthManager, an unauthenticated MESSAGE never reaches the handler', async () => {
    const { dum, peer, dumAddress } = await setup();
    dum.setServerAuthManager(
      new ServerAuthManager(async () => ({ password: 'pw' }), { realm: 'example.test' }),
    );
    let reached = 0;
    dum.setServerPagerMessageHandler({
      onMessageArrived: () => {
        reached++;
      },
    });
    await peer.send(
      'MESSAGE sip:alice@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKsc3\r\n' +
        'Max-Forwards: 70\r\nFrom: <sip:peer@x>;tag=p\r\nTo: <sip:alice@x>\r\nCall-ID: sc3@x\r\nCSeq: 1 MESSAGE\r\n' +
        'Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi',
      dumAddress,
    );
    const res = await peer.expectResponse(401);
    expect(res.message.headers('WWW-Authenticate')[0]).toMatch(/algorithm=SHA-256/);
    expect(reached).toBe(0);
  });
});

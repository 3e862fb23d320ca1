import { SipStack } from '@sipworks/stack';
import {
  MemoryNetwork,
  MemoryTransport,
  ScriptedPeer,
  VirtualClock,
} from '@sipworks/stack/testing';
import { describe, expect, it } from 'vitest';
import { DialogUsageManager, ServerAuthManager } from '../src/index.ts';
import { until } from './support.ts';

const SDP =
  'v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const PIDF =
  '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:u@127.0.0.1"><tuple id="t"><status><basic>open</basic></status></tuple></presence>';

/** One request per kind of usage a DUM hands to an application handler. */
const REQUESTS: { method: string; extra: string; body?: { type: string; text: string } }[] = [
  {
    method: 'INVITE',
    extra: 'Contact: <sip:p@127.0.0.1:5090>\r\n',
    body: { type: 'application/sdp', text: SDP },
  },
  { method: 'REGISTER', extra: 'Contact: <sip:p@127.0.0.1:5090>\r\nExpires: 600\r\n' },
  {
    method: 'SUBSCRIBE',
    extra: 'Contact: <sip:p@127.0.0.1:5090>\r\nEvent: presence\r\nExpires: 600\r\n',
  },
  {
    method: 'PUBLISH',
    extra: 'Event: presence\r\nExpires: 600\r\n',
    body: { type: 'application/pidf+xml', text: PIDF },
  },
  { method: 'MESSAGE', extra: '', body: { type: 'text/plain', text: 'hi' } },
  { method: 'OPTIONS', extra: '' },
  { method: 'INFO', extra: '' },
];

let n = 0;
function text(
  method: string,
  extra: string,
  body?: { type: string; text: string },
  auth = '',
): string {
  n++;
  const b = body?.text ?? '';
  return (
    `${method} sip:u@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKgate${n}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:p@127.0.0.1>;tag=g${n}\r\nTo: <sip:u@127.0.0.1>\r\n` +
    `Call-ID: gate-${n}@127.0.0.1\r\nCSeq: 1 ${method}\r\n${extra}${auth}` +
    (body ? `Content-Type: ${body.type}\r\n` : '') +
    `Content-Length: ${new TextEncoder().encode(b).length}\r\n\r\n${b}`
  );
}

/** A DUM with a handler for every usage, each counting the requests it is given. */
async function setup(withAuth: boolean) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 3 });
  const stack = new SipStack({ clock });
  await stack.addTransport(new MemoryTransport({ network, port: 5080 }));
  await stack.start();
  const dum = new DialogUsageManager({ stack });
  if (withAuth)
    dum.setServerAuthManager(
      new ServerAuthManager(async (user) => (user === 'p' ? { password: 'pw' } : undefined), {
        realm: 'gate.test',
      }),
    );
  const reached: string[] = [];
  dum.setInviteSessionHandler({ onNewSession: () => reached.push('INVITE') });
  dum.setServerRegistrationHandler({
    onAdd: (h) => {
      reached.push('REGISTER');
      void h.get().accept();
    },
  });
  dum.addServerSubscriptionHandler('presence', {
    onNewSubscription: () => reached.push('SUBSCRIBE'),
  });
  dum.addServerPublicationHandler('presence', { onInitial: () => reached.push('PUBLISH') });
  dum.setServerPagerMessageHandler({ onMessageArrived: () => reached.push('MESSAGE') });
  dum.addOutOfDialogHandler('OPTIONS', { onReceivedRequest: () => reached.push('OPTIONS') });
  dum.addOutOfDialogHandler('INFO', { onReceivedRequest: () => reached.push('INFO') });
  const peer = await new ScriptedPeer(network, clock, { port: 5090 }).start();
  return { clock, dum, peer, reached, address: { address: '127.0.0.1', port: 5080 } };
}

describe('with auth on, no unauthenticated request reaches a handler (RFC 3261 §22.1, §22.3)', () => {
  it.each(REQUESTS)(
    '$method without credentials: 401 with a challenge, no handler called',
    async ({ method, extra, body }) => {
      const { peer, reached, address } = await setup(true);
      await peer.send(text(method, extra, body), address);
      const res = await peer.expectResponse(401, method);
      expect(res.message.headers('WWW-Authenticate').length).toBeGreaterThan(0);
      await peer.expectNothing(200);
      expect(reached).toEqual([]);
    },
  );

  it.each(REQUESTS)(
    '$method with made-up credentials (a nonce never issued, a wrong response): challenged again, no handler called',
    async ({ method, extra, body }) => {
      const { peer, reached, address } = await setup(true);
      const forged =
        'Authorization: Digest username="p", realm="gate.test", nonce="0123456789abcdef", ' +
        `uri="sip:u@127.0.0.1:5080", response="${'0'.repeat(64)}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c"\r\n`;
      await peer.send(text(method, extra, body, forged), address);
      // RFC 7616 §3.3: a nonce the server did not issue earns a fresh challenge.
      const res = await peer.expectResponse(401, method);
      expect(res.message.header('WWW-Authenticate')).not.toContain('0123456789abcdef');
      expect(reached).toEqual([]);
    },
  );

  it('a request with a To tag of no dialog is answered 481 and reaches no handler (§12.2.2)', async () => {
    const { peer, reached, address } = await setup(true);
    await peer.send(
      text('INFO', '').replace('To: <sip:u@127.0.0.1>', 'To: <sip:u@127.0.0.1>;tag=forged'),
      address,
    );
    await peer.expectResponse(481);
    expect(reached).toEqual([]);
  });

  it('control: without auth the same requests reach their handlers', async () => {
    const { clock, peer, reached, address } = await setup(false);
    for (const r of REQUESTS) await peer.send(text(r.method, r.extra, r.body), address);
    await until(clock, () => reached.length >= REQUESTS.length);
    expect([...reached].sort()).toEqual(REQUESTS.map((r) => r.method).sort());
  });
});

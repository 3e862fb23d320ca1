/**
 * The JavaScript peer of the load sections: a minimal UAS and registrar on the
 * `sip` npm package, run as its own process:
 *
 *   node --import tsx tools/bench/src/sip-peer.ts uas PORT
 *   node --import tsx tools/bench/src/sip-peer.ts registrar PORT
 *   node --import tsx tools/bench/src/sip-peer.ts registrar PORT USER PASSWORD REALM
 *
 * `uas` answers INVITE with 180 then 200 and an SDP answer, and BYE with 200
 * (the package's transactions absorb retransmissions; nothing resends the 2xx,
 * which loopback never needs). `registrar` keeps the Contact of each AOR in a
 * Map and answers 200 with it; given credentials, it first challenges every
 * REGISTER with a 401 (MD5, qop=auth) and checks the answer with the package's
 * digest module, one digest context per Call-ID as RFC 3261 §22.4 allows.
 *
 * This is what an application on that package would write in a few lines,
 * which is the point: the figure is the package's cost, not an application's.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface SipMessage {
  method?: string;
  uri?: string;
  status?: number;
  headers: Record<string, unknown> & {
    to: { uri: string; params: Record<string, string | undefined> };
    'call-id': string;
    contact?: unknown;
  };
  content?: string;
}

interface SipModule {
  start(
    options: { address: string; port: number; udp?: boolean; tcp?: boolean },
    onRequest: (rq: SipMessage) => void,
  ): void;
  send(message: SipMessage): void;
  makeResponse(rq: SipMessage, status: number, reason: string): SipMessage;
}

interface DigestModule {
  challenge(ctx: Record<string, unknown>, rs: SipMessage): SipMessage;
  authenticateRequest(
    ctx: Record<string, unknown>,
    rq: SipMessage,
    creds: { user: string; password: string },
  ): boolean;
}

const sip = require('sip') as SipModule;
const digest = require('sip/digest') as DigestModule;

const [mode, portText, user, password, realm] = process.argv.slice(2);
const port = Number(portText);
if ((mode !== 'uas' && mode !== 'registrar') || !Number.isInteger(port) || port <= 0) {
  console.error('usage: sip-peer.ts uas|registrar PORT [USER PASSWORD REALM]');
  process.exit(2);
}

const SDP = [
  'v=0',
  'o=peer 1 1 IN IP4 127.0.0.1',
  's=-',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 6000 RTP/AVP 0',
  'a=rtpmap:0 PCMU/8000',
  '',
].join('\r\n');

let tags = 0;
const contact = [{ uri: `sip:peer@127.0.0.1:${port}` }];

function uas(rq: SipMessage): void {
  if (rq.method === 'INVITE') {
    const tag = `p${++tags}`;
    const ringing = sip.makeResponse(rq, 180, 'Ringing');
    ringing.headers.to.params.tag = tag;
    sip.send(ringing);
    const ok = sip.makeResponse(rq, 200, 'OK');
    ok.headers.to.params.tag = tag;
    ok.headers.contact = contact;
    ok.headers['content-type'] = 'application/sdp';
    ok.content = SDP;
    sip.send(ok);
  } else if (rq.method === 'BYE') {
    sip.send(sip.makeResponse(rq, 200, 'OK'));
  } else if (rq.method !== 'ACK') {
    sip.send(sip.makeResponse(rq, 405, 'Method Not Allowed'));
  }
}

const bindings = new Map<string, unknown>();
const contexts = new Map<string, Record<string, unknown>>();

function registrar(rq: SipMessage): void {
  if (rq.method !== 'REGISTER') {
    if (rq.method !== 'ACK') sip.send(sip.makeResponse(rq, 405, 'Method Not Allowed'));
    return;
  }
  if (user !== undefined && password !== undefined && realm !== undefined) {
    const callId = rq.headers['call-id'];
    const ctx = contexts.get(callId);
    if (!ctx || !digest.authenticateRequest(ctx, rq, { user, password })) {
      const fresh: Record<string, unknown> = { realm, qop: 'auth' };
      contexts.set(callId, fresh);
      sip.send(digest.challenge(fresh, sip.makeResponse(rq, 401, 'Unauthorized')));
      return;
    }
    contexts.delete(callId);
  }
  bindings.set(rq.headers.to.uri, rq.headers.contact);
  const ok = sip.makeResponse(rq, 200, 'OK');
  ok.headers.to.params.tag ??= `r${++tags}`;
  ok.headers.contact = rq.headers.contact;
  sip.send(ok);
}

sip.start({ address: '127.0.0.1', port, tcp: false }, mode === 'uas' ? uas : registrar);
process.once('SIGTERM', () => process.exit(0));

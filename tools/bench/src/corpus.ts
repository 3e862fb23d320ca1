/**
 * The messages the parse benchmark feeds to every parser: one of each kind a
 * UA or proxy sees all day, with the headers real implementations send.
 *
 * Every message is written with CRLF line endings; Content-Length is computed
 * from the UTF-8 bytes of the body when the message is assembled (the corpus
 * test checks it independently on the final bytes).
 */

/** What every parser must read back from a corpus message. */
export interface Expected {
  /** The request method, or undefined for a response. */
  readonly method: string | undefined;
  /** The status code, or undefined for a request. */
  readonly status: number | undefined;
  readonly callId: string;
  readonly cseq: number;
  readonly fromTag: string;
  /** The branch of the topmost Via. */
  readonly branch: string;
}

export interface CorpusMessage {
  readonly name: string;
  /** The whole message as text. */
  readonly text: string;
  /** The whole message as UTF-8 bytes, as a datagram would carry it. */
  readonly bytes: Uint8Array;
  readonly expect: Expected;
}

interface Draft {
  readonly name: string;
  readonly startLine: string;
  /** Header lines without Content-Length, which is appended. */
  readonly headers: readonly string[];
  readonly body?: readonly string[] | undefined;
  /** Write `l:` instead of `Content-Length:`. */
  readonly compactLength?: boolean;
  readonly expect: Expected;
}

const CRLF = '\r\n';
const utf8 = new TextEncoder();

function assemble(draft: Draft): CorpusMessage {
  const body = draft.body === undefined ? '' : draft.body.join(CRLF) + CRLF;
  const bodyBytes = utf8.encode(body).length;
  const lengthName = draft.compactLength === true ? 'l' : 'Content-Length';
  const head = [draft.startLine, ...draft.headers, `${lengthName}: ${bodyBytes}`];
  const text = head.join(CRLF) + CRLF + CRLF + body;
  return { name: draft.name, text, bytes: utf8.encode(text), expect: draft.expect };
}

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, SUBSCRIBE, MESSAGE';
const UA_ALICE = 'Linphone/5.2.5 (belle-sip/5.2.94)';
const UA_BOB = 'Zoiper rv2.10.20.4';
const SERVER = 'Kamailio (5.8.2 (x86_64/linux))';

const dialogCallId = 'a84b4c76e66710@pc33.atlanta.example.com';
const aliceTag = '1928301774';
const bobTag = 'a6c85cf';

const drafts: Draft[] = [
  {
    name: 'INVITE (SDP)',
    startLine: 'INVITE sip:bob@biloxi.example.com SIP/2.0',
    headers: [
      'Via: SIP/2.0/UDP 192.0.2.101:5060;rport;branch=z9hG4bK74bf9',
      'Max-Forwards: 70',
      'Route: <sip:proxy.atlanta.example.com;lr>',
      `From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=${aliceTag}`,
      'To: <sip:bob@biloxi.example.com>',
      `Call-ID: ${dialogCallId}`,
      'CSeq: 314159 INVITE',
      'Contact: <sip:alice@192.0.2.101:5060;transport=udp>;expires=3600',
      `Allow: ${ALLOW}`,
      'Supported: replaces, outbound, gruu, timer',
      'Session-Expires: 1800',
      `User-Agent: ${UA_ALICE}`,
      'Content-Type: application/sdp',
    ],
    body: [
      'v=0',
      'o=alice 2890844526 2890844526 IN IP4 192.0.2.101',
      's=Talk',
      'c=IN IP4 192.0.2.101',
      't=0 0',
      'm=audio 49170 RTP/AVP 0 8 101',
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:101 telephone-event/8000',
      'a=fmtp:101 0-16',
      'a=ptime:20',
      'a=sendrecv',
    ],
    expect: {
      method: 'INVITE',
      status: undefined,
      callId: dialogCallId,
      cseq: 314159,
      fromTag: aliceTag,
      branch: 'z9hG4bK74bf9',
    },
  },
  {
    name: '200 OK (SDP)',
    startLine: 'SIP/2.0 200 OK',
    headers: [
      'Via: SIP/2.0/UDP proxy.atlanta.example.com;branch=z9hG4bK2d4790.1',
      'Via: SIP/2.0/UDP 192.0.2.101:5060;received=198.51.100.7;rport=40512;branch=z9hG4bK74bf9',
      'Record-Route: <sip:proxy.atlanta.example.com;lr>',
      `From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=${aliceTag}`,
      `To: <sip:bob@biloxi.example.com>;tag=${bobTag}`,
      `Call-ID: ${dialogCallId}`,
      'CSeq: 314159 INVITE',
      'Contact: <sip:bob@203.0.113.4:5060>',
      `Allow: ${ALLOW}`,
      'Supported: replaces, timer',
      `Server: ${UA_BOB}`,
      'Content-Type: application/sdp',
    ],
    body: [
      'v=0',
      'o=bob 2808844564 2808844564 IN IP4 203.0.113.4',
      's=-',
      'c=IN IP4 203.0.113.4',
      't=0 0',
      'm=audio 3456 RTP/AVP 0 101',
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:101 telephone-event/8000',
      'a=sendrecv',
    ],
    expect: {
      method: undefined,
      status: 200,
      callId: dialogCallId,
      cseq: 314159,
      fromTag: aliceTag,
      branch: 'z9hG4bK2d4790.1',
    },
  },
  {
    name: 'REGISTER (digest)',
    startLine: 'REGISTER sip:registrar.biloxi.example.com SIP/2.0',
    headers: [
      'Via: SIP/2.0/UDP 192.0.2.44:5060;rport;branch=z9hG4bKnashds8',
      'Max-Forwards: 70',
      'From: Bob <sip:bob@biloxi.example.com>;tag=a73kszlfl',
      'To: Bob <sip:bob@biloxi.example.com>',
      'Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.44',
      'CSeq: 2 REGISTER',
      'Contact: <sip:bob@192.0.2.44:5060;ob>;expires=3600',
      'Supported: path, outbound, gruu',
      'Allow-Events: presence, dialog, message-summary',
      'Authorization: Digest username="bob", realm="biloxi.example.com", ' +
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:registrar.biloxi.example.com", ' +
        'response="245f23415f11432b3434341c022", algorithm=MD5, qop=auth, nc=00000001, ' +
        'cnonce="0a4f113b"',
      `Allow: ${ALLOW}`,
      `User-Agent: ${UA_BOB}`,
    ],
    expect: {
      method: 'REGISTER',
      status: undefined,
      callId: '1j9FpLxk3uxtm8tn@192.0.2.44',
      cseq: 2,
      fromTag: 'a73kszlfl',
      branch: 'z9hG4bKnashds8',
    },
  },
  {
    name: '401 (challenge)',
    startLine: 'SIP/2.0 401 Unauthorized',
    headers: [
      'Via: SIP/2.0/UDP 192.0.2.44:5060;received=198.51.100.23;rport=50433;branch=z9hG4bKnashds7',
      'From: Bob <sip:bob@biloxi.example.com>;tag=a73kszlfl',
      'To: Bob <sip:bob@biloxi.example.com>;tag=1410948204',
      'Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.44',
      'CSeq: 1 REGISTER',
      'WWW-Authenticate: Digest realm="biloxi.example.com", qop="auth", ' +
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41", ' +
        'algorithm=MD5, stale=FALSE',
      'Date: Tue, 18 Nov 2025 09:14:06 GMT',
      `Server: ${SERVER}`,
    ],
    expect: {
      method: undefined,
      status: 401,
      callId: '1j9FpLxk3uxtm8tn@192.0.2.44',
      cseq: 1,
      fromTag: 'a73kszlfl',
      branch: 'z9hG4bKnashds7',
    },
  },
  {
    name: 'ACK',
    startLine: 'ACK sip:bob@203.0.113.4:5060 SIP/2.0',
    headers: [
      'Via: SIP/2.0/UDP 192.0.2.101:5060;rport;branch=z9hG4bK74bd5',
      'Max-Forwards: 70',
      'Route: <sip:proxy.atlanta.example.com;lr>',
      `From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=${aliceTag}`,
      `To: <sip:bob@biloxi.example.com>;tag=${bobTag}`,
      `Call-ID: ${dialogCallId}`,
      'CSeq: 314159 ACK',
      `User-Agent: ${UA_ALICE}`,
    ],
    expect: {
      method: 'ACK',
      status: undefined,
      callId: dialogCallId,
      cseq: 314159,
      fromTag: aliceTag,
      branch: 'z9hG4bK74bd5',
    },
  },
  {
    name: 'BYE',
    startLine: 'BYE sip:alice@192.0.2.101:5060;transport=udp SIP/2.0',
    headers: [
      'Via: SIP/2.0/UDP 203.0.113.4:5060;rport;branch=z9hG4bKnashds10',
      'Max-Forwards: 70',
      'Route: <sip:proxy.atlanta.example.com;lr>',
      `From: <sip:bob@biloxi.example.com>;tag=${bobTag}`,
      `To: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=${aliceTag}`,
      `Call-ID: ${dialogCallId}`,
      'CSeq: 231 BYE',
      'Reason: Q.850;cause=16;text="Normal call clearing"',
      `User-Agent: ${UA_BOB}`,
    ],
    expect: {
      method: 'BYE',
      status: undefined,
      callId: dialogCallId,
      cseq: 231,
      fromTag: bobTag,
      branch: 'z9hG4bKnashds10',
    },
  },
  {
    name: 'SUBSCRIBE',
    startLine: 'SUBSCRIBE sip:carol@chicago.example.com SIP/2.0',
    headers: [
      'Via: SIP/2.0/TCP 192.0.2.101:53521;rport;branch=z9hG4bK4hc72x',
      'Max-Forwards: 70',
      `From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=6f21a3`,
      'To: <sip:carol@chicago.example.com>',
      'Call-ID: 2c8e5d11-90f3-4c6b-bd2e-7f20ad1c6e33',
      'CSeq: 17 SUBSCRIBE',
      'Contact: <sip:alice@192.0.2.101:53521;transport=tcp>',
      'Event: presence',
      'Accept: application/pidf+xml, application/xpidf+xml',
      'Expires: 600',
      `User-Agent: ${UA_ALICE}`,
    ],
    expect: {
      method: 'SUBSCRIBE',
      status: undefined,
      callId: '2c8e5d11-90f3-4c6b-bd2e-7f20ad1c6e33',
      cseq: 17,
      fromTag: '6f21a3',
      branch: 'z9hG4bK4hc72x',
    },
  },
  {
    name: 'NOTIFY (PIDF)',
    startLine: 'NOTIFY sip:alice@192.0.2.101:53521;transport=tcp SIP/2.0',
    headers: [
      'Via: SIP/2.0/TCP 203.0.113.9:5060;branch=z9hG4bK8sdf2a',
      'Max-Forwards: 70',
      'From: <sip:carol@chicago.example.com>;tag=ffd2',
      'To: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=6f21a3',
      'Call-ID: 2c8e5d11-90f3-4c6b-bd2e-7f20ad1c6e33',
      'CSeq: 42 NOTIFY',
      'Contact: <sip:carol@203.0.113.9:5060;transport=tcp>',
      'Event: presence',
      'Subscription-State: active;expires=599',
      'Content-Type: application/pidf+xml',
    ],
    body: [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:carol@chicago.example.com">',
      '<tuple id="t8a2e"><status><basic>open</basic></status>',
      '<contact priority="0.8">sip:carol@203.0.113.9</contact></tuple>',
      '</presence>',
    ],
    expect: {
      method: 'NOTIFY',
      status: undefined,
      callId: '2c8e5d11-90f3-4c6b-bd2e-7f20ad1c6e33',
      cseq: 42,
      fromTag: 'ffd2',
      branch: 'z9hG4bK8sdf2a',
    },
  },
  {
    // A mobile client writing compact header names and a non-ASCII body, so
    // Content-Length (bytes) differs from the body's length in characters.
    name: 'MESSAGE (compact)',
    startLine: 'MESSAGE sip:bob@biloxi.example.com SIP/2.0',
    headers: [
      'v: SIP/2.0/UDP 192.0.2.55:5062;rport;branch=z9hG4bKmsg44e1',
      'Max-Forwards: 70',
      'f: "Dörte" <sip:doerte@atlanta.example.com>;tag=49583',
      't: <sip:bob@biloxi.example.com>',
      'i: 8f3c0e2a77b1@192.0.2.55',
      'CSeq: 1 MESSAGE',
      'c: text/plain;charset=UTF-8',
      `User-Agent: ${UA_ALICE}`,
    ],
    body: ['Grüße aus Köln! Bist du morgen um 10:00 im Büro?'],
    compactLength: true,
    expect: {
      method: 'MESSAGE',
      status: undefined,
      callId: '8f3c0e2a77b1@192.0.2.55',
      cseq: 1,
      fromTag: '49583',
      branch: 'z9hG4bKmsg44e1',
    },
  },
  {
    name: 'OPTIONS (keep-alive)',
    startLine: 'OPTIONS sip:192.0.2.101:5060 SIP/2.0',
    headers: [
      'Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK0a9c.8f1b2e11',
      'Max-Forwards: 70',
      'From: <sip:ping@proxy.atlanta.example.com>;tag=4d2c11a7',
      'To: <sip:192.0.2.101:5060>',
      'Call-ID: 7b1c2e8d-5f0a4d41@198.51.100.1',
      'CSeq: 10 OPTIONS',
      'Accept: application/sdp',
      `Server: ${SERVER}`,
    ],
    expect: {
      method: 'OPTIONS',
      status: undefined,
      callId: '7b1c2e8d-5f0a4d41@198.51.100.1',
      cseq: 10,
      fromTag: '4d2c11a7',
      branch: 'z9hG4bK0a9c.8f1b2e11',
    },
  },
];

export const corpus: readonly CorpusMessage[] = drafts.map(assemble);

/** The mean size of a corpus message in bytes. */
export function averageBytes(messages: readonly CorpusMessage[] = corpus): number {
  let total = 0;
  for (const m of messages) total += m.bytes.length;
  return total / messages.length;
}

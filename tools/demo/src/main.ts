/**
 * A walk through @sipworks/message as a user agent server sees it: an INVITE arrives
 * (through a proxy that record-routes), we read what the transaction and dialog layers
 * need from it, then answer with 180 Ringing and 200 OK carrying an SDP answer.
 *
 * Run it from the repository root with `pnpm demo`.
 */
import { createResponse, parseMessage, SipParseError, serialize } from '@sipworks/message';

const CRLF = '\r\n';

/** Alice's offer: G.711 (PCMU, PCMA) and RFC 4733 telephone events. */
const OFFER_SDP = [
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 192.0.2.101',
  's=-',
  'c=IN IP4 192.0.2.101',
  't=0 0',
  'm=audio 49170 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv',
  '',
].join(CRLF);

/**
 * The INVITE as Bob's phone receives it over UDP: Alice's phone sent it to her outbound
 * proxy, which added its own Via (on top), a Record-Route, and `received` to Alice's Via.
 */
const INVITE = [
  'INVITE sip:bob@198.51.100.7:5060 SIP/2.0',
  'Via: SIP/2.0/UDP proxy.atlanta.example.com:5060;branch=z9hG4bK2d4790.1',
  'Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;received=192.0.2.101',
  'Max-Forwards: 69',
  'Record-Route: <sip:proxy.atlanta.example.com;lr>',
  'From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=9fxced76sl',
  'To: Bob <sip:bob@biloxi.example.com>',
  'Call-ID: 3848276298220188511@pc33.atlanta.example.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@192.0.2.101:5060;transport=udp>',
  'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY',
  'Supported: replaces, timer',
  'User-Agent: ExamplePhone/4.2',
  'Content-Type: application/sdp',
  `Content-Length: ${OFFER_SDP.length}`, // the SDP is ASCII: one byte per character
  '',
  OFFER_SDP,
].join(CRLF);

/** Bob's answer: PCMU and telephone events. */
const ANSWER_SDP = [
  'v=0',
  'o=bob 2808844564 2808844564 IN IP4 198.51.100.7',
  's=-',
  'c=IN IP4 198.51.100.7',
  't=0 0',
  'm=audio 3456 RTP/AVP 0 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv',
  '',
].join(CRLF);

/** Bob's Contact: where Alice sends in-dialog requests (BYE, re-INVITE) once the proxy is passed. */
const BOB_CONTACT = '<sip:bob@198.51.100.7:5060;transport=udp>';

/**
 * The tag Bob's side adds to To. Both responses carry the same one, because they belong to
 * the same dialog. A real user agent draws it at random (RFC 3261 §19.3 asks for at least 32
 * bits of randomness); it is fixed here so that the output is the same on every run.
 */
const TO_TAG = '8321234356';

function section(title: string): void {
  console.log(`\n=== ${title} ===`);
}

function field(name: string, value: unknown): void {
  console.log(`  ${`${name}:`.padEnd(16)} ${value === undefined ? '(none)' : String(value)}`);
}

/** Prints a message's text line by line, up to the end of its body. */
function printWire(text: string): void {
  const lines = text.split(CRLF);
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  for (const line of lines) console.log(`  | ${line}`);
}

// Parse ------------------------------------------------------------------------------------

const bytes = new TextEncoder().encode(INVITE);
const invite = parseMessage(bytes);
if (!invite.isRequest) throw new Error('expected a request');

section(`Parsed ${bytes.length} bytes`);
field('method', invite.method);
field('URI user', invite.uri.user);
field('URI host', invite.uri.host);
field('URI port', invite.uri.port);
field('Call-ID', invite.callId);
field('CSeq', `${invite.cseq.seq} ${invite.cseq.method}`);
field('From name', invite.from.displayName);
field('From URI', `${invite.from.uri.scheme}:${invite.from.uri.user}@${invite.from.uri.host}`);
field('From tag', invite.from.tag);
field('To name', invite.to.displayName);
field('To URI', `${invite.to.uri.scheme}:${invite.to.uri.user}@${invite.to.uri.host}`);
field('To tag', invite.to.tag);
field('Max-Forwards', invite.maxForwards);
for (const [i, via] of invite.via.entries()) {
  const received = via.received ? ` received=${via.received}` : '';
  field(`Via[${i}]`, `${via.transport} ${via.host}:${via.port} branch=${via.branch}${received}`);
}
field('Contact', invite.header('Contact'));
field('Contacts', invite.contacts.length);
field('Record-Route', invite.headers('Record-Route').join(', '));
field('Content-Type', invite.contentType?.mimeType);
field('Content-Length', invite.contentLength);
field('body length', `${invite.body.length} bytes`);
field('body first line', invite.bodyText.split(CRLF)[0]);

const again = serialize(invite);
field(
  'round trip',
  again.length === bytes.length && again.every((b, i) => b === bytes[i])
    ? 'serialize() gives back the same bytes'
    : 'serialize() changed the bytes',
);

// Answer -----------------------------------------------------------------------------------

type Response = ReturnType<typeof createResponse>;

/**
 * What a dialog-creating response needs beyond what createResponse copies from the request
 * (RFC 3261 §12.1.1): the request's Record-Route values, in order, and our Contact.
 */
function addDialogHeaders(response: Response): Response {
  for (const route of invite.headers('Record-Route')) response.addHeader('Record-Route', route);
  response.addHeader('Contact', BOB_CONTACT);
  return response;
}

const ringing = addDialogHeaders(createResponse(invite, 180, 'Ringing', { toTag: TO_TAG }));

const ok = addDialogHeaders(createResponse(invite, 200, 'OK', { toTag: TO_TAG }));
ok.addHeader('Allow', 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE');
ok.addHeader('Supported', 'replaces');
ok.setBody(ANSWER_SDP, 'application/sdp');

for (const response of [ringing, ok]) {
  const wire = serialize(response);
  section(`${response.status} ${response.reason} (${wire.length} bytes)`);
  printWire(response.toString());
}

// A defect ----------------------------------------------------------------------------------

section('A request with an unsupported SIP version');
try {
  parseMessage(INVITE.replace('SIP/2.0\r\n', 'SIP/3.0\r\n'));
  console.log('  accepted');
} catch (error) {
  if (!(error instanceof SipParseError)) throw error;
  field('code', error.code);
  field('answer with', error.status);
  field('at offset', error.offset);
  field('message', error.message);
}

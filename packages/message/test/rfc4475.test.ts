// RFC 4475 (SIP Torture Test Messages) conformance suite.
//
// The 49 messages live unchanged in fixtures/torture/{valid,invalid,other}/.
// The RFC text is the authority for what a robust element does with each one;
// this file states, per message, what the message layer of sipworks must do so
// that the element can behave that way.
import { describe, expect, it } from 'vitest';
import { parseMessage, SipParseError, serialize, validateMessage } from '../src/index.ts';
import {
  asRequest,
  asResponse,
  caught,
  collapse,
  expectBytes,
  expectParseErrorShape,
  expectSipError,
  fixture,
  fixtureNames,
  fromUtf8,
  headerSectionEnd,
  isUtf8,
  type SipMessage,
  touchAll,
  uriHeader,
} from './helpers.ts';

type Group = 'valid' | 'invalid' | 'other';

const torture = (group: Group, file: string): Uint8Array => fixture(`torture/${group}/${file}.dat`);

const ERR = {
  startLine: 'SIP_ERR_PARSE_START_LINE',
  version: 'SIP_ERR_PARSE_VERSION',
  header: 'SIP_ERR_PARSE_HEADER',
  uri: 'SIP_ERR_PARSE_URI',
  contentLength: 'SIP_ERR_PARSE_CONTENT_LENGTH',
  tooLarge: 'SIP_ERR_PARSE_TOO_LARGE',
  missing: 'SIP_ERR_PARSE_MISSING_HEADER',
  incomplete: 'SIP_ERR_PARSE_INCOMPLETE',
} as const;

/** Table rows named "<subsection> <file>: <title>", for it.each('%s'). */
function named<T extends { section: string; file: string; title: string }>(
  cases: T[],
): [string, T][] {
  return cases.map((c) => [`${c.section} ${c.file}: ${c.title}`, c]);
}

const hosts = (msg: SipMessage): string[] => msg.via.map((v) => v.host);
const transports = (msg: SipMessage): string[] => msg.via.map((v) => v.transport.toUpperCase());

// ---------------------------------------------------------------------------
// 3.1.1 Valid messages: parse, read every field the RFC calls out, validate.
// ---------------------------------------------------------------------------

interface ValidCase {
  file: string;
  section: string;
  title: string;
  check: (msg: SipMessage, bytes: Uint8Array) => void;
}

const VALID: ValidCase[] = [
  {
    file: 'wsinv',
    section: '3.1.1.1',
    title: 'A Short Tortuous INVITE',
    check: (msg) => {
      const req = asRequest(msg);
      expect(req.method).toBe('INVITE');
      expect(req.uri.scheme).toBe('sip');
      expect(req.uri.user).toBe('vivekg');
      expect(req.uri.host).toBe('chair-dnrc.example.com');
      expect(req.uri.params.has('unknownparam')).toBe(true);
      expect(req.uri.params.get('unknownparam')).toBeNull();
      // header names as written (with their odd case), in order
      expect(msg.headerNames()).toEqual([
        'TO',
        'from',
        'MaX-fOrWaRdS',
        'Call-ID',
        'Content-Length',
        'cseq',
        'Via',
        's',
        'NewFangledHeader',
        'UnknownHeaderWithUnusualValue',
        'Content-Type',
        'Route',
        'v',
        'm',
      ]);
      expect(msg.to.displayName ?? '').toBe('');
      expect(msg.to.uri.user).toBe('vivekg');
      expect(msg.to.uri.host).toBe('chair-dnrc.example.com');
      expect(msg.to.tag).toBe('1918181833n');
      // quoted display name with an escaped backslash and an escaped quote
      expect(msg.from.displayName).toBe('J Rosenberg \\"');
      expect(msg.from.uri.user).toBe('jdrosen');
      expect(msg.from.uri.host).toBe('example.com');
      expect(msg.from.tag).toBe('98asjd8');
      // integer fields with leading zeros
      expect(msg.maxForwards).toBe(68);
      expect(msg.cseq.seq).toBe(9);
      expect(msg.cseq.method).toBe('INVITE');
      expect(msg.callId).toBe('wsinv.ndaksdj@192.0.2.1');
      // Via: a folded long-form line plus a compact line with two comma-separated values
      expect(msg.via).toHaveLength(3);
      expect(transports(msg)).toEqual(['UDP', 'TCP', 'UDP']);
      expect(hosts(msg)).toEqual(['192.0.2.2', 'spindle.example.com', '192.168.255.111']);
      expect(msg.via.map((v) => v.branch)).toEqual(['390skdjuw', 'z9hG4bK9ikj8', 'z9hG4bK30239']);
      expect(msg.via.map((v) => v.port)).toEqual([undefined, undefined, undefined]);
      expect(msg.via[0].protocol.replace(/\s+/g, '')).toMatch(/^SIP(\/2\.0)?$/);
      // empty Subject (compact form s)
      expect(msg.has('Subject')).toBe(true);
      expect(msg.header('Subject')).toBe('');
      // unknown header fields, kept as text
      expect(collapse(msg.header('NewFangledHeader'))).toBe(
        'newfangled value continued newfangled value',
      );
      expect(msg.header('UnknownHeaderWithUnusualValue')).toBe(';;,,;;,;');
      expect(msg.headers('unknownheaderwithunusualvalue')).toEqual([';;,,;;,;']);
      expect(msg.header('Route')?.trim()).toBe(
        '<sip:services.example.com;lr;unknownwith=value;unknown-no-value>',
      );
      expect(msg.contentType?.mimeType).toBe('application/sdp');
      // Contact (compact m) with a quoted display name holding escaped quotes
      expect(msg.contacts).toHaveLength(1);
      const contact = msg.contacts[0];
      expect(contact.displayName).toBe('Quoted string ""');
      expect(contact.uri.user).toBe('jdrosen');
      expect(contact.uri.host).toBe('example.com');
      expect(contact.params.get('newparam')).toBe('newvalue');
      expect(contact.params.has('secondparam')).toBe(true);
      expect(contact.params.get('secondparam')).toBeNull();
      expect(contact.q).toBe(0.33);
      expect(msg.contentLength).toBe(150);
      expect(msg.body).toHaveLength(150);
      expect(msg.bodyText.startsWith('v=0\r\n')).toBe(true);
      expect(msg.bodyText.endsWith('a=rtpmap:31 LPC\r\n')).toBe(true);
    },
  },
  {
    file: 'intmeth',
    section: '3.1.1.2',
    title: 'Wide Range of Valid Characters',
    check: (msg) => {
      const method = "!interesting-Method0123456789_*+`.%indeed'~";
      const req = asRequest(msg);
      expect(req.method).toBe(method);
      expect(req.uri.scheme).toBe('sip');
      expect(req.uri.user).toBe("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
      expect(req.uri.password).toBe("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
      expect(req.uri.host).toBe('example.com');
      expect(msg.via).toHaveLength(1);
      expect(msg.via[0].branch).toBe("z9hG4bK-.!%66*_+`'~");
      // quoted-pair escapes of control characters in a display name
      expect(msg.to.displayName).toBe('BEL:\x07 NUL:\x00 DEL:\x7f');
      expect(msg.to.uri.user).toBe("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
      expect(msg.to.uri.host).toBe('example.com');
      // unquoted display name made of tokens
      expect(msg.from.displayName).toBe("token1~` token2'+_ token3*%!.-");
      expect(msg.from.uri.user).toBe('mundane');
      expect(msg.from.params.get("fromParam''~+*_!.-%")).toBe('работающий');
      expect(msg.from.params.get("FROMPARAM''~+*_!.-%")).toBe('работающий');
      expect(msg.from.tag).toBe("_token~1'+`*%!-.");
      expect(msg.callId).toBe('intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
      expect(msg.cseq.seq).toBe(139122385);
      expect(msg.cseq.method).toBe(method);
      expect(msg.maxForwards).toBe(255);
      // UTF-8 value (starting with U+FEFF) of an extension header with token characters in its name
      expect(msg.header("extensionHeader-!.%*+_`'~")).toBe('\uFEFF大停電');
      expect(msg.contentLength).toBe(0);
      expect(msg.body).toHaveLength(0);
    },
  },
  {
    file: 'esc01',
    section: '3.1.1.3',
    title: 'Valid Use of the % Escaping Mechanism',
    check: (msg) => {
      const req = asRequest(msg);
      expect(req.method).toBe('INVITE');
      // "The request-URI has sips:user@example.com embedded in its userpart."
      expect(req.uri.user).toBe('sips:user@example.com');
      expect(req.uri.host).toBe('example.net');
      // "The From and To URIs have escaped characters in their userparts."
      expect(msg.to.uri.user).toBe('user');
      expect(msg.to.uri.host).toBe('example.com');
      expect(msg.from.uri.user).toBe('I have spaces');
      expect(msg.from.tag).toBe('938');
      // "The Contact URI has escaped characters in the URI parameters."
      // %6C%72 is the lr flag; n%61me=v%61lue%25%34%31 is name=value%41 (no recursive unescaping)
      const contact = msg.contacts[0];
      expect(msg.contacts).toHaveLength(1);
      expect(contact.uri.user).toBe('caller');
      expect(contact.uri.host).toBe('host5.example.net');
      expect(contact.uri.params.has('lr')).toBe(true);
      expect(contact.uri.params.get('lr')).toBeNull();
      expect(contact.uri.params.get('name')).toBe('value%41');
      // compact forms i (Call-ID) and c (Content-Type)
      expect(msg.callId).toBe('esc01.239409asdfakjkn23onasd0-3234');
      expect(msg.contentType?.mimeType).toBe('application/sdp');
      expect(msg.maxForwards).toBe(87);
      expect(msg.cseq.seq).toBe(234234);
      expect(msg.body).toHaveLength(150);
    },
  },
  {
    file: 'escnull',
    section: '3.1.1.4',
    title: 'Escaped Nulls in URIs',
    check: (msg) => {
      expect(asRequest(msg).method).toBe('REGISTER');
      expect(msg.to.uri.user).toBe('null-\u0000-null');
      expect(msg.from.uri.user).toBe('null-\u0000-null');
      expect(msg.from.tag).toBe('839923423');
      expect(msg.contacts).toHaveLength(2);
      expect(msg.contacts[0].uri.user).toBe('\u0000');
      expect(msg.contacts[1].uri.user).toBe('\u0000\u0000');
      expect(msg.contacts.map((c) => c.uri.host)).toEqual([
        'host5.example.com',
        'host5.example.com',
      ]);
      expect(msg.contentLength).toBe(0);
    },
  },
  {
    file: 'esc02',
    section: '3.1.1.5',
    title: 'Use of % When It Is Not an Escape',
    check: (msg) => {
      // "The request method is unknown. It is NOT equivalent to REGISTER."
      expect(asRequest(msg).method).toBe('RE%47IST%45R');
      expect(msg.cseq.method).toBe('RE%47IST%45R');
      expect(msg.cseq.seq).toBe(29344);
      // "The display name portion of the To and From header fields is "%Z%45"."
      expect(msg.to.displayName).toBe('%Z%45');
      expect(msg.from.displayName).toBe('%Z%45');
      expect(msg.from.tag).toBe('f232jadfj23');
      // "This message has two Contact header field values, not three."
      expect(msg.contacts).toHaveLength(2);
      expect(msg.contacts.map((c) => c.uri.host)).toEqual([
        'host1.example.com',
        'host3.example.com',
      ]);
      expect(msg.headers('Contact')).toHaveLength(2);
      expect(msg.header('C%6Fntact')).toBe('<sip:alias2@host2.example.com>');
      expect(msg.headerNames()).toContain('C%6Fntact');
      // a % in a Via branch token is not an escape
      expect(msg.via[0].branch).toBe('z9hG4bK209%fzsnel234');
      expect(msg.contentLength).toBe(0);
    },
  },
  {
    file: 'lwsdisp',
    section: '3.1.1.6',
    title: 'Message with No LWS between Display Name and <',
    check: (msg) => {
      expect(asRequest(msg).method).toBe('OPTIONS');
      expect(msg.from.displayName).toBe('caller');
      expect(msg.from.uri.user).toBe('caller');
      expect(msg.from.uri.host).toBe('example.com');
      expect(msg.from.tag).toBe('323');
      expect(msg.to.uri.user).toBe('user');
      expect(msg.callId).toBe('lwsdisp.1234abcd@funky.example.com');
    },
  },
  {
    file: 'longreq',
    section: '3.1.1.7',
    title: 'Long Values in Header Fields',
    check: (msg) => {
      expect(asRequest(msg).method).toBe('INVITE');
      expect(msg.to.displayName).toBe(`I have a user name of ${'extreme'.repeat(10)} proportion`);
      expect(msg.to.uri.user).toBe('user');
      expect(msg.to.uri.port).toBe(6000);
      expect(msg.to.uri.params.get('unknownparam1')).toBe(`very${'long'.repeat(20)}value`);
      expect(msg.to.uri.params.get(`longparam${'name'.repeat(25)}`)).toBe('shortvalue');
      const valueless = `very${'long'.repeat(25)}ParameterNameWithNoValue`;
      expect(msg.to.uri.params.has(valueless)).toBe(true);
      expect(msg.to.uri.params.get(valueless)).toBeNull();
      expect(msg.to.tag).toBeUndefined();
      // compact From (F) with a long user part, tag and parameters
      expect(msg.from.uri.user).toBe('amazinglylongcallername'.repeat(5));
      expect(msg.from.uri.host).toBe('example.net');
      expect(msg.from.tag).toBe(`1${'298'.repeat(50)}2424`);
      expect(msg.from.params.get(`unknownheaderparam${'name'.repeat(20)}`)).toBe(
        `unknowheaderparam${'value'.repeat(15)}`,
      );
      const flag = `unknownValueless${'paramname'.repeat(10)}`;
      expect(msg.from.params.has(flag)).toBe(true);
      expect(msg.from.params.get(flag)).toBeNull();
      expect(msg.callId).toBe(`longreq.one${'really'.repeat(20)}longcallid`);
      expect(msg.cseq.seq).toBe(3882340);
      const long = 'long'.repeat(20);
      expect(msg.header(`Unknown-${'Long'.repeat(20)}-Name`)).toBe(
        `unknown-${long}-value; unknown-${long}-parameter-name = unknown-${long}-parameter-value`,
      );
      // 34 Via values spread over many spellings of Via / v
      expect(msg.via).toHaveLength(34);
      const expectedHosts = Array.from({ length: 33 }, (_, i) => `sip${33 - i}.example.com`);
      expectedHosts.push('host.example.com');
      expect(hosts(msg)).toEqual(expectedHosts);
      expect(new Set(transports(msg))).toEqual(new Set(['TCP']));
      const last = msg.via[33];
      expect(last.received).toBe('192.0.2.5');
      expect(last.branch).toBe(`very${'long'.repeat(50)}branchvalue`);
      expect(msg.maxForwards).toBe(70);
      expect(msg.contacts[0].uri.user).toBe('amazinglylongcallername'.repeat(5));
      expect(msg.contacts[0].uri.host).toBe('host5.example.net');
      expect(msg.contentType?.mimeType).toBe('application/sdp');
      expect(msg.contentLength).toBe(150);
      expect(msg.body).toHaveLength(150);
    },
  },
  {
    file: 'dblreq',
    section: '3.1.1.8',
    title: 'Extra Trailing Octets in a UDP Datagram',
    check: (msg) => {
      // only the REGISTER within Content-Length counts; the trailing INVITE is ignored
      expect(asRequest(msg).method).toBe('REGISTER');
      expect(msg.callId).toBe('dblreq.0ha0isndaksdj99sdfafnl3lk233412');
      expect(msg.cseq.seq).toBe(8);
      expect(msg.cseq.method).toBe('REGISTER');
      expect(msg.via).toHaveLength(1);
      expect(msg.via[0].branch).toBe('z9hG4bKkdjuw23492');
      expect(msg.to.uri.user).toBe('j.user');
      expect(msg.contacts).toHaveLength(1);
      expect(msg.contacts[0].uri.host).toBe('host.example.com');
      expect(msg.maxForwards).toBe(8);
      expect(msg.contentLength).toBe(0);
      expect(msg.body).toHaveLength(0);
      expect(msg.bodyText).toBe('');
      expect(msg.headerNames()).toHaveLength(8);
      expect(msg.has('Content-Type')).toBe(false);
      expect(msg.toString()).not.toContain('INVITE');
    },
  },
  {
    file: 'semiuri',
    section: '3.1.1.9',
    title: 'Semicolon-Separated Parameters in URI User Part',
    check: (msg) => {
      const req = asRequest(msg);
      expect(req.method).toBe('OPTIONS');
      // the user part is "user;par=u@example.net"; the URI has no parameters
      expect(req.uri.user).toBe('user;par=u@example.net');
      expect(req.uri.host).toBe('example.com');
      expect(req.uri.params.has('par')).toBe(false);
      expect([...req.uri.params]).toHaveLength(0);
      // a folded list header read value by value
      expect(msg.headers('Accept')).toEqual([
        'application/sdp',
        'application/pkcs7-mime',
        'multipart/mixed',
        'multipart/signed',
        'message/sip',
        'message/sipfrag',
      ]);
      expect(msg.maxForwards).toBe(3);
    },
  },
  {
    file: 'transports',
    section: '3.1.1.10',
    title: 'Varied and Unknown Transport Types',
    check: (msg) => {
      expect(msg.via).toHaveLength(5);
      expect(transports(msg)).toEqual(['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
      expect(hosts(msg)).toEqual([
        't1.example.com',
        't2.example.com',
        't3.example.com',
        't4.example.com',
        't5.example.com',
      ]);
      expect(msg.via.map((v) => v.branch)).toEqual([
        'z9hG4bKkdjuw',
        'z9hG4bKklasjdhf',
        'z9hG4bK2980unddj',
        'z9hG4bKasd0f3en',
        'z9hG4bK0a9idfnee',
      ]);
      expect(msg.callId).toBe('transports.kijh4akdnaqjkwendsasfdj');
      expect(msg.header('Accept')).toBe('application/sdp');
    },
  },
  {
    file: 'mpart01',
    section: '3.1.1.11',
    title: 'Multipart MIME Message',
    check: (msg, bytes) => {
      expect(asRequest(msg).method).toBe('MESSAGE');
      const ct = msg.contentType;
      expect(ct?.type).toBe('multipart');
      expect(ct?.subtype).toBe('mixed');
      expect(ct?.mimeType).toBe('multipart/mixed');
      expect(ct?.params.get('boundary')).toBe('7a9cbec02ceef655');
      expect(msg.header('Content-Transfer-Encoding')).toBe('binary');
      expect(msg.header('Date')).toBe('Sat, 15 Oct 2005 04:44:56 GMT');
      expect(msg.header('Identity')?.startsWith('r5mwreLuyDRYBi/0TiPwEsY3rEVsk/')).toBe(true);
      expect(msg.header('Identity')?.endsWith('ivUhkMWYUA=')).toBe(true);
      expect(msg.via[0].host).toBe('127.0.0.1');
      expect(msg.via[0].port).toBe(5070);
      expect(msg.via[0].params.has('rport')).toBe(true);
      expect(msg.via[0].params.get('rport')).toBeNull();
      expect(msg.callId).toBe('3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..');
      expect(msg.contentLength).toBe(553);
      // the binary body, byte for byte
      const start = headerSectionEnd(bytes);
      expectBytes(msg.body, bytes.subarray(start, start + 553));
      expect(msg.body[0]).toBe(0x2d);
      expect(msg.body.includes(0x00)).toBe(true);
      expect(fromUtf8(msg.body.subarray(0, 20))).toBe('--7a9cbec02ceef655\r\n');
    },
  },
  {
    file: 'unreason',
    section: '3.1.1.12',
    title: 'Unusual Reason Phrase',
    check: (msg) => {
      const res = asResponse(msg);
      expect(res.status).toBe(200);
      expect(res.reason).toBe('= 2**3 * 5**2 но сто девяносто девять - простое');
      expect(msg.cseq.seq).toBe(35);
      expect(msg.cseq.method).toBe('INVITE');
      expect(msg.to.tag).toBe('2229');
      expect(msg.from.tag).toBe('11141343');
      expect(msg.contentLength).toBe(154);
      expect(msg.body).toHaveLength(154);
    },
  },
  {
    file: 'noreason',
    section: '3.1.1.13',
    title: 'Empty Reason Phrase',
    check: (msg) => {
      const res = asResponse(msg);
      expect(res.status).toBe(100);
      expect(res.reason).toBe('');
      expect(msg.via[0].branch).toBe('z9hG4bK2398ndaoe');
      expect(msg.callId).toBe('noreason.asndj203insdf99223ndf');
      expect(msg.to.tag).toBe('902jndnke3');
      expect(msg.contentLength).toBe(0);
    },
  },
];

describe('RFC 4475 3.1.1 valid messages', () => {
  it.each(named(VALID))('%s', (_, { file, check }) => {
    const bytes = torture('valid', file);
    const msg = parseMessage(bytes);
    check(msg, bytes);
    expect(validateMessage(msg)).toBe(msg);
  });

  it('3.1.1.8 dblreq: the same REGISTER parses from a string input', () => {
    const msg = parseMessage(fromUtf8(torture('valid', 'dblreq')));
    expect(asRequest(msg).method).toBe('REGISTER');
    expect(msg.body).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------
// 3.1.2 Invalid messages.
// ---------------------------------------------------------------------------

type InvalidOutcome =
  // (a) parseMessage itself throws SipParseError with this status
  | { kind: 'parse-error'; status: number; codes: readonly string[] }
  // (a) the Request-Line is malformed: parseMessage throws, or (if the parser
  // reads the Request-URI lazily) reading msg.uri throws, with this status
  | { kind: 'request-line'; status: number; codes: readonly string[] }
  // (b) parseMessage succeeds; validateMessage throws with this status, and so
  // does the accessor of the bad header, when given
  | {
      kind: 'validate-error';
      status: number;
      accessors: Record<string, (msg: SipMessage) => unknown>;
      check?: (msg: SipMessage) => void;
    }
  // (a) or (b): a 400 from parseMessage (with one of parseCodes) or, when the
  // parser accepts the framing, from validateMessage and the accessors named
  | {
      kind: 'rejected';
      status: number;
      parseCodes: readonly string[];
      accessors: Record<string, (msg: SipMessage) => unknown>;
    }
  // (c) a response that is dropped: parseMessage or validateMessage throws
  | { kind: 'dropped'; check?: (msg: SipMessage) => void }
  // (d) tolerated: parses, validates, and the odd value stays readable
  | { kind: 'tolerated'; check: (msg: SipMessage) => void };

interface InvalidCase {
  file: string;
  section: string;
  title: string;
  expectation: string;
  outcome: InvalidOutcome;
}

const INVALID: InvalidCase[] = [
  {
    file: 'badinv01',
    section: '3.1.2.1',
    title: 'Extraneous Header Field Separators',
    // RFC: "An element receiving this request should respond with a 400 Bad Request error."
    expectation: '400 (Via ";;,;,," and Contact ";;;;" are rejected by their accessors)',
    outcome: {
      kind: 'validate-error',
      status: 400,
      accessors: { via: (m) => m.via, contacts: (m) => m.contacts },
      check: (m) => {
        expect(m.callId).toBe('badinv01.0ha0isndaksdjasdf3234nas');
        expect(m.cseq.seq).toBe(8);
      },
    },
  },
  {
    file: 'clerr',
    section: '3.1.2.2',
    title: 'Content Length Larger Than Message',
    // RFC: "When sent over UDP (as this message ostensibly was), the receiving element should respond with a 400 Bad Request error."
    expectation: 'parseMessage throws 400 SIP_ERR_PARSE_CONTENT_LENGTH',
    outcome: { kind: 'parse-error', status: 400, codes: [ERR.contentLength] },
  },
  {
    file: 'ncl',
    section: '3.1.2.3',
    title: 'Negative Content-Length',
    // RFC: "An element receiving this message should respond with an error."
    expectation: 'parseMessage throws 400 SIP_ERR_PARSE_CONTENT_LENGTH',
    outcome: { kind: 'parse-error', status: 400, codes: [ERR.contentLength] },
  },
  {
    file: 'scalar02',
    section: '3.1.2.4',
    title: 'Request Scalar Fields with Overlarge Values',
    // RFC: "An element receiving this request should respond with a 400 Bad Request due to the CSeq error."
    expectation: '400 (the CSeq accessor rejects 36893488147419103232)',
    outcome: {
      kind: 'validate-error',
      status: 400,
      accessors: { cseq: (m) => m.cseq },
      check: (m) => {
        expect(m.callId).toBe('scalar02.23o0pd9vanlq3wnrlnewofjas9ui32');
        expect(m.header('Expires')).toBe('1'.padEnd(101, '0'));
      },
    },
  },
  {
    file: 'scalarlg',
    section: '3.1.2.5',
    title: 'Response Scalar Fields with Overlarge Values',
    // RFC: "An element receiving this response will simply discard it."
    expectation: 'dropped (parse or validation throws; the CSeq is out of range)',
    outcome: {
      kind: 'dropped',
      check: (m) => {
        expectSipError(() => m.cseq, 400);
        expect(m.header('Warning')).toBe('1812 overture "In Progress"');
      },
    },
  },
  {
    file: 'quotbal',
    section: '3.1.2.6',
    title: 'Unterminated Quoted String in Display Name',
    // RFC: "An element receiving this request should return a 400 Bad Request error."
    expectation: '400 (the To accessor rejects the unterminated quote)',
    outcome: {
      kind: 'validate-error',
      status: 400,
      accessors: { to: (m) => m.to },
      check: (m) => {
        expect(m.header('To')).toBe('"Mr. J. User <sip:j.user@example.com>');
        expect(m.from.tag).toBe('93334');
      },
    },
  },
  {
    file: 'ltgtruri',
    section: '3.1.2.7',
    title: '<> Enclosing Request-URI',
    // RFC: "It is reasonable always to reject a request with this error with a 400 Bad Request."
    expectation: '400 from the Request-Line (parse, or the uri accessor)',
    outcome: { kind: 'request-line', status: 400, codes: [ERR.startLine, ERR.uri] },
  },
  {
    file: 'lwsruri',
    section: '3.1.2.8',
    title: 'Malformed SIP Request-URI (embedded LWS)',
    // RFC: "An element receiving this request should respond with a 400 Bad Request."
    expectation: '400 from the Request-Line (parse, or the uri accessor)',
    outcome: { kind: 'request-line', status: 400, codes: [ERR.startLine, ERR.uri] },
  },
  {
    file: 'lwsstart',
    section: '3.1.2.9',
    title: 'Multiple SP Separating Request-Line Elements',
    // RFC: "It is acceptable to reject this request as malformed." (sipworks rejects)
    expectation: '400 from the Request-Line (parse, or the uri accessor)',
    outcome: { kind: 'request-line', status: 400, codes: [ERR.startLine, ERR.uri] },
  },
  {
    file: 'trws',
    section: '3.1.2.10',
    title: 'SP Characters at End of Request-Line',
    // RFC: "It is acceptable to reject this request as malformed." (sipworks rejects; a 400, not a 505: the version is 2.0)
    expectation: '400 from the Request-Line (parse, or the uri accessor)',
    outcome: { kind: 'request-line', status: 400, codes: [ERR.startLine, ERR.uri] },
  },
  {
    file: 'escruri',
    section: '3.1.2.11',
    title: 'Escaped Headers in SIP Request-URI',
    // RFC: "An element could choose to be liberal in what it accepts and ignore the escaped headers." (sipworks tolerates at this layer)
    expectation: 'tolerated: the escaped Route stays inside the Request-URI, never a real header',
    outcome: {
      kind: 'tolerated',
      check: (m) => {
        const req = asRequest(m);
        expect(req.uri.user).toBe('user');
        expect(req.uri.host).toBe('example.com');
        expect(uriHeader(req.uri, 'Route')).toBe('<sip:example.com>');
        expect(m.has('Route')).toBe(false);
        expect(m.headers('Route')).toEqual([]);
      },
    },
  },
  {
    file: 'baddate',
    section: '3.1.2.12',
    title: 'Invalid Time Zone in Date Header Field',
    // RFC: "An element wishing to be liberal in what it accepts could ignore this value altogether if it wasn't going to use the Date header field anyway."
    expectation: 'tolerated: the EST Date stays readable as raw text',
    outcome: {
      kind: 'tolerated',
      check: (m) => {
        expect(m.header('Date')).toBe('Fri, 01 Jan 2010 16:00:00 EST');
        expect(m.callId).toBe('baddate.239423mnsadf3j23lj42--sedfnm234');
        expect(m.body).toHaveLength(150);
      },
    },
  },
  {
    file: 'regbadct',
    section: '3.1.2.13',
    title: 'Failure to Enclose name-addr URI in <>',
    // RFC: "It is reasonable for an element receiving this request to respond with a 400 Bad Request."
    expectation: '400 (the Contact accessor rejects a ?header outside <>)',
    outcome: {
      kind: 'validate-error',
      status: 400,
      accessors: { contacts: (m) => m.contacts },
      check: (m) => {
        expect(m.header('Contact')).toBe('sip:user@example.com?Route=%3Csip:sip.example.com%3E');
      },
    },
  },
  {
    file: 'badaspec',
    section: '3.1.2.14',
    title: 'Spaces within addr-spec',
    // RFC: "It is reasonable to reject this request with a 400 Bad Request response."
    expectation: '400 (the To accessor rejects spaces inside <>)',
    outcome: {
      kind: 'validate-error',
      status: 400,
      accessors: { to: (m) => m.to },
      check: (m) => {
        expect(m.from.displayName).toBe('Bell, Alexander');
        expect(m.from.tag).toBe('433423');
      },
    },
  },
  {
    file: 'baddn',
    section: '3.1.2.15',
    title: 'Non-token Characters in Display Name',
    // RFC: "It is reasonable always to reject this kind of error with a 400 Bad Request response."
    // The datagram also ends without the empty line closing the header section.
    expectation:
      '400: from parseMessage (header section not closed) or, if that is tolerated, from the From and To accessors',
    outcome: {
      kind: 'rejected',
      status: 400,
      parseCodes: [ERR.incomplete],
      accessors: { from: (m) => m.from, to: (m) => m.to },
    },
  },
  {
    file: 'badvers',
    section: '3.1.2.16',
    title: 'Unknown Protocol Version',
    // RFC: "The element should respond to the request with a 505 Version Not Supported error."
    expectation: 'parseMessage throws 505 SIP_ERR_PARSE_VERSION',
    outcome: { kind: 'parse-error', status: 505, codes: [ERR.version] },
  },
  {
    file: 'mismatch01',
    section: '3.1.2.17',
    title: 'Start Line and CSeq Method Mismatch',
    // RFC: "Any element receiving this request will respond with a 400 Bad Request."
    expectation: '400 from validateMessage (CSeq method INVITE on an OPTIONS request)',
    outcome: {
      kind: 'validate-error',
      status: 400,
      accessors: {},
      check: (m) => {
        expect(asRequest(m).method).toBe('OPTIONS');
        expect(m.cseq.method).toBe('INVITE');
        expect(m.cseq.seq).toBe(8);
      },
    },
  },
  {
    file: 'mismatch02',
    section: '3.1.2.18',
    title: 'Unknown Method with CSeq Method Mismatch',
    // RFC: "Any element receiving this response should respond with a 501 Not Implemented. A 400 Bad Request is also acceptable"
    expectation: '400 from validateMessage (same rule as mismatch01; the RFC accepts 400)',
    outcome: {
      kind: 'validate-error',
      status: 400,
      accessors: {},
      check: (m) => {
        expect(asRequest(m).method).toBe('NEWMETHOD');
        expect(m.cseq.method).toBe('INVITE');
        expect(m.body).toHaveLength(138);
      },
    },
  },
  {
    file: 'bigcode',
    section: '3.1.2.19',
    title: 'Overlarge Response Code',
    // RFC: "An element receiving this response should simply drop it."
    expectation: 'dropped (status 4294967301 is not a 3-digit code)',
    outcome: { kind: 'dropped' },
  },
];

describe('RFC 4475 3.1.2 invalid messages', () => {
  it.each(named(INVALID))('%s', (_, { file, outcome }) => {
    const bytes = torture('invalid', file);
    switch (outcome.kind) {
      case 'parse-error': {
        expectSipError(() => parseMessage(bytes), outcome.status, outcome.codes);
        break;
      }
      case 'request-line': {
        let msg: SipMessage | undefined;
        const parseError = caught(() => {
          msg = parseMessage(bytes);
        });
        if (parseError !== undefined) {
          const e = expectParseErrorShape(parseError);
          expect(e.status).toBe(outcome.status);
          expect(outcome.codes).toContain(e.code);
        } else {
          const req = asRequest(msg as SipMessage);
          expectSipError(() => req.uri, outcome.status, outcome.codes);
          expectSipError(() => validateMessage(req), outcome.status);
        }
        break;
      }
      case 'validate-error': {
        const msg = parseMessage(bytes);
        const e = expectSipError(() => validateMessage(msg), outcome.status);
        expect(e.code).not.toBe(ERR.tooLarge);
        for (const read of Object.values(outcome.accessors)) {
          expectSipError(() => read(msg), outcome.status);
        }
        outcome.check?.(msg);
        break;
      }
      case 'rejected': {
        let msg: SipMessage | undefined;
        const parseError = caught(() => {
          msg = parseMessage(bytes);
        });
        if (parseError !== undefined) {
          const e = expectParseErrorShape(parseError);
          expect(e.status).toBe(outcome.status);
          expect(outcome.parseCodes).toContain(e.code);
        } else {
          const parsed = msg as SipMessage;
          expectSipError(() => validateMessage(parsed), outcome.status);
          for (const read of Object.values(outcome.accessors)) {
            expectSipError(() => read(parsed), outcome.status);
          }
        }
        break;
      }
      case 'dropped': {
        let msg: SipMessage | undefined;
        const parseError = caught(() => {
          msg = parseMessage(bytes);
        });
        if (parseError !== undefined) {
          expectParseErrorShape(parseError);
        } else {
          const parsed = msg as SipMessage;
          expect(parsed.isRequest).toBe(false);
          expectSipError(() => validateMessage(parsed));
          outcome.check?.(parsed);
        }
        break;
      }
      case 'tolerated': {
        const msg = parseMessage(bytes);
        expect(validateMessage(msg)).toBe(msg);
        outcome.check(msg);
        break;
      }
    }
  });

  it('3.1.2.15 baddn: with the missing empty line added, the display names are still rejected with 400', () => {
    const original = torture('invalid', 'baddn');
    const bytes = new Uint8Array(original.length + 2);
    bytes.set(original);
    bytes.set([13, 10], original.length);
    const msg = parseMessage(bytes);
    expectSipError(() => msg.from, 400);
    expectSipError(() => msg.to, 400);
    expectSipError(() => validateMessage(msg), 400);
    expect(msg.header('From')).toBe('Bell, Alexander <sip:a.g.bell@example.com>;tag=43');
    expect(msg.callId).toBe('baddn.31415@c.example.com');
  });

  it('3.1.2.16 badvers: the error points at the Request-Line', () => {
    const e = expectSipError(() => parseMessage(torture('invalid', 'badvers')), 505);
    expect(e.offset).toBeLessThan('OPTIONS sip:t.watson@example.org SIP/7.0'.length + 2);
  });

  it('3.1.2.2 clerr / 3.1.2.3 ncl: errors from a string input match the byte input', () => {
    for (const file of ['clerr', 'ncl']) {
      const bytes = torture('invalid', file);
      const fromBytes = expectSipError(() => parseMessage(bytes), 400);
      const fromString = expectSipError(() => parseMessage(fromUtf8(bytes)), 400);
      expect(fromString.code).toBe(fromBytes.code);
    }
  });
});

// ---------------------------------------------------------------------------
// 3.2 transaction layer, 3.3 application layer, 3.4 backward compatibility.
// The semantic answers (416, 420, 415, 401, 483...) come from higher layers;
// the message layer must parse these and expose what those layers need.
// ---------------------------------------------------------------------------

interface OtherCase {
  file: string;
  section: string;
  title: string;
  // what the message layer does: 'valid' = parse and validate; 'validate-400'
  // = parse, validateMessage throws 400; 'reject-400' = parse or validate throws 400
  layer: 'valid' | 'validate-400' | 'reject-400';
  check: (msg: SipMessage, bytes: Uint8Array) => void;
}

const OTHER: OtherCase[] = [
  {
    file: 'badbranch',
    section: '3.2.1',
    title: 'Missing Transaction Identifier',
    // RFC: "A parser must not break when receiving this message." (the 400 or 2543 fallback is the transaction layer's)
    layer: 'valid',
    check: (m) => {
      expect(m.via).toHaveLength(1);
      expect(m.via[0].branch).toBe('z9hG4bK');
      expect(m.via[0].host).toBe('192.0.2.1');
      expect(m.callId).toBe('badbranch.sadonfo23i420jv0as0derf3j3n');
    },
  },
  {
    file: 'insuf',
    section: '3.3.1',
    title: 'Missing Required Header Fields',
    // RFC: "An element receiving this message must not break because of the missing information. Ideally, it will respond with a 400 Bad Request error."
    layer: 'validate-400',
    check: (m) => {
      expectSipError(() => m.callId, 400, ERR.missing);
      expectSipError(() => m.from, 400, ERR.missing);
      expectSipError(() => m.to, 400, ERR.missing);
      expectSipError(() => validateMessage(m), 400, ERR.missing);
      expect(m.maxForwards).toBeUndefined();
      expect(m.cseq.seq).toBe(193942);
      expect(m.via[0].branch).toBe('z9hG4bKkdj.insuf');
      expect(m.contentLength).toBe(152);
      expect(m.body).toHaveLength(152);
    },
  },
  {
    file: 'unkscm',
    section: '3.3.2',
    title: 'Request-URI with Unknown Scheme',
    // RFC: an element that does not understand the scheme answers 416 (application layer)
    layer: 'valid',
    check: (m) => {
      const req = asRequest(m);
      expect(req.uri.scheme.toLowerCase()).toBe('nobodyknowsthisscheme');
      expect(String(req.uri)).toBe('nobodyKnowsThisScheme:totallyopaquecontent');
    },
  },
  {
    file: 'novelsc',
    section: '3.3.3',
    title: 'Request-URI with Known but Atypical Scheme',
    // RFC: answered like unkscm unless the element supports soap.beep (application layer)
    layer: 'valid',
    check: (m) => {
      const req = asRequest(m);
      expect(req.uri.scheme).toBe('soap.beep');
      expect(String(req.uri)).toBe('soap.beep://192.0.2.103:3002');
    },
  },
  {
    file: 'unksm2',
    section: '3.3.4',
    title: 'Unknown URI Schemes in Header Fields',
    // RFC: "The message is syntactically valid. Parsers must not fail when receiving this message."
    layer: 'valid',
    check: (m) => {
      expect(m.to.uri.scheme).toBe('isbn');
      expect(String(m.to.uri)).toBe('isbn:2983792873');
      expect(m.from.uri.scheme).toBe('http');
      expect(m.from.tag).toBe('3234233');
      expect(m.contacts).toHaveLength(1);
      expect(m.contacts[0].uri.scheme).toBe('name');
      expect(String(m.contacts[0].uri)).toBe('name:John_Smith');
    },
  },
  {
    file: 'bext01',
    section: '3.3.5',
    title: 'Proxy-Require and Require',
    // RFC: the element answers 420 Bad Extension listing the option-tags (application layer)
    layer: 'valid',
    check: (m) => {
      expect(m.headers('Require')).toEqual(['nothingSupportsThis', 'nothingSupportsThisEither']);
      expect(m.headers('Proxy-Require')).toEqual([
        'noProxiesSupportThis',
        'norDoAnyProxiesSupportThis',
      ]);
      expect(m.via[0].transport.toUpperCase()).toBe('TLS');
      expect(m.via[0].host).toBe('fold-and-staple.example.com');
    },
  },
  {
    file: 'invut',
    section: '3.3.6',
    title: 'Unknown Content-Type',
    // RFC: a UAS answers 415 Unsupported Media Type (application layer)
    layer: 'valid',
    check: (m, bytes) => {
      expect(m.contentType?.type).toBe('application');
      expect(m.contentType?.subtype).toBe('unknownformat');
      expect(m.contentType?.mimeType).toBe('application/unknownformat');
      expect(m.contentLength).toBe(40);
      expectBytes(m.body, bytes.subarray(headerSectionEnd(bytes)));
      expect(m.bodyText).toBe('<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n');
    },
  },
  {
    file: 'regaut01',
    section: '3.3.7',
    title: 'Unknown Authorization Scheme',
    // RFC: a registrar answers 401 with a challenge it supports (application layer)
    layer: 'valid',
    check: (m) => {
      expect(m.header('Authorization')).toBe('NoOneKnowsThisScheme opaque-data=here');
      expect(m.contentLength).toBe(0);
      expect(m.cseq.method).toBe('REGISTER');
    },
  },
  {
    file: 'multi01',
    section: '3.3.8',
    title: 'Multiple Values in Single Value Required Fields',
    // RFC: "An element receiving this request would respond with a 400 Bad Request error."
    layer: 'validate-400',
    check: (m) => {
      expect(m.headers('Call-ID')).toEqual([
        'multi01.98asdh@192.0.2.1',
        'multi01.98asdh@192.0.2.2',
      ]);
      expect(m.headers('CSeq')).toEqual(['5 INVITE', '59 INVITE']);
      expect(m.headers('To')).toHaveLength(2);
      expect(m.headers('From')).toHaveLength(2);
      expect(m.headers('Max-Forwards')).toEqual(['70', '5']);
      expect(m.headers('Contact')).toHaveLength(2);
      expectSipError(() => validateMessage(m), 400);
    },
  },
  {
    file: 'mcl01',
    section: '3.3.9',
    title: 'Multiple Content-Length Values',
    // RFC: "An element receiving this message should respond with an error." (framing cannot be trusted)
    layer: 'reject-400',
    check: (m) => {
      expect(m.headers('Content-Length')).toEqual(['13', '5']);
      expectSipError(() => validateMessage(m), 400);
    },
  },
  {
    file: 'bcast',
    section: '3.3.10',
    title: '200 OK Response with Broadcast Via Header Field Value',
    // RFC: the response is handled like any other; the broadcast sent-by must not be used to route it (transaction layer)
    layer: 'valid',
    check: (m) => {
      expect(asResponse(m).status).toBe(200);
      expect(m.via).toHaveLength(2);
      expect(m.via[1].host).toBe('255.255.255.255');
      expect(m.via[1].branch).toBe('z9hG4bK1saber23');
    },
  },
  {
    file: 'zeromf',
    section: '3.3.11',
    title: 'Max-Forwards of Zero',
    // RFC: a legal request; a proxy answers 483 and a UAS processes it normally (higher layers)
    layer: 'valid',
    check: (m) => {
      expect(m.maxForwards).toBe(0);
      expect(asRequest(m).method).toBe('OPTIONS');
    },
  },
  {
    file: 'cparam01',
    section: '3.3.12',
    title: 'REGISTER with a Contact Header Parameter',
    // RFC: unknownparam is a contact-param, not a url-param (no <> around the URI)
    layer: 'valid',
    check: (m) => {
      const contact = m.contacts[0];
      expect(m.contacts).toHaveLength(1);
      expect(contact.uri.user).toBe('+19725552222');
      expect(contact.uri.host).toBe('gw1.example.net');
      expect(contact.params.has('unknownparam')).toBe(true);
      expect(contact.params.get('unknownparam')).toBeNull();
      expect(contact.uri.params.has('unknownparam')).toBe(false);
    },
  },
  {
    file: 'cparam02',
    section: '3.3.13',
    title: 'REGISTER with a url-parameter',
    // RFC: unknownparam is a url-param of the Contact URI (inside <>)
    layer: 'valid',
    check: (m) => {
      const contact = m.contacts[0];
      expect(m.contacts).toHaveLength(1);
      expect(contact.uri.params.has('unknownparam')).toBe(true);
      expect(contact.uri.params.get('unknownparam')).toBeNull();
      expect(contact.params.has('unknownparam')).toBe(false);
    },
  },
  {
    file: 'regescrt',
    section: '3.3.14',
    title: 'REGISTER with a URL Escaped Header',
    // RFC: the registration succeeds and keeps the escaped Route header in the contact URI
    layer: 'valid',
    check: (m) => {
      const contact = m.contacts[0];
      expect(m.contacts).toHaveLength(1);
      expect(contact.uri.user).toBe('user');
      expect(contact.uri.host).toBe('example.com');
      expect(uriHeader(contact.uri, 'Route')).toBe('<sip:sip.example.com>');
      expect(String(contact.uri)).toBe('sip:user@example.com?Route=%3Csip:sip.example.com%3E');
      expect(m.has('Route')).toBe(false);
      expect(m.contentLength).toBe(0);
    },
  },
  {
    file: 'sdp01',
    section: '3.3.15',
    title: 'Unacceptable Accept Offering',
    // RFC: a UAS answers 406 Not Acceptable (application layer)
    layer: 'valid',
    check: (m) => {
      expect(m.contentType?.mimeType).toBe('application/sdp');
      expect(m.headers('Accept')).toEqual(['text/nobodyKnowsThis']);
      expect(m.body).toHaveLength(150);
    },
  },
  {
    file: 'inv2543',
    section: '3.4.1',
    title: 'INVITE with RFC 2543 Syntax',
    // RFC: "a legal message per RFC 2543 ... that should be accepted by RFC 3261 elements that want to maintain backwards compatibility"
    layer: 'valid',
    check: (m, bytes) => {
      expect(m.via).toHaveLength(1);
      expect(m.via[0].branch).toBeUndefined();
      expect(m.via[0].host).toBe('iftgw.example.com');
      expect(m.from.tag).toBeUndefined();
      expect(m.from.uri.params.get('user')).toBe('phone');
      expect(m.to.uri.user).toBe('+16505552222');
      expect(m.maxForwards).toBeUndefined();
      expect(m.contentLength).toBeUndefined();
      expect(m.has('Content-Length')).toBe(false);
      // without Content-Length the body is the rest of the datagram
      expectBytes(m.body, bytes.subarray(headerSectionEnd(bytes)));
      expect(m.bodyText.endsWith('m=audio 49217 RTP/AVP 0\r\n')).toBe(true);
      expect(m.headers('Record-Route')).toEqual(['<sip:UserB@example.com;maddr=ss1.example.com>']);
    },
  },
];

describe('RFC 4475 3.2 / 3.3 / 3.4 messages at the message layer', () => {
  it.each(named(OTHER))('%s', (_, { file, layer, check }) => {
    const bytes = torture('other', file);
    if (layer === 'reject-400') {
      let msg: SipMessage | undefined;
      const parseError = caught(() => {
        msg = parseMessage(bytes);
      });
      if (parseError !== undefined) {
        const e = expectParseErrorShape(parseError);
        expect(e.status).toBe(400);
        expect(e.code).toBe(ERR.contentLength);
      } else {
        check(msg as SipMessage, bytes);
      }
      return;
    }
    const msg = parseMessage(bytes);
    check(msg, bytes);
    if (layer === 'valid') {
      expect(validateMessage(msg)).toBe(msg);
    } else {
      expectSipError(() => validateMessage(msg), 400);
    }
  });
});

// ---------------------------------------------------------------------------
// Every message: no crash, and a byte-exact round trip for those that parse.
// ---------------------------------------------------------------------------

interface FileEntry {
  group: Group;
  section: string;
  file: string;
  mayFailToParse: boolean;
}

const ALL: FileEntry[] = [
  ...VALID.map((c) => ({
    group: 'valid' as const,
    section: c.section,
    file: c.file,
    mayFailToParse: false,
  })),
  ...INVALID.map((c) => ({
    group: 'invalid' as const,
    section: c.section,
    file: c.file,
    mayFailToParse:
      c.outcome.kind === 'parse-error' ||
      c.outcome.kind === 'request-line' ||
      c.outcome.kind === 'rejected' ||
      c.outcome.kind === 'dropped',
  })),
  ...OTHER.map((c) => ({
    group: 'other' as const,
    section: c.section,
    file: c.file,
    mayFailToParse: c.layer === 'reject-400',
  })),
];

/** The bytes that make up the message: past Content-Length, octets are not part of it. */
function messageExtent(bytes: Uint8Array, msg: SipMessage): Uint8Array {
  const start = headerSectionEnd(bytes);
  let length: number | undefined;
  const error = caught(() => {
    length = msg.contentLength;
  });
  if (error !== undefined) expectParseErrorShape(error);
  if (start < 0 || length === undefined || start + length >= bytes.length) return bytes;
  return bytes.subarray(0, start + length);
}

describe('RFC 4475 corpus: round trip', () => {
  it('the fixtures hold all 49 messages, sorted into 13 valid, 19 invalid and 17 other', () => {
    expect(fixtureNames('torture/valid', '.dat')).toEqual(VALID.map((c) => c.file).sort());
    expect(fixtureNames('torture/invalid', '.dat')).toEqual(INVALID.map((c) => c.file).sort());
    expect(fixtureNames('torture/other', '.dat')).toEqual(OTHER.map((c) => c.file).sort());
    expect(ALL).toHaveLength(49);
  });

  const rows = ALL.map((e): [string, FileEntry] => [
    `${e.section} ${e.file}: an unchanged message serializes to its own bytes`,
    e,
  ]);

  it.each(rows)('%s', (_, { group, file, mayFailToParse }) => {
    const bytes = torture(group, file);
    let msg: SipMessage | undefined;
    const parseError = caught(() => {
      msg = parseMessage(bytes);
    });
    if (parseError !== undefined) {
      expect(mayFailToParse).toBe(true);
      expectParseErrorShape(parseError);
      return;
    }
    const parsed = msg as SipMessage;
    // reading every accessor first must not change what is written back
    touchAll(parsed);
    const expected = messageExtent(bytes, parsed);
    expectBytes(serialize(parsed), expected);
    expectBytes(parsed.serialize(), expected);
    if (isUtf8(expected)) expect(parsed.toString()).toBe(fromUtf8(expected));
  });

  it('3.1.1.8 dblreq: the trailing INVITE is not written back', () => {
    const bytes = torture('valid', 'dblreq');
    const out = serialize(parseMessage(bytes));
    expect(out.length).toBe(headerSectionEnd(bytes));
    expect(fromUtf8(out).endsWith('Content-Length: 0\r\n\r\n')).toBe(true);
  });

  it('a re-parse of the serialized valid messages reads the same fields', () => {
    for (const { file } of VALID) {
      const first = parseMessage(torture('valid', file));
      const second = parseMessage(serialize(first));
      expect(second.callId).toBe(first.callId);
      expect(second.cseq.seq).toBe(first.cseq.seq);
      expect(second.cseq.method).toBe(first.cseq.method);
      expect(second.via.map((v) => v.branch)).toEqual(first.via.map((v) => v.branch));
      expect(second.from.tag).toBe(first.from.tag);
      expectBytes(second.body, first.body);
    }
  });

  it('every parse failure in the corpus is a SipParseError', () => {
    let failures = 0;
    for (const { group, file } of ALL) {
      const error = caught(() => parseMessage(torture(group, file)));
      if (error !== undefined) {
        failures++;
        expect(error).toBeInstanceOf(SipParseError);
      }
    }
    // clerr, ncl, baddn and badvers cannot be parsed at all
    expect(failures).toBeGreaterThanOrEqual(4);
  });
});

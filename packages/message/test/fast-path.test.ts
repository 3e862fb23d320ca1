// The headers read on every message (Via, From, To, Call-ID, CSeq) are read from the
// received bytes while the message is unchanged, and by the general header parsers once
// it was changed. Both must agree on every value, and on every error.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMessage, SipParseError } from '../src/index.ts';
import type { SipMessage } from './helpers.ts';

type Field = 'via' | 'from' | 'to' | 'callId' | 'cseq';

function describeValue(m: SipMessage, field: Field): unknown {
  try {
    switch (field) {
      case 'via':
        return m.via.map((v) => ({
          s: v.toString(),
          protocol: v.protocol,
          transport: v.transport,
          host: v.host,
          port: v.port,
          params: [...v.params],
          quoted: [...v.params].map(([k]) => v.params.isQuoted(k)),
          branch: v.branch,
        }));
      case 'from':
      case 'to': {
        const n = m[field];
        let uri: unknown;
        try {
          uri = n.uri.toString();
        } catch (e) {
          uri = e instanceof SipParseError ? `${e.code} ${e.message}` : 'other error';
        }
        return {
          s: n.toString(),
          displayName: n.displayName,
          uri,
          tag: n.tag,
          params: [...n.params],
          quoted: [...n.params].map(([k]) => n.params.isQuoted(k)),
        };
      }
      case 'callId':
        return m.callId;
      case 'cseq':
        return { seq: m.cseq.seq, method: m.cseq.method, s: m.cseq.toString() };
    }
  } catch (e) {
    if (e instanceof SipParseError) return { error: e.code, message: e.message, status: e.status };
    throw e;
  }
}

function message(lines: string[]): string {
  return ['OPTIONS sip:a@b SIP/2.0', ...lines, 'Content-Length: 0', '', ''].join('\r\n');
}

const BASE: Record<Field, string> = {
  via: 'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1',
  from: 'From: <sip:a@b>;tag=1',
  to: 'To: <sip:c@d>',
  callId: 'Call-ID: abc@host',
  cseq: 'CSeq: 1 OPTIONS',
};

/** The same message read twice: unchanged, and after changing an unrelated header. */
function compare(text: string | Uint8Array, field: Field): void {
  let fast: SipMessage;
  let slow: SipMessage;
  try {
    fast = parseMessage(text);
    slow = parseMessage(text);
  } catch (e) {
    if (e instanceof SipParseError) return;
    throw e;
  }
  slow.setHeader('X-Changed', '1');
  expect(describeValue(fast, field), JSON.stringify(text)).toEqual(describeValue(slow, field));
}

function check(field: Field, line: string, extra: string[] = []): void {
  const lines = (Object.keys(BASE) as Field[]).map((f) => (f === field ? line : BASE[f]));
  compare(message([...lines, ...extra]), field);
}

const VALUES: Record<Field, string[]> = {
  via: [
    'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport',
    'v: SIP/2.0/TCP host.example.com;received=1.2.3.4;rport=5060;branch=z9hG4bKx',
    'Via: SIP/2.0/UDP a:5060 ; branch = z9 ;lr',
    'Via: SIP/2.0/UDP a:5060;branch=z9hG4bK1, SIP/2.0/TCP b;branch=2',
    'Via: SIP/2.0/UDP a:5060;branch=z9hG4bK1 ,SIP/2.0/TCP b;branch=2  ',
    'Via: SIP/2.0/udp a',
    'Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=x',
    'Via: SIP/2.0/UDP 2001:db8::1;branch=x',
    'Via: SIP/2.0/UDP a:;branch=x',
    'Via: SIP/2.0/UDP a:123456;branch=x',
    'Via: SIP/2.0/UDP a:65536;branch=x',
    'Via: SIP/2.0/UDP a;branch="quoted"',
    'Via: SIP/2.0/UDP a;branch=',
    'Via: SIP/2.0/UDP a;=x',
    'Via: SIP/2.0/UDP a;;x',
    'Via: SIP/2.0/UDP a,',
    'Via: SIP/2.0/UDP a, ,SIP/2.0/UDP b',
    'Via: SIP/2.0/UDPa',
    'Via: SIP / 2.0 / UDP a',
    'Via: SIP/2.0/UDP\t a;maddr=[::1];ttl=3',
    'Via: SIP/2.0/UDP a\r\n ;branch=folded',
    'Via: SIP/2.0/UDP a x',
    'Via: SIP/2.0/UDP a;br@nch=1',
    'Via: SIP/2.0/TLS-SCTP a;BRANCH=z9hG4bKq',
    'Via: SIP/2.0/TDW a',
    'Via: SIP/2.0/VDI a;branch=1',
    'Via: ',
  ],
  from: [
    'From: <sip:a@b>;tag=1',
    'From: "Alice" <sip:a@b>;tag=1',
    'From: "" <sip:a@b>',
    'From: "A\\"b" <sip:a@b>',
    'From: Alice Liddell <sip:a@b>;tag=x',
    'From: Alice  Liddell <sip:a@b>;tag=x',
    'From: Alice\tLiddell <sip:a@b>;tag=x',
    'From: Alice<sip:a@b>',
    'From: Alice <sip:a@b> ;tag=1 ',
    'From: sip:a@b;tag=1',
    'From: sip:a@b ;tag=1',
    'From: sip:a@b?x=y;tag=1',
    'From: <sip:a@b?x=y>;tag=1',
    'From: <sip:a@b',
    'From: <>',
    'From: < sip:a@b>',
    'From: <sip:a@b>;tag=1, <sip:c@d>',
    'From: <sip:a@b> x',
    'From: sip:a@b x',
    'From: Bob sip:a@b',
    'From: "Bob" sip:a@b',
    'From: "Bob <sip:a@b>',
    'From: Dörte <sip:a@b>',
    'From: "Dörte" <sip:a@b>',
    'From: <sip:a@b>;tag="q"',
    'From: <sip:a@b>;tag',
    'From: <sip:a@b>;tag=',
    'From: <not a uri>',
    'From: <bad>',
    'From: <sip:a@b>;Tag=X;tag=y',
    // same length, first and last bytes hashing like 'tag', 'branch' and 'INVITE'
    'From: <sip:a@b>;ua`=1',
    'From: <sip:a@b>;t!g=1;cranck=2',
    'From: a@b:c,d;tag=1',
    'From: *',
    'From: ',
    'From: "a"\r\n <sip:a@b>',
  ],
  to: ['To: <sip:c@d>;tag=9', 'To: C <sip:c@d>', 't: sip:c@d', 'To: <sip:c@d>;;'],
  callId: [
    'Call-ID: abc',
    'i: abc@host',
    'Call-ID:  abc@host  ',
    'Call-ID: abc@',
    'Call-ID: @host',
    'Call-ID: abc@host@x',
    'Call-ID: a b',
    'Call-ID: <a>"b"[c]{d}/e?:f',
    'Call-ID: abc@host;x',
    'Call-ID: ',
    'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
  ],
  cseq: [
    'CSeq: 1 OPTIONS',
    'CSeq: 4294967295 INVITE',
    'CSeq: 4294967296 INVITE',
    'CSeq: 12345678901 INVITE',
    'CSeq: 1  custom-Method',
    'CSeq: 1 HNVITL',
    'CSeq: 1 iNVITe',
    'CSeq: 1\tACK ',
    'CSeq: 1INVITE',
    'CSeq: INVITE',
    'CSeq: 1',
    'CSeq: 1 ',
    'CSeq: 1 INV@TE',
    'CSeq: 1 INVITE x',
    'CSeq: 01 invite',
    'CSeq: 1\r\n INVITE',
  ],
};

describe('hot headers read from the received bytes', () => {
  for (const field of Object.keys(VALUES) as Field[]) {
    it(`${field}: the same values and errors as the general parser`, () => {
      for (const line of VALUES[field]) check(field, line);
    });
  }

  it('several Via lines, with other headers between them', () => {
    check('via', 'Via: SIP/2.0/UDP a;branch=1', [
      'X: y',
      'Via: SIP/2.0/TCP b;branch=2, SIP/2.0/UDP c',
    ]);
    check('via', 'Via: SIP/2.0/UDP a;branch=1', ['v: SIP/2.0/UDP [::1]']);
    check('via', 'Via: SIP/2.0/UDP a;branch=1', ['VIA: SIP/2.0/UDP b;rport']);
    check('via', 'Via: SIP/2.0/UDP a;branch=1', ['Via: SIP/2.0/UDP b;rport=x=']);
  });

  const chars = fc.constantFrom(
    ...'aAzZ09.-_!%*+`\'~@:;=,<>"\\/?[]{}() \t#$&|^'.split(''),
    'z9hG4bK',
    'SIP/2.0/',
    'UDP',
    'sip:',
    'tag',
    'branch',
    'ö',
    '\r\n ',
  );
  const text = fc.array(chars, { maxLength: 24 }).map((a) => a.join(''));

  it('random values: the same values and errors', { timeout: 20_000 }, () => {
    const prefixes: Record<Field, string[]> = {
      via: ['SIP/2.0/UDP ', 'SIP/2.0/TCP a', ''],
      from: ['<sip:a@b>', '"x" <sip:', 'Bob <sip:b@c>', 'sip:', ''],
      to: ['<sip:a@b>;tag=', ''],
      callId: ['a', ''],
      cseq: ['1 ', '12', ''],
    };
    const names: Record<Field, string> = {
      via: 'Via',
      from: 'From',
      to: 'To',
      callId: 'Call-ID',
      cseq: 'CSeq',
    };
    const fields = Object.keys(VALUES) as Field[];
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.nat(4), text, (field, p, rest) => {
        const prefix = prefixes[field][p % prefixes[field].length] as string;
        check(field, `${names[field]}: ${prefix}${rest}`);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('display names in UTF-8', () => {
  it('read the same from the bytes, valid or not', () => {
    const enc = new TextEncoder();
    const head = `OPTIONS sip:a@b SIP/2.0\r\n${BASE.via}\r\n`;
    const rest = `\r\n${BASE.to}\r\n${BASE.callId}\r\n${BASE.cseq}\r\n\r\n`;
    const bytes = (before: string, raw: number[], after: string) =>
      Uint8Array.from([...enc.encode(head + before), ...raw, ...enc.encode(after + rest)]);
    for (const raw of [[0xc3, 0xb6], [0xc3], [0xff, 0x41], [0xe2, 0x82], [0x7f], []]) {
      compare(bytes('From: "D', raw, '" <sip:a@b>;tag=1'), 'from');
      compare(bytes('From: "', raw, '"<sip:a@b>'), 'from');
      compare(bytes('From: "a\\', raw, '" <sip:a@b>'), 'from');
    }
    expect(parseMessage(bytes('From: "D', [0xc3, 0xb6], 'rte" <sip:a@b>')).from.displayName).toBe(
      'Dörte',
    );
  });
});

describe('a changed message', () => {
  it('still reads its start line, decoded as the header section is', () => {
    const res = parseMessage(
      'SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP a;branch=1\r\nX-A: Dörte\r\nContent-Length: 0\r\n\r\n',
    );
    res.setHeader('X-B', '1');
    expect(res.isRequest ? '' : res.reason).toBe('Busy Here');
    const req = parseMessage('OPTIONS sip:b@c SIP/2.0\r\n\r\n');
    req.setHeader('X-B', '1');
    expect(req.isRequest ? req.uri.host : '').toBe('c');
  });
});

describe('values the parser reads ahead', () => {
  const text = (lines: string[]) =>
    ['OPTIONS sip:a@b SIP/2.0', ...lines, 'Content-Length: 0', '', ''].join('\r\n');
  const plain = text(Object.values(BASE));

  it('are cached on first access, and kept when the message changes afterwards', () => {
    const m = parseMessage(plain);
    const from = m.from;
    const via = m.via;
    expect(m.from).toBe(from);
    m.setHeader('X-Changed', '1');
    expect(m.from).toBe(from);
    expect(m.via).toBe(via);
    expect(m.callId).toBe('abc@host');
  });

  it('are read again from the lines when the message changes before they are asked for', () => {
    const m = parseMessage(plain);
    m.setHeader('X-Changed', '1');
    expect(m.via[0]?.branch).toBe('z9hG4bK1');
    expect(m.from.tag).toBe('1');
    expect(m.callId).toBe('abc@host');
    expect(m.cseq.seq).toBe(1);
    expect(new TextDecoder().decode(m.serialize())).toContain('X-Changed: 1\r\n');
  });
});

describe('RFC 3261 §7.3.1: header lines holding a number end where any line ends', () => {
  const text = (line: string) =>
    `OPTIONS sip:a@b SIP/2.0\r\n${BASE.via}\r\n${line}\r\nContent-Length: 0\r\n\r\n`;
  const error = (input: string) => {
    try {
      parseMessage(input);
    } catch (e) {
      if (e instanceof SipParseError) return { code: e.code, status: e.status, message: e.message };
      throw e;
    }
    return undefined;
  };

  it('a bare LF or a lone CR after the digits is rejected when parsing', () => {
    expect(error(text('Max-Forwards: 70\nX: y'))).toEqual({
      code: 'SIP_ERR_PARSE_HEADER',
      status: 400,
      message: 'a line ends with LF alone',
    });
    expect(error(text('Max-Forwards: 70 \rX: y'))).toEqual({
      code: 'SIP_ERR_PARSE_HEADER',
      status: 400,
      message: 'a header value has a CR that does not end the line',
    });
    expect(error(text('Expires: 7\n0'))).toMatchObject({ code: 'SIP_ERR_PARSE_HEADER' });
  });

  it('a number that goes on, or a fold after it, is read as the whole line', () => {
    const m = parseMessage(text('Max-Forwards: 70 1'));
    expect(m.header('Max-Forwards')).toBe('70 1');
    const folded = parseMessage(text('Expires: 60\r\n 0'));
    expect(folded.header('Expires')).toBe('60 0');
    expect(new TextDecoder().decode(folded.serialize())).toBe(text('Expires: 60\r\n 0'));
    expect(parseMessage(text('Max-Forwards:70')).maxForwards).toBe(70);
  });
});

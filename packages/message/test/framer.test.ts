// StreamFramer: turning the byte chunks of a TCP/TLS connection into whole
// messages and RFC 5626 keep-alives, and the size limits that protect it.
import { describe, expect, it } from 'vitest';
import { parseMessage, SipParseError, StreamFramer, serialize } from '../src/index.ts';
import {
  asRequest,
  bytesView,
  caught,
  concatBytes,
  expectBytes,
  expectSipError,
  fixture,
  fromUtf8,
  headerSectionEnd,
  type SipMessage,
  sipText,
  utf8,
} from './helpers.ts';

type Item = { type: 'message'; message: SipMessage } | { type: 'ping' } | { type: 'pong' };

const INVITE = fixture('typical/invite-sdp.sip');
const OK = fixture('typical/ok-200.sip');
const REGISTER = fixture('typical/register-auth.sip');
const UNAUTHORIZED = fixture('typical/unauthorized-401.sip');
const NOTIFY = fixture('typical/notify-pidf.sip');
const TYPICAL = [INVITE, OK, REGISTER, UNAUTHORIZED, NOTIFY];

const PING = utf8('\r\n\r\n');
const PONG = utf8('\r\n');
const TOO_LARGE = 'SIP_ERR_PARSE_TOO_LARGE';

const OPTIONS_PING = utf8(
  sipText([
    'OPTIONS sip:proxy.example.com SIP/2.0',
    'Via: SIP/2.0/TCP client.example.com;branch=z9hG4bKka1',
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=ka',
    'To: <sip:proxy.example.com>',
    'Call-ID: ka@client.example.com',
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
  ]),
);

function push(framer: StreamFramer, chunk: Uint8Array): Item[] {
  const items: Item[] = [];
  for (const item of framer.push(chunk)) items.push(item as Item);
  return items;
}

function feed(framer: StreamFramer, chunks: Uint8Array[]): Item[] {
  return chunks.flatMap((chunk) => push(framer, chunk));
}

/** Items as comparable values: a message by its serialized bytes. */
function summary(items: Item[]): string[] {
  return items.map((item) =>
    item.type === 'message' ? `message:${bytesView(serialize(item.message))}` : item.type,
  );
}

const asMessage = (bytes: Uint8Array): string => `message:${bytesView(bytes)}`;

function request(headers: string[], body = ''): Uint8Array {
  return utf8(
    sipText(
      [
        'MESSAGE sip:bob@example.com SIP/2.0',
        'Via: SIP/2.0/TCP client.example.com:5060;branch=z9hG4bKfr01',
        'Max-Forwards: 70',
        'From: <sip:alice@example.com>;tag=fr1',
        'To: <sip:bob@example.com>',
        'Call-ID: framer-1@client.example.com',
        'CSeq: 1 MESSAGE',
        ...headers,
      ],
      body,
    ),
  );
}

describe('StreamFramer: framing', () => {
  it('a whole message in one chunk is one message item', () => {
    const items = push(new StreamFramer(), INVITE);
    expect(items).toHaveLength(1);
    expect(items[0].type).toBe('message');
    const msg = (items[0] as { message: SipMessage }).message;
    expect(asRequest(msg).method).toBe('INVITE');
    expect(msg.callId).toBe('3848276298220188511@atlanta.example.com');
    expectBytes(serialize(msg), INVITE);
    expect(msg.body).toHaveLength(msg.contentLength ?? -1);
  });

  it('several messages merged in one chunk come out in order', () => {
    const items = push(new StreamFramer(), concatBytes(...TYPICAL));
    expect(summary(items)).toEqual(TYPICAL.map(asMessage));
  });

  it('a message split in two at every offset is yielded once, when complete', () => {
    for (const bytes of [INVITE, UNAUTHORIZED]) {
      for (let cut = 1; cut < bytes.length; cut++) {
        const framer = new StreamFramer();
        expect(push(framer, bytes.subarray(0, cut))).toEqual([]);
        expect(summary(push(framer, bytes.subarray(cut)))).toEqual([asMessage(bytes)]);
      }
    }
  });

  it('a message split in three chunks, at many pairs of offsets', () => {
    const bytes = NOTIFY;
    for (let a = 1; a < bytes.length; a += 13) {
      for (let b = a + 1; b < bytes.length; b += 29) {
        const items = feed(new StreamFramer(), [
          bytes.subarray(0, a),
          bytes.subarray(a, b),
          bytes.subarray(b),
        ]);
        expect(summary(items)).toEqual([asMessage(bytes)]);
      }
    }
  });

  it('the end of one message and the start of the next in the same chunk', () => {
    const stream = concatBytes(REGISTER, OK, NOTIFY);
    // inside REGISTER's CRLFCRLF, inside OK's start line, one byte before OK ends, the end
    const insideBlankLine = headerSectionEnd(REGISTER) - 3;
    const cuts = [
      insideBlankLine,
      REGISTER.length + 10,
      REGISTER.length + OK.length - 1,
      stream.length,
    ];
    const chunks: Uint8Array[] = [];
    let previous = 0;
    for (const cut of cuts) {
      chunks.push(stream.subarray(previous, cut));
      previous = cut;
    }
    expect(summary(feed(new StreamFramer(), chunks))).toEqual(
      [REGISTER, OK, NOTIFY].map(asMessage),
    );
  });

  it('byte-by-byte feeding yields each message on its last byte', () => {
    const stream = concatBytes(INVITE, UNAUTHORIZED, NOTIFY);
    const ends = [INVITE.length, INVITE.length + UNAUTHORIZED.length, stream.length];
    const framer = new StreamFramer();
    const seenAt: number[] = [];
    const all: Item[] = [];
    for (let i = 0; i < stream.length; i++) {
      const items = push(framer, stream.subarray(i, i + 1));
      for (const item of items) {
        seenAt.push(i + 1);
        all.push(item);
      }
    }
    expect(seenAt).toEqual(ends);
    expect(summary(all)).toEqual([INVITE, UNAUTHORIZED, NOTIFY].map(asMessage));
  });

  it('a body holding CRLFCRLF and binary octets is framed by Content-Length only', () => {
    const body = concatBytes(
      utf8('--b\r\n\r\nnot a header\r\n\r\n'),
      new Uint8Array([0, 13, 10, 13, 10, 255]),
    );
    const head = utf8(
      sipText([
        'MESSAGE sip:bob@example.com SIP/2.0',
        'Via: SIP/2.0/TCP client.example.com;branch=z9hG4bKbin',
        'Max-Forwards: 70',
        'From: <sip:alice@example.com>;tag=b1',
        'To: <sip:bob@example.com>',
        'Call-ID: bin@client.example.com',
        'CSeq: 3 MESSAGE',
        'Content-Type: application/octet-stream',
        `Content-Length: ${body.length}`,
      ]),
    );
    const msgBytes = concatBytes(head, body);
    const items = feed(new StreamFramer(), [
      msgBytes.subarray(0, head.length + 3),
      msgBytes.subarray(head.length + 3),
      OK,
    ]);
    expect(summary(items)).toEqual([asMessage(msgBytes), asMessage(OK)]);
    expectBytes((items[0] as { message: SipMessage }).message.body, body);
  });

  it('compact Content-Length (l), folded header lines and Content-Length: 0', () => {
    const folded = request(['Subject: a subject', ' folded over', '\ttwo lines', 'l: 5'], 'hello');
    const empty = request(['Content-Length: 0']);
    const items = feed(new StreamFramer(), [concatBytes(folded, empty, folded)]);
    expect(summary(items)).toEqual([folded, empty, folded].map(asMessage));
    const first = (items[0] as { message: SipMessage }).message;
    expect(first.bodyText).toBe('hello');
    expect(first.header('Subject')?.replace(/\s+/g, ' ')).toBe('a subject folded over two lines');
  });

  it('an empty chunk yields nothing and changes nothing', () => {
    const framer = new StreamFramer();
    expect(push(framer, new Uint8Array(0))).toEqual([]);
    expect(push(framer, INVITE.subarray(0, 10))).toEqual([]);
    expect(push(framer, new Uint8Array(0))).toEqual([]);
    expect(summary(push(framer, INVITE.subarray(10)))).toEqual([asMessage(INVITE)]);
  });
});

describe('StreamFramer: RFC 5626 §4.4.1 keep-alives', () => {
  it('CRLFCRLF is a ping', () => {
    expect(summary(push(new StreamFramer(), PING))).toEqual(['ping']);
  });

  it('a lone CRLF is a pong, reported without waiting for more data', () => {
    expect(summary(push(new StreamFramer(), PONG))).toEqual(['pong']);
  });

  it('a CRLF followed by a message is a pong, then the message', () => {
    expect(summary(push(new StreamFramer(), concatBytes(PONG, OPTIONS_PING)))).toEqual([
      'pong',
      asMessage(OPTIONS_PING),
    ]);
    expect(summary(feed(new StreamFramer(), [PONG, OPTIONS_PING]))).toEqual([
      'pong',
      asMessage(OPTIONS_PING),
    ]);
  });

  it('keep-alives between and around messages keep their place', () => {
    const chunks = [PING, INVITE, PING, OK, PONG, REGISTER, PING];
    const expected = [
      'ping',
      asMessage(INVITE),
      'ping',
      asMessage(OK),
      'pong',
      asMessage(REGISTER),
      'ping',
    ];
    expect(summary(feed(new StreamFramer(), chunks))).toEqual(expected);
    expect(summary(push(new StreamFramer(), concatBytes(...chunks)))).toEqual(expected);
  });

  it('a ping right after a message body, in the same chunk', () => {
    const items = push(new StreamFramer(), concatBytes(NOTIFY, PING));
    expect(summary(items)).toEqual([asMessage(NOTIFY), 'ping']);
  });

  it('repeated pings are each reported', () => {
    const items = feed(new StreamFramer(), [PING, PING, PING]);
    expect(summary(items)).toEqual(['ping', 'ping', 'ping']);
  });
});

describe('StreamFramer: limits and framing errors', () => {
  it('a header section over maxHeaderBytes throws 513 SIP_ERR_PARSE_TOO_LARGE', () => {
    const big = request([`X-Pad: ${'a'.repeat(2000)}`, 'Content-Length: 0']);
    const framer = new StreamFramer({ maxHeaderBytes: 1024, maxBodyBytes: 1 << 20 });
    expectSipError(() => push(framer, big), 513, TOO_LARGE);
  });

  it('an endless header section is refused before it grows far past maxHeaderBytes', () => {
    const limit = 1024;
    const framer = new StreamFramer({ maxHeaderBytes: limit, maxBodyBytes: 1 << 20 });
    let pushed = 0;
    const error = caught(() => {
      push(framer, utf8('INVITE sip:bob@example.com SIP/2.0\r\n'));
      for (let i = 0; i < 1000; i++) {
        const line = utf8(`X-Line-${i}: ${'v'.repeat(40)}\r\n`);
        pushed += line.length;
        push(framer, line);
      }
    });
    expect(error).toBeInstanceOf(SipParseError);
    expect((error as SipParseError).status).toBe(513);
    expect((error as SipParseError).code).toBe(TOO_LARGE);
    expect(pushed).toBeLessThanOrEqual(2 * limit);
  });

  it('a header section well under maxHeaderBytes passes', () => {
    const msg = request(['Content-Length: 0']);
    expect(msg.length).toBeLessThan(700);
    const framer = new StreamFramer({ maxHeaderBytes: 1024, maxBodyBytes: 16 });
    expect(summary(push(framer, msg))).toEqual([asMessage(msg)]);
  });

  it('a body over maxBodyBytes throws 513 as soon as the header section is complete', () => {
    const head = request(['Content-Type: text/plain', 'Content-Length: 5000']);
    const framer = new StreamFramer({ maxHeaderBytes: 65536, maxBodyBytes: 1000 });
    expectSipError(() => push(framer, head), 513, TOO_LARGE);
  });

  it('a body over maxBodyBytes throws 513 when the whole message arrives at once', () => {
    const msg = request(['Content-Type: text/plain', 'Content-Length: 1001'], 'x'.repeat(1001));
    const framer = new StreamFramer({ maxHeaderBytes: 65536, maxBodyBytes: 1000 });
    expectSipError(() => push(framer, msg), 513, TOO_LARGE);
  });

  it('a body of exactly maxBodyBytes passes', () => {
    const msg = request(['Content-Type: text/plain', 'Content-Length: 1000'], 'x'.repeat(1000));
    const framer = new StreamFramer({ maxHeaderBytes: 65536, maxBodyBytes: 1000 });
    const items = push(framer, msg);
    expect(summary(items)).toEqual([asMessage(msg)]);
    expect((items[0] as { message: SipMessage }).message.body).toHaveLength(1000);
  });

  it('a stream message without Content-Length is an error (400)', () => {
    const msg = request(['Content-Type: text/plain'], 'no length here');
    const e = expectSipError(() => push(new StreamFramer(), msg), 400);
    expect(['SIP_ERR_PARSE_MISSING_HEADER', 'SIP_ERR_PARSE_CONTENT_LENGTH']).toContain(e.code);
  });

  it('a stream message without Content-Length is an error even with no body', () => {
    const msg = request([]);
    expectSipError(() => push(new StreamFramer(), msg), 400);
  });

  it.each(['-1', 'abc', '12abc', '', '1 2'])(
    'a malformed Content-Length (%j) is an error (400 SIP_ERR_PARSE_CONTENT_LENGTH)',
    (value) => {
      const msg = request([`Content-Length: ${value}`]);
      expectSipError(() => push(new StreamFramer(), msg), 400, 'SIP_ERR_PARSE_CONTENT_LENGTH');
    },
  );

  it('default limits accept typical traffic', () => {
    const framer = new StreamFramer();
    expect(summary(feed(framer, TYPICAL))).toEqual(TYPICAL.map(asMessage));
  });

  it('default maxHeaderBytes is 65,536', () => {
    const big = request([`X-Pad: ${'a'.repeat(70000)}`, 'Content-Length: 0']);
    expectSipError(() => push(new StreamFramer(), big), 513, TOO_LARGE);
  });
});

describe('parseMessage limits (datagrams)', () => {
  it('a header section over maxHeaderBytes throws 513', () => {
    const msg = request([`X-Pad: ${'a'.repeat(2000)}`, 'Content-Length: 0']);
    expectSipError(() => parseMessage(msg, { maxHeaderBytes: 1024 }), 513, TOO_LARGE);
    expect(parseMessage(msg).header('X-Pad')).toHaveLength(2000);
  });

  it('a body over maxBodyBytes throws 513, with or without Content-Length', () => {
    const withLength = request(['Content-Length: 20'], 'y'.repeat(20));
    const withoutLength = request([], 'y'.repeat(20));
    expectSipError(() => parseMessage(withLength, { maxBodyBytes: 10 }), 513, TOO_LARGE);
    expectSipError(() => parseMessage(withoutLength, { maxBodyBytes: 10 }), 513, TOO_LARGE);
    expect(parseMessage(withLength, { maxBodyBytes: 20 }).body).toHaveLength(20);
    expect(parseMessage(withoutLength, { maxBodyBytes: 20 }).body).toHaveLength(20);
  });

  it('the default maxHeaderBytes is 65,536', () => {
    const msg = request([`X-Pad: ${'a'.repeat(70000)}`, 'Content-Length: 0']);
    expectSipError(() => parseMessage(msg), 513, TOO_LARGE);
  });

  it('input ending inside a header line is SIP_ERR_PARSE_INCOMPLETE', () => {
    const msg = request(['Content-Length: 0']);
    // cut inside "Content-Length: 0", before the line's CRLF
    const cut = msg.subarray(0, headerSectionEnd(msg) - 10);
    expect(fromUtf8(cut).endsWith('Content-Len')).toBe(true);
    expectSipError(() => parseMessage(cut), 400, 'SIP_ERR_PARSE_INCOMPLETE');
    expectSipError(() => parseMessage(fromUtf8(cut)), 400, 'SIP_ERR_PARSE_INCOMPLETE');
  });
});

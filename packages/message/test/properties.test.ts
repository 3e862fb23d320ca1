// Property-based tests for the parser, the serializer and the stream framer.
// Every property is bounded (numRuns and a per-test timeout) so that the whole
// file runs in well under 20 seconds.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMessage, StreamFramer, serialize, validateMessage } from '../src/index.ts';
import {
  asRequest,
  asResponse,
  bytesView,
  concatBytes,
  expectBytes,
  expectParseErrorShape,
  fixture,
  fixtureNames,
  type SipMessage,
  touchAll,
  utf8,
} from './helpers.ts';

const TIMEOUT = { timeout: 20_000 };
// a single parse of a few kilobytes must never take anything like this long
const PER_INPUT_MS = 1_000;

/** Parses and reads everything; only SipParseError may escape, and only as a value. */
function exercise(input: Uint8Array | string): SipMessage | undefined {
  const started = performance.now();
  let msg: SipMessage | undefined;
  try {
    msg = parseMessage(input);
  } catch (error) {
    expectParseErrorShape(error);
  }
  if (msg) touchAll(msg);
  expect(performance.now() - started).toBeLessThan(PER_INPUT_MS);
  return msg;
}

// ---------------------------------------------------------------------------
// (a) arbitrary input
// ---------------------------------------------------------------------------

const SIP_ALPHABET = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ...' \t:;,<>"\\%@[]=/?.-_*+!~\'`()&$#{}|^',
  '\r\n',
  '\r\n ',
  '\r\n\r\n',
  '\n',
  '\r',
  '\u0000',
  'é',
  '€',
  'SIP/2.0',
  'sip:',
  'sips:',
  'tel:',
  'Via: ',
  'v:',
  'From: ',
  'To: ',
  'Call-ID: ',
  'CSeq: ',
  'Contact: ',
  'Content-Length: ',
  'l:',
  'Content-Type: ',
  'Max-Forwards: ',
  ';branch=z9hG4bK',
  ';tag=',
  ';received=',
  ';rport',
  ';lr',
  ';q=',
  ';expires=',
  '[2001:db8::1]',
  ':5060',
  '4294967296',
  '-1',
  '*',
];

const sipish = fc
  .array(fc.constantFrom(...SIP_ALPHABET), { maxLength: 400 })
  .map((parts) => parts.join(''));

const START_LINES = [
  'INVITE sip:bob@example.com SIP/2.0',
  'REGISTER sips:example.com SIP/2.0',
  'OPTIONS tel:+15551234 SIP/2.0',
  'ACK sip:[2001:db8::1]:5060;transport=tcp SIP/2.0',
  'SIP/2.0 200 OK',
  'SIP/2.0 401 Unauthorized',
  'SIP/2.0 100 ',
];

describe('(a) arbitrary input never throws anything but SipParseError', () => {
  it('random byte arrays up to 4 KB', TIMEOUT, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        exercise(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('a valid start line followed by random bytes', TIMEOUT, () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...START_LINES),
        fc.uint8Array({ maxLength: 2048 }),
        (line, rest) => {
          exercise(concatBytes(utf8(`${line}\r\n`), rest));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('SIP-looking text built from SIP syntax fragments (string and byte input)', TIMEOUT, () => {
    fc.assert(
      fc.property(fc.constantFrom(...START_LINES), sipish, fc.boolean(), (line, rest, asText) => {
        const text = `${line}\r\n${rest}`;
        exercise(asText ? text : utf8(text));
      }),
      { numRuns: 1500 },
    );
  });

  it('random strings of any code points', TIMEOUT, () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (text) => {
        exercise(text);
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------
// (b) mutations of real messages
// ---------------------------------------------------------------------------

const CORPUS: { name: string; bytes: Uint8Array }[] = [
  ...fixtureNames('torture/valid', '.dat').map((name) => ({
    name: `torture/${name}`,
    bytes: fixture(`torture/valid/${name}.dat`),
  })),
  ...fixtureNames('typical', '.sip').map((name) => ({
    name: `typical/${name}`,
    bytes: fixture(`typical/${name}.sip`),
  })),
  ...fixtureNames('rfc5118', '.sip')
    .filter((name) => name !== 'ipv6-bad-request-uri')
    .map((name) => ({ name: `rfc5118/${name}`, bytes: fixture(`rfc5118/${name}.sip`) })),
];

const INTERESTING_BYTES = [
  ...':;,<>"\\%@[]= /?*'.split('').map((c) => c.charCodeAt(0)),
  0x0d,
  0x0a,
  0x09,
  0x00,
  0x7f,
  0x80,
  0xff,
  0x30,
  0x39,
];

type Mutation =
  | { op: 'flip'; at: number; mask: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; length: number }
  | { op: 'duplicate-line'; line: number }
  | { op: 'drop-line'; line: number }
  | { op: 'bare-lf'; line: number }
  | { op: 'truncate'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    op: fc.constant('flip' as const),
    at: fc.nat(),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    op: fc.constant('set' as const),
    at: fc.nat(),
    byte: fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.integer({ min: 0, max: 255 })),
  }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 16 }),
      fc.constantFrom(...SIP_ALPHABET).map((s) => utf8(s)),
    ),
  }),
  fc.record({
    op: fc.constant('delete' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({ op: fc.constant('duplicate-line' as const), line: fc.nat() }),
  fc.record({ op: fc.constant('drop-line' as const), line: fc.nat() }),
  fc.record({ op: fc.constant('bare-lf' as const), line: fc.nat() }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

/** Offsets just past each LF, plus 0: the starts of lines. */
function lineStarts(bytes: Uint8Array): number[] {
  const starts = [0];
  for (let i = 0; i < bytes.length; i++)
    if (bytes[i] === 10 && i + 1 < bytes.length) starts.push(i + 1);
  return starts;
}

function lineEnd(bytes: Uint8Array, start: number): number {
  const lf = bytes.indexOf(10, start);
  return lf < 0 ? bytes.length : lf + 1;
}

function applyMutation(bytes: Uint8Array, m: Mutation): Uint8Array {
  const n = bytes.length;
  switch (m.op) {
    case 'flip':
    case 'set': {
      if (n === 0) return bytes;
      const out = bytes.slice();
      const at = m.at % n;
      out[at] = m.op === 'flip' ? out[at] ^ m.mask : m.byte;
      return out;
    }
    case 'insert': {
      const at = m.at % (n + 1);
      return concatBytes(bytes.subarray(0, at), m.bytes, bytes.subarray(at));
    }
    case 'delete': {
      if (n === 0) return bytes;
      const at = m.at % n;
      return concatBytes(bytes.subarray(0, at), bytes.subarray(Math.min(n, at + m.length)));
    }
    case 'truncate':
      return bytes.subarray(0, m.at % (n + 1));
    case 'duplicate-line':
    case 'drop-line':
    case 'bare-lf': {
      const starts = lineStarts(bytes);
      const start = starts[m.line % starts.length];
      const end = lineEnd(bytes, start);
      if (m.op === 'duplicate-line') {
        return concatBytes(bytes.subarray(0, end), bytes.subarray(start, end), bytes.subarray(end));
      }
      if (m.op === 'drop-line') return concatBytes(bytes.subarray(0, start), bytes.subarray(end));
      if (end >= 2 && bytes[end - 1] === 10 && bytes[end - 2] === 13) {
        return concatBytes(bytes.subarray(0, end - 2), bytes.subarray(end - 1));
      }
      return bytes;
    }
  }
}

describe('(b) mutated real messages', () => {
  it('corpus sanity: every seed message parses and round-trips', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(13 + 5);
    for (const { name, bytes } of CORPUS) {
      const msg = exercise(bytes);
      expect(msg, name).toBeDefined();
      // all seeds round-trip whole, except dblreq whose trailing octets are not part of the message
      const out = serialize(msg as SipMessage);
      expectBytes(out, name === 'torture/dblreq' ? bytes.subarray(0, out.length) : bytes);
    }
  });

  it(
    'parse, every accessor, validateMessage and serialize only ever throw SipParseError',
    TIMEOUT,
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: CORPUS.length - 1 }),
          fc.array(mutationArb, { minLength: 1, maxLength: 6 }),
          (index, mutations) => {
            const input = mutations.reduce(applyMutation, CORPUS[index].bytes);
            const msg = exercise(input);
            if (!msg) return;
            // an unchanged parsed message writes back the bytes it came from
            // (octets past Content-Length are not part of it)
            const out = serialize(msg);
            expect(out.length).toBeLessThanOrEqual(input.length);
            expect(bytesView(out)).toBe(bytesView(input.subarray(0, out.length)));
          },
        ),
        { numRuns: 2000 },
      );
    },
  );
});

// ---------------------------------------------------------------------------
// (c) parse -> serialize -> parse is stable for generated valid messages
// ---------------------------------------------------------------------------

const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~";
const token = (maxLength = 16) =>
  fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength });
const upperToken = fc.string({
  unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'),
  minLength: 1,
  maxLength: 12,
});
const METHODS = [
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'OPTIONS',
  'REGISTER',
  'SUBSCRIBE',
  'NOTIFY',
  'MESSAGE',
  'INFO',
  'PRACK',
  'UPDATE',
  'REFER',
  'PUBLISH',
];
const methodArb = fc.oneof(fc.constantFrom(...METHODS), upperToken);
const userArb = fc.string({
  unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'"),
  minLength: 1,
  maxLength: 16,
});
const hostArb = fc.oneof(
  fc.domain(),
  fc.ipV4(),
  fc.ipV6().map((address) => `[${address}]`),
);
const portArb = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const PRINTABLE = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));
// header values: any printable text, including UTF-8, never CR or LF
const valueArb = fc
  .string({
    unit: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...PRINTABLE) },
      { weight: 1, arbitrary: fc.constantFrom('é', 'ü', 'ß', '€', '日', '本', 'Ж', '😀') },
    ),
    maxLength: 60,
  })
  .map((s) => s.trim());
const displayNameArb = fc.option(
  fc.oneof(
    fc.array(token(10), { minLength: 1, maxLength: 3 }).map((words) => words.join(' ')),
    fc
      .string({ unit: fc.constantFrom(...PRINTABLE), maxLength: 20 })
      .map((s) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`),
  ),
  { nil: undefined },
);
const caseArb = fc.constantFrom(
  (s: string) => s,
  (s: string) => s.toLowerCase(),
  (s: string) => s.toUpperCase(),
);

interface ViaSpec {
  transport: string;
  host: string;
  port: number | undefined;
  branch: string;
  rport: boolean;
  received: string | undefined;
}

const viaArb: fc.Arbitrary<ViaSpec> = fc.record({
  transport: fc.constantFrom('UDP', 'TCP', 'TLS', 'SCTP', 'WS', 'WSS'),
  host: hostArb,
  port: portArb,
  branch: token(24).map((t) => `z9hG4bK${t}`),
  rport: fc.boolean(),
  received: fc.option(fc.ipV4(), { nil: undefined }),
});

interface MessageSpec {
  isRequest: boolean;
  method: string;
  status: number;
  reason: string;
  ruriUser: string;
  ruriHost: string;
  ruriPort: number | undefined;
  vias: ViaSpec[];
  viaOneLine: boolean;
  fromDisplay: string | undefined;
  fromUser: string;
  fromHost: string;
  fromTag: string;
  toTag: string | undefined;
  callId: string;
  cseq: number;
  cseqMethod: string;
  maxForwards: number;
  extra: [string, string][];
  body: Uint8Array;
  withContentLength: boolean;
  compact: boolean[];
  nameCase: (s: string) => string;
}

const specArb = (forceContentLength: boolean): fc.Arbitrary<MessageSpec> =>
  fc.record({
    isRequest: fc.boolean(),
    method: methodArb,
    status: fc.integer({ min: 100, max: 699 }),
    reason: valueArb,
    ruriUser: userArb,
    ruriHost: hostArb,
    ruriPort: portArb,
    vias: fc.array(viaArb, { minLength: 1, maxLength: 4 }),
    viaOneLine: fc.boolean(),
    fromDisplay: displayNameArb,
    fromUser: userArb,
    fromHost: hostArb,
    fromTag: token(),
    toTag: fc.option(token(), { nil: undefined }),
    callId: fc.oneof(
      token(32),
      fc.tuple(token(24), token(24)).map(([a, b]) => `${a}@${b}`),
    ),
    cseq: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    cseqMethod: methodArb,
    maxForwards: fc.integer({ min: 0, max: 255 }),
    extra: fc.uniqueArray(
      fc.tuple(
        token(20).map((t) => `X-${t}`),
        valueArb,
      ),
      {
        maxLength: 5,
        selector: ([name]) => name.toLowerCase(),
      },
    ),
    body: fc.uint8Array({ maxLength: 300 }),
    withContentLength: forceContentLength ? fc.constant(true) : fc.boolean(),
    compact: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
    nameCase: caseArb,
  });

function viaText(v: ViaSpec): string {
  let text = `SIP/2.0/${v.transport} ${v.host}${v.port === undefined ? '' : `:${v.port}`};branch=${v.branch}`;
  if (v.rport) text += ';rport';
  if (v.received !== undefined) text += `;received=${v.received}`;
  return text;
}

function buildMessage(s: MessageSpec): Uint8Array {
  const name = (long: string, short: string, i: number) =>
    s.compact[i] ? short : s.nameCase(long);
  const lines: string[] = [];
  const cseqMethod = s.isRequest ? s.method : s.cseqMethod;
  if (s.isRequest) {
    const port = s.ruriPort === undefined ? '' : `:${s.ruriPort}`;
    lines.push(`${s.method} sip:${s.ruriUser}@${s.ruriHost}${port} SIP/2.0`);
  } else {
    lines.push(`SIP/2.0 ${s.status} ${s.reason}`);
  }
  if (s.viaOneLine) {
    lines.push(`${name('Via', 'v', 0)}: ${s.vias.map(viaText).join(', ')}`);
  } else {
    for (const v of s.vias) lines.push(`${name('Via', 'v', 0)}: ${viaText(v)}`);
  }
  const display = s.fromDisplay === undefined ? '' : `${s.fromDisplay} `;
  lines.push(
    `${name('From', 'f', 1)}: ${display}<sip:${s.fromUser}@${s.fromHost}>;tag=${s.fromTag}`,
  );
  lines.push(
    `${name('To', 't', 2)}: <sip:${s.ruriUser}@${s.ruriHost}>${s.toTag === undefined ? '' : `;tag=${s.toTag}`}`,
  );
  lines.push(`${name('Call-ID', 'i', 3)}: ${s.callId}`);
  lines.push(`${s.nameCase('CSeq')}: ${s.cseq} ${cseqMethod}`);
  if (s.isRequest) lines.push(`${s.nameCase('Max-Forwards')}: ${s.maxForwards}`);
  for (const [n, v] of s.extra) lines.push(`${n}: ${v}`);
  if (s.body.length > 0) lines.push(`${name('Content-Type', 'c', 4)}: application/octet-stream`);
  if (s.withContentLength) lines.push(`${name('Content-Length', 'l', 5)}: ${s.body.length}`);
  return concatBytes(utf8(`${lines.join('\r\n')}\r\n\r\n`), s.body);
}

function checkAgainstSpec(msg: SipMessage, s: MessageSpec): void {
  expect(msg.isRequest).toBe(s.isRequest);
  if (s.isRequest) {
    const req = asRequest(msg);
    expect(req.method).toBe(s.method);
    expect(req.uri.user).toBe(s.ruriUser);
    expect(req.uri.host).toBe(s.ruriHost);
    expect(req.uri.port).toBe(s.ruriPort);
    expect(msg.maxForwards).toBe(s.maxForwards);
    expect(msg.cseq.method).toBe(s.method);
  } else {
    const res = asResponse(msg);
    expect(res.status).toBe(s.status);
    expect(res.reason).toBe(s.reason);
    expect(msg.cseq.method).toBe(s.cseqMethod);
  }
  expect(msg.callId).toBe(s.callId);
  expect(msg.cseq.seq).toBe(s.cseq);
  expect(msg.via.map((v) => v.branch)).toEqual(s.vias.map((v) => v.branch));
  expect(msg.via.map((v) => v.host)).toEqual(s.vias.map((v) => v.host));
  expect(msg.via.map((v) => v.port)).toEqual(s.vias.map((v) => v.port));
  expect(msg.via.map((v) => v.transport.toUpperCase())).toEqual(s.vias.map((v) => v.transport));
  expect(msg.via.map((v) => v.received)).toEqual(s.vias.map((v) => v.received));
  expect(msg.from.tag).toBe(s.fromTag);
  expect(msg.from.uri.user).toBe(s.fromUser);
  expect(msg.from.uri.host).toBe(s.fromHost);
  expect(msg.to.tag).toBe(s.toTag);
  for (const [n, v] of s.extra) {
    expect(msg.header(n)).toBe(v);
    expect(msg.header(n.toUpperCase())).toBe(v);
  }
  expectBytes(msg.body, s.body);
  expect(msg.contentLength).toBe(s.withContentLength ? s.body.length : undefined);
}

function checkSameFields(a: SipMessage, b: SipMessage): void {
  expect(b.isRequest).toBe(a.isRequest);
  if (a.isRequest) {
    expect(asRequest(b).method).toBe(asRequest(a).method);
  } else {
    expect(asResponse(b).status).toBe(asResponse(a).status);
    expect(asResponse(b).reason).toBe(asResponse(a).reason);
  }
  expect(b.callId).toBe(a.callId);
  expect(b.cseq.seq).toBe(a.cseq.seq);
  expect(b.cseq.method).toBe(a.cseq.method);
  expect(b.via.map((v) => v.branch)).toEqual(a.via.map((v) => v.branch));
  expect(b.from.tag).toBe(a.from.tag);
  expect(b.from.displayName).toBe(a.from.displayName);
  expect(b.to.tag).toBe(a.to.tag);
  expect(b.headerNames()).toEqual(a.headerNames());
  expectBytes(b.body, a.body);
}

describe('(c) generated valid messages', () => {
  it('parse -> serialize -> parse is stable and reads back every component', TIMEOUT, () => {
    fc.assert(
      fc.property(specArb(false), (spec) => {
        const bytes = buildMessage(spec);
        const first = parseMessage(bytes);
        checkAgainstSpec(first, spec);
        expect(validateMessage(first)).toBe(first);
        const written = serialize(first);
        expectBytes(written, bytes);
        const second = parseMessage(written);
        checkSameFields(first, second);
        checkAgainstSpec(second, spec);
        expectBytes(serialize(second), written);
      }),
      { numRuns: 500 },
    );
  });

  it('the same holds when the message is given as a string', TIMEOUT, () => {
    fc.assert(
      fc.property(specArb(true), (spec) => {
        // keep to UTF-8 text bodies so that the string is an exact rendering
        const textSpec = {
          ...spec,
          body: utf8(bytesView(spec.body).replace(/[^\x20-\x7e]/g, '.')),
        };
        const bytes = buildMessage(textSpec);
        const msg = parseMessage(new TextDecoder().decode(bytes));
        checkAgainstSpec(msg, textSpec);
        expectBytes(serialize(msg), bytes);
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------
// (d) StreamFramer over randomly chunked streams
// ---------------------------------------------------------------------------

type Expected = { type: 'message'; bytes: string } | { type: 'ping' } | { type: 'pong' };

const KEEPALIVE = { none: '', pong: '\r\n', ping: '\r\n\r\n' } as const;
type KeepAlive = keyof typeof KEEPALIVE;

function describeItems(items: Iterable<{ type: string; message?: unknown }>): Expected[] {
  const out: Expected[] = [];
  for (const item of items) {
    if (item.type === 'message') {
      expect(item.message).toBeDefined();
      out.push({ type: 'message', bytes: bytesView(serialize(item.message as SipMessage)) });
    } else {
      expect(['ping', 'pong']).toContain(item.type);
      out.push({ type: item.type as 'ping' | 'pong' });
    }
  }
  return out;
}

describe('(d) StreamFramer', () => {
  it(
    'yields exactly the messages and keep-alives, in order, whatever the chunking',
    TIMEOUT,
    () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.tuple(fc.constantFrom<KeepAlive>('none', 'none', 'pong', 'ping'), specArb(true)),
            { minLength: 1, maxLength: 5 },
          ),
          fc.boolean(),
          fc.array(fc.nat(), { maxLength: 16 }),
          (entries, trailingPing, cuts) => {
            const pieces: Uint8Array[] = [];
            const expected: Expected[] = [];
            // a keep-alive is sent with one write: chunk boundaries never fall inside it
            const atomic: [number, number][] = [];
            let length = 0;
            const add = (bytes: Uint8Array, keepAlive: boolean) => {
              if (keepAlive) atomic.push([length, length + bytes.length]);
              pieces.push(bytes);
              length += bytes.length;
            };
            for (const [keepAlive, spec] of entries) {
              if (keepAlive !== 'none') {
                add(utf8(KEEPALIVE[keepAlive]), true);
                expected.push({ type: keepAlive });
              }
              const bytes = buildMessage(spec);
              add(bytes, false);
              expected.push({ type: 'message', bytes: bytesView(bytes) });
            }
            if (trailingPing) {
              add(utf8(KEEPALIVE.ping), true);
              expected.push({ type: 'ping' });
            }
            const stream = concatBytes(...pieces);
            const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))]
              .filter((p) => !atomic.some(([from, to]) => p > from && p < to))
              .sort((a, b) => a - b);
            const framer = new StreamFramer();
            const actual: Expected[] = [];
            let previous = 0;
            for (const point of [...points, stream.length]) {
              actual.push(...describeItems(framer.push(stream.subarray(previous, point))));
              previous = point;
            }
            expect(actual).toEqual(expected);
          },
        ),
        { numRuns: 300 },
      );
    },
  );

  it('byte-by-byte feeding yields the same items', TIMEOUT, () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom<KeepAlive>('none', 'ping'), specArb(true)), {
          minLength: 1,
          maxLength: 3,
        }),
        (entries) => {
          const expected: Expected[] = [];
          const pieces: Uint8Array[] = [];
          for (const [keepAlive, spec] of entries) {
            if (keepAlive === 'ping') {
              pieces.push(utf8(KEEPALIVE.ping));
              expected.push({ type: 'ping' });
            }
            const bytes = buildMessage(spec);
            pieces.push(bytes);
            expected.push({ type: 'message', bytes: bytesView(bytes) });
          }
          const framer = new StreamFramer();
          const actual: Expected[] = [];
          for (const piece of pieces) {
            if (bytesView(piece) === KEEPALIVE.ping) {
              // keep-alives arrive whole
              actual.push(...describeItems(framer.push(piece)));
              continue;
            }
            for (let i = 0; i < piece.length; i++) {
              actual.push(...describeItems(framer.push(piece.subarray(i, i + 1))));
            }
          }
          expect(actual).toEqual(expected);
        },
      ),
      { numRuns: 40 },
    );
  });
});

// ---------------------------------------------------------------------------
// Pathological inputs: bounded time, only SipParseError.
// ---------------------------------------------------------------------------

function around(headerLine: string): string {
  return [
    'INVITE sip:bob@example.com SIP/2.0',
    'Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKpath',
    'From: <sip:alice@example.com>;tag=1',
    'To: <sip:bob@example.com>',
    'Call-ID: path@example.com',
    'CSeq: 1 INVITE',
    'Max-Forwards: 70',
    headerLine,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

const PATHOLOGICAL: [string, string][] = [
  ['semicolons in Via', around(`Via: SIP/2.0/UDP h${';'.repeat(30000)}`)],
  ['empty Via params', around(`Via: SIP/2.0/UDP h${';a'.repeat(15000)}`)],
  ['commas in Via', around(`Via: ${'SIP/2.0/UDP h;branch=z9hG4bKx,'.repeat(1500)}SIP/2.0/UDP h`)],
  ['open quotes in From', around(`From: ${'"'.repeat(30000)}<sip:a@b>`)],
  ['escaped quotes in From', around(`From: "${'\\"'.repeat(15000)}" <sip:a@b>;tag=1`)],
  ['backslashes at the end of a quoted string', around(`From: "${'\\'.repeat(30001)}`)],
  ['open angle brackets in To', around(`To: ${'<'.repeat(30000)}`)],
  ['many Contact values', around(`Contact: ${'<sip:a@b>,'.repeat(5000)}<sip:a@b>`)],
  ['many URI params in Contact', around(`Contact: <sip:a@b${';p'.repeat(15000)}>`)],
  ['percent signs in a URI user', around(`Contact: <sip:${'%'.repeat(30000)}@b>`)],
  ['escapes in a URI user', around(`Contact: <sip:${'%41'.repeat(10000)}@b>`)],
  ['long digits in CSeq', around(`X-Pad: x\r\nCSeq: ${'9'.repeat(30000)} INVITE`)],
  ['long digits in Max-Forwards', around(`Max-Forwards: ${'1'.repeat(30000)}`)],
  ['spaces before a value', around(`X-Spaces: ${' '.repeat(30000)}x`)],
  ['folded continuation lines', around(`X-Fold: a${'\r\n b'.repeat(10000)}`)],
  ['many header lines', around('X-Many: y\r\n'.repeat(5000).slice(0, -2))],
  ['many brackets in a Request-URI host', `INVITE sip:a@${'['.repeat(30000)} SIP/2.0\r\n\r\n`],
  [
    'a long Request-URI',
    `INVITE sip:a@b${';x=y'.repeat(12000)} SIP/2.0\r\nContent-Length: 0\r\n\r\n`,
  ],
  ['a long reason phrase', `SIP/2.0 200 ${'OK '.repeat(15000)}\r\nContent-Length: 0\r\n\r\n`],
  ['a long Content-Type parameter list', around(`Content-Type: a/b${';p=q'.repeat(12000)}`)],
];

describe('pathological inputs', () => {
  it.each(PATHOLOGICAL)('%s: bounded time, only SipParseError', (_, text) => {
    expect(text.length).toBeLessThan(65536);
    exercise(text);
    exercise(utf8(text));
  });
});

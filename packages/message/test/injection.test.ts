import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Contact,
  createRequest,
  createResponse,
  NameAddr,
  parseMessage,
  parseUri,
  type SipRequest,
  Uri,
} from '../src/index.ts';

/**
 * RFC 3261 §7.3.1: a header field ends at CRLF (unless the next line folds it). A value an
 * application builds from user input (a display name, a Subject, a tag...) must never end
 * its header early and start another one: every way the API takes a value refuses CR and
 * LF (and a name refuses anything but a token), so the bytes on the wire hold the headers
 * the application set and no more.
 */
const EVIL = [
  'x\r\nX-Evil: 1',
  'x\nX-Evil: 1',
  'x\rX-Evil: 1',
  'x\r\n\r\nINVITE sip:evil SIP/2.0',
  'x\r\n X-Folded: 1',
];

function base(): SipRequest {
  return createRequest({
    method: 'MESSAGE',
    uri: 'sip:bob@example.com',
    from: '<sip:alice@example.com>;tag=1',
    to: '<sip:bob@example.com>',
    callId: 'inj-1',
    cseq: 1,
  });
}

/** The header lines of a message as sent. */
function lines(msg: SipRequest): string[] {
  const text = new TextDecoder().decode(msg.serialize());
  return text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
}

const ENTRY_POINTS: [string, (r: SipRequest, v: string) => unknown][] = [
  ['setHeader value', (r, v) => r.setHeader('Subject', v)],
  ['addHeader value', (r, v) => r.addHeader('Subject', v)],
  ['setHeader name', (r, v) => r.setHeader(`X-${v}`, 'ok')],
  ['a list of values', (r, v) => r.setHeader('Supported', ['timer', v])],
  [
    'a NameAddr display name',
    (r, v) =>
      r.setHeader(
        'P-Asserted-Identity',
        new NameAddr(parseUri('sip:a@example.com'), { displayName: v }),
      ),
  ],
  ['a cloned From display name', (r, v) => r.setHeader('From', r.from.clone({ displayName: v }))],
  ['a From parameter (tag)', (r, v) => r.from.params.set('tag', v)],
  ['a To parameter name', (r, v) => r.to.params.set(v, null)],
  ['a Request-URI parameter', (r, v) => r.uri.params.set('p', v)],
  ['a Request-URI header (?Subject=)', (r, v) => r.uri.headers.set('Subject', v)],
  [
    'a URI user',
    (r, v) =>
      r.setHeader('Contact', new Contact(new Uri({ scheme: 'sip', user: v, host: 'example.com' }))),
  ],
  [
    'a URI host',
    (r, v) => {
      r.uri = new Uri({ scheme: 'sip', host: `h${v}` });
    },
  ],
  ['a Contact string', (r, v) => r.setHeader('Contact', `<sip:a@example.com>${v}`)],
  [
    'createRequest Call-ID',
    (_r, v) =>
      createRequest({
        method: 'MESSAGE',
        uri: 'sip:b@example.com',
        from: '<sip:a@example.com>;tag=1',
        to: '<sip:b@example.com>',
        callId: v,
        cseq: 1,
      }),
  ],
  [
    'createRequest From',
    (_r, v) =>
      createRequest({
        method: 'MESSAGE',
        uri: 'sip:b@example.com',
        from: `<sip:a@example.com>;tag=1${v}`,
        to: '<sip:b@example.com>',
        callId: 'c',
        cseq: 1,
      }),
  ],
  [
    'createRequest method',
    (_r, v) =>
      createRequest({
        method: `M${v}`,
        uri: 'sip:b@example.com',
        from: '<sip:a@example.com>;tag=1',
        to: '<sip:b@example.com>',
        callId: 'c',
        cseq: 1,
      }),
  ],
  [
    'createRequest Request-URI',
    (_r, v) =>
      createRequest({
        method: 'MESSAGE',
        uri: `sip:b@example.com${v}`,
        from: '<sip:a@example.com>;tag=1',
        to: '<sip:b@example.com>',
        callId: 'c',
        cseq: 1,
      }),
  ],
  [
    'createRequest extra headers',
    (_r, v) =>
      createRequest({
        method: 'MESSAGE',
        uri: 'sip:b@example.com',
        from: '<sip:a@example.com>;tag=1',
        to: '<sip:b@example.com>',
        callId: 'c',
        cseq: 1,
        headers: { Subject: v },
      }),
  ],
  ['createResponse reason phrase', (r, v) => createResponse(r, 200, v)],
  [
    'a response reason set later',
    (r, v) => {
      createResponse(r, 200).reason = v;
    },
  ],
];

describe('no CRLF or second header through the API (RFC 3261 §7.3.1)', () => {
  describe.each(ENTRY_POINTS)('%s', (_name, set) => {
    it.each(EVIL)('refuses %j and leaves the message as it was', (value) => {
      const r = base();
      const before = lines(r);
      expect(() => set(r, value)).toThrow();
      expect(lines(r)).toEqual(before);
      expect(new TextDecoder().decode(r.serialize())).not.toMatch(/X-Evil|X-Folded|sip:evil/);
    });
  });

  it('property: whatever text goes into Subject, the message has the same header lines, or the call throws', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', ' ', ':', ';', '\r', '\n', '\t', 'X', '-', '\0') }),
        (value) => {
          const r = base();
          const count = lines(r).length;
          let threw = false;
          try {
            r.setHeader('Subject', value);
          } catch {
            threw = true;
          }
          if (/[\r\n]/.test(value)) expect(threw).toBe(true);
          const out = lines(r);
          expect(out.length).toBe(threw ? count : count + 1);
          // What is sent parses back to the same headers.
          const again = parseMessage(r.serialize()) as SipRequest;
          expect(again.headerNames()).toEqual(r.headerNames());
        },
      ),
      { numRuns: 300 },
    );
  });
});

// RFC 5118 (SIP Torture Test Messages for IPv6): the message layer keeps IPv6
// references with their brackets, reads ports after them, and rejects a
// reference written without brackets. The fixtures in fixtures/rfc5118/ are
// messages written for this suite, one per case the RFC describes.
import { describe, expect, it } from 'vitest';
import { parseMessage, parseUri, serialize, validateMessage } from '../src/index.ts';
import {
  asRequest,
  asResponse,
  caught,
  expectBytes,
  expectParseErrorShape,
  expectSipError,
  fixture,
  fixtureNames,
  headerSectionEnd,
  type SipMessage,
  utf8,
} from './helpers.ts';

const load = (name: string): Uint8Array => fixture(`rfc5118/${name}.sip`);
const parse = (name: string): SipMessage => parseMessage(load(name));
const unbracket = (host: string | undefined): string | undefined =>
  host?.replace(/^\[(.*)\]$/, '$1');

describe('RFC 5118 IPv6 references', () => {
  it('4.1 IPv6 reference in the Request-URI, From, To and Contact (brackets kept)', () => {
    const msg = parse('ipv6-request-uri');
    const req = asRequest(msg);
    expect(req.method).toBe('INVITE');
    expect(req.uri.user).toBe('carol');
    expect(req.uri.host).toBe('[2001:db8::10]');
    expect(req.uri.port).toBeUndefined();
    expect(msg.from.uri.host).toBe('[2001:db8::20]');
    expect(msg.from.displayName).toBe('Dave');
    expect(msg.to.uri.host).toBe('[2001:db8::10]');
    expect(msg.contacts[0].uri.host).toBe('[2001:db8::20]');
    expect(msg.contacts[0].uri.port).toBeUndefined();
    expect(msg.via[0].host).toBe('[2001:db8::20]');
    expect(msg.via[0].port).toBeUndefined();
    expect(msg.bodyText).toContain('c=IN IP6 2001:db8::20\r\n');
    expect(validateMessage(msg)).toBe(msg);
  });

  it('4.2 an IPv6 reference without brackets in the Request-URI is rejected with 400', () => {
    const bytes = load('ipv6-bad-request-uri');
    let msg: SipMessage | undefined;
    const error = caught(() => {
      msg = parseMessage(bytes);
    });
    if (error !== undefined) {
      const e = expectParseErrorShape(error);
      expect(e.status).toBe(400);
      expect(['SIP_ERR_PARSE_URI', 'SIP_ERR_PARSE_START_LINE']).toContain(e.code);
    } else {
      const req = asRequest(msg as SipMessage);
      expectSipError(() => req.uri, 400, 'SIP_ERR_PARSE_URI');
      expectSipError(() => validateMessage(req), 400);
    }
    expectSipError(() => parseUri('sip:carol@2001:db8::10'), 400, 'SIP_ERR_PARSE_URI');
  });

  it('4.3 a port-like group inside the brackets is part of the address, not a port', () => {
    const req = asRequest(parse('ipv6-port-in-brackets'));
    expect(req.uri.host).toBe('[2001:db8::10:5070]');
    expect(req.uri.port).toBeUndefined();
  });

  it('4.4 Request-URI and Via sent-by with a port after the brackets', () => {
    const msg = parse('ipv6-via-port');
    const req = asRequest(msg);
    expect(req.uri.host).toBe('[2001:db8::10]');
    expect(req.uri.port).toBe(5070);
    expect(msg.via).toHaveLength(1);
    expect(msg.via[0].transport.toUpperCase()).toBe('TCP');
    expect(msg.via[0].host).toBe('[2001:db8::20]');
    expect(msg.via[0].port).toBe(5071);
    expect(msg.via[0].branch).toBe('z9hG4bKv6port01');
    expect(validateMessage(msg)).toBe(msg);
  });

  it('4.5 Via received parameter holding an IPv6 address in brackets', () => {
    const msg = parse('ipv6-received-brackets');
    expect(asResponse(msg).status).toBe(200);
    expect(msg.via[0].host).toBe('[2001:db8::20]');
    expect(unbracket(msg.via[0].received)).toBe('2001:db8::9:255');
    expect(msg.via[0].branch).toBe('z9hG4bKv6rcv01');
    expect(validateMessage(msg)).toBe(msg);
  });

  it('4.5 Via received parameter holding an IPv6 address without brackets', () => {
    const msg = parse('ipv6-received-plain');
    expect(unbracket(msg.via[0].received)).toBe('2001:db8::9:255');
    expect(msg.via[0].params.get('rport')).toBe('5062');
    expect(msg.via[0].branch).toBe('z9hG4bKv6rcv02');
    expect(validateMessage(msg)).toBe(msg);
  });

  it('Contact with IPv6 references and ports, in sip and sips URIs', () => {
    const msg = parse('ipv6-contact-port');
    const req = asRequest(msg);
    expect(req.uri.host).toBe('[2001:db8::1]');
    expect(req.uri.user).toBeFalsy();
    expect(msg.contacts).toHaveLength(2);
    const [first, second] = msg.contacts;
    expect(first.uri.scheme).toBe('sip');
    expect(first.uri.host).toBe('[2001:db8::30]');
    expect(first.uri.port).toBe(5072);
    expect(first.uri.params.get('transport')).toBe('tcp');
    expect(first.expires).toBe(600);
    expect(second.uri.scheme).toBe('sips');
    expect(second.uri.host).toBe('[2001:db8::31]');
    expect(second.uri.port).toBe(5073);
    expect(second.displayName).toBe('Erin (desk)');
    expect(second.q).toBe(0.5);
    expect(msg.via[0].host).toBe('[2001:db8::30]');
    expect(msg.via[0].port).toBe(5072);
    expect(validateMessage(msg)).toBe(msg);
  });

  it('4.7 multiple IPv6 and IPv4 addresses in Via, comma-separated and on separate lines', () => {
    const msg = parse('ipv6-multi-via');
    expect(msg.via).toHaveLength(4);
    expect(msg.via.map((v) => v.host)).toEqual([
      '[2001:db8::a:1]',
      '[2001:db8::b:2]',
      '192.0.2.60',
      '[2001:db8:0:0:0:0:0:c3]',
    ]);
    expect(msg.via.map((v) => v.port)).toEqual([5061, undefined, 5060, 5070]);
    expect(msg.via.map((v) => v.transport.toUpperCase())).toEqual(['TLS', 'UDP', 'UDP', 'TCP']);
    expect(msg.via.map((v) => v.branch)).toEqual([
      'z9hG4bKv6mv03',
      'z9hG4bKv6mv02',
      'z9hG4bKv6mv01',
      'z9hG4bKv6mv00',
    ]);
    expect(unbracket(msg.via[1].received)).toBe('2001:db8::b:22');
    expect(unbracket(msg.via[3].received)).toBe('2001:db8::c:33');
    expect(msg.via[2].received).toBeUndefined();
    expect(asRequest(msg).uri.port).toBe(5080);
    expect(msg.maxForwards).toBe(67);
    expect(validateMessage(msg)).toBe(msg);
  });

  it('4.9 IPv4-mapped IPv6 addresses', () => {
    const msg = parse('ipv4-mapped');
    const req = asRequest(msg);
    expect(req.uri.host).toBe('[::ffff:192.0.2.44]');
    expect(req.uri.port).toBeUndefined();
    expect(msg.via[0].host).toBe('[::ffff:192.0.2.45]');
    expect(msg.via[0].port).toBe(5060);
    expect(msg.contacts[0].uri.host).toBe('[::ffff:192.0.2.45]');
    expect(msg.contacts[0].uri.port).toBe(5060);
    expect(validateMessage(msg)).toBe(msg);
  });

  it('4.10 IPv6 references ending in a dotted IPv4 part', () => {
    const msg = parse('ipv6-embedded-ipv4');
    const req = asRequest(msg);
    expect(req.uri.host).toBe('[2001:db8::192.0.2.1]');
    expect(req.uri.user).toBeFalsy();
    expect(msg.to.uri.host).toBe('[2001:db8::192.0.2.1]');
    expect(msg.via[0].host).toBe('[2001:db8::192.0.2.2]');
    expect(msg.via[0].port).toBeUndefined();
    expect(validateMessage(msg)).toBe(msg);
  });

  it.each(fixtureNames('rfc5118', '.sip').filter((name) => name !== 'ipv6-bad-request-uri'))(
    '%s: unchanged message serializes to its own bytes',
    (name) => {
      const bytes = load(name);
      const msg = parseMessage(bytes);
      expect(headerSectionEnd(bytes)).toBeGreaterThan(0);
      expectBytes(serialize(msg), bytes);
    },
  );
});

describe('RFC 5118 IPv6 references through parseUri', () => {
  it.each([
    ['sip:[2001:db8::10]', '[2001:db8::10]', undefined],
    ['sip:alice@[2001:db8::10]:5060', '[2001:db8::10]', 5060],
    ['sips:[2001:db8::10]:5061;transport=tcp', '[2001:db8::10]', 5061],
    ['sip:[::1]:5070', '[::1]', 5070],
    ['sip:bob@[::ffff:192.0.2.10];user=ip', '[::ffff:192.0.2.10]', undefined],
    ['sip:[2001:db8::10:5070]', '[2001:db8::10:5070]', undefined],
    ['sip:[2001:db8::192.0.2.1]', '[2001:db8::192.0.2.1]', undefined],
    ['sip:[2001:db8::ab]:5', '[2001:db8::ab]', 5],
  ] as const)('%s -> host %s port %s', (text, host, port) => {
    const uri = parseUri(text);
    expect(uri.host).toBe(host);
    expect(uri.port).toBe(port);
    expect(String(uri)).toBe(text);
  });

  it.each([
    'sip:alice@2001:db8::10',
    'sip:alice@[2001:db8::10',
    'sip:alice@2001:db8::10]',
    'sip:alice@[2001:db8::10]:',
    'sip:alice@[2001:db8::10]:50x0',
    'sip:alice@[]',
    'sip:alice@[2001:db8::g]',
  ])('%s is rejected with SIP_ERR_PARSE_URI', (text) => {
    expectSipError(() => parseUri(text), 400, 'SIP_ERR_PARSE_URI');
  });

  it('a request built around an IPv6 Contact keeps the brackets when written back', () => {
    const text = [
      'OPTIONS sip:[2001:db8::10]:5070 SIP/2.0',
      'Via: SIP/2.0/UDP [2001:db8::20]:5060;branch=z9hG4bKv6rt01;rport',
      'Max-Forwards: 70',
      'From: <sip:[2001:db8::20]>;tag=a1',
      'To: <sip:[2001:db8::10]>',
      'Call-ID: rt01@[2001:db8::20]',
      'CSeq: 1 OPTIONS',
      'Contact: <sip:[2001:db8::20]:5060;ob>',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const msg = parseMessage(text);
    expect(msg.callId).toBe('rt01@[2001:db8::20]');
    expect(msg.contacts[0].uri.host).toBe('[2001:db8::20]');
    expect(msg.contacts[0].uri.params.get('ob')).toBeNull();
    expectBytes(serialize(msg), utf8(text));
  });
});

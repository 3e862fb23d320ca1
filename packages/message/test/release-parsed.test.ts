// SipMessage.releaseParsed: a received message kept for long (RFC 3261 §13.3 the INVITE an
// invite session keeps for the call) can drop the typed values read from it; they are read
// again from its bytes, equal to the first reading, and the bytes it serializes to are the same.
import { describe, expect, it } from 'vitest';
import { createRequest, parseMessage, type SipRequest } from '../src/index.ts';
import { utf8 } from './helpers.ts';

const INVITE = [
  'INVITE sip:bob@example.com;transport=udp SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK.1',
  'Max-Forwards: 70',
  'From: "Alice" <sip:alice@example.com>;tag=a1',
  'To: <sip:bob@example.com>',
  'Call-ID: release@example.com',
  'CSeq: 7 INVITE',
  'Contact: <sip:alice@192.0.2.1:5060>',
  'Record-Route: <sip:p1.example.com;lr>',
  'Content-Type: application/sdp',
  'Content-Length: 4',
  '',
  'v=0\n',
].join('\r\n');

function parsed(): SipRequest {
  return parseMessage(utf8(INVITE)) as SipRequest;
}

function readAll(m: SipRequest): unknown {
  return {
    uri: m.uri.toString(),
    via: m.via.map(String),
    from: m.from.toString(),
    fromTag: m.from.tag,
    to: m.to.toString(),
    callId: m.callId,
    cseq: [m.cseq.seq, m.cseq.method],
    contact: m.contacts.map(String),
    rr: m.getAll('Record-Route').map(String),
    type: m.contentType?.toString(),
    body: m.bodyText,
  };
}

describe('releaseParsed (RFC 3261 §13.3: the INVITE a session keeps)', () => {
  it('drops the typed values of an unchanged message; they read back equal, as fresh objects', () => {
    const m = parsed();
    const first = readAll(m);
    const from = m.from;
    const via = m.via;
    expect(m.releaseParsed()).toBe(true);
    expect(m.from).not.toBe(from);
    expect(m.via).not.toBe(via);
    expect(readAll(m)).toEqual(first);
    expect(new TextDecoder().decode(m.serialize())).toBe(INVITE);
  });

  it('keeps a value changed in place, and drops the rest; a changed or built message stays as it was', () => {
    const m = parsed();
    m.via[0]?.params.set('received', '198.51.100.7');
    const to = m.to;
    expect(m.releaseParsed()).toBe(false);
    expect(m.via[0]?.params.get('received')).toBe('198.51.100.7');
    expect(m.to).not.toBe(to);
    expect(m.toString()).toContain('branch=z9hG4bK.1;received=198.51.100.7');

    const u = parsed();
    u.uri.params.set('y', '2');
    expect(u.releaseParsed()).toBe(false);
    expect(u.startLine).toContain(';y=2');

    const h = parsed();
    h.setHeader('Subject', 'kept');
    const before = h.toString();
    h.releaseParsed();
    expect(h.header('Subject')).toBe('kept');
    expect(h.from.tag).toBe('a1');
    expect(h.toString()).toBe(before);

    const built = createRequest({
      method: 'OPTIONS',
      uri: 'sip:bob@example.com',
      from: '<sip:alice@example.com>;tag=1',
      to: '<sip:bob@example.com>',
      callId: 'c',
      cseq: 1,
      body: 'hello',
      contentType: 'text/plain',
    });
    const text = built.toString();
    built.releaseParsed();
    expect(built.callId).toBe('c');
    expect(built.from.tag).toBe('1');
    expect(built.uri.toString()).toBe('sip:bob@example.com');
    expect(built.bodyText).toBe('hello');
    expect(built.toString()).toBe(text);
  });

  it('can be called again after values were read anew', () => {
    const m = parsed();
    expect(m.releaseParsed()).toBe(true);
    expect(m.cseq.seq).toBe(7);
    expect(m.releaseParsed()).toBe(true);
    expect(m.to.uri.user).toBe('bob');
  });
});

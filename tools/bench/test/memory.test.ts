import { describe, expect, it } from 'vitest';
import { readResponse } from '../src/memory.ts';

const utf8 = new TextEncoder();

describe('the memory section reads responses without a parser (RFC 3261 §7.2, §8.1.3)', () => {
  it('reads status, CSeq method, call index, To tag and Contact of a 200 to INVITE', () => {
    const bytes = utf8.encode(
      [
        'SIP/2.0 200 OK',
        'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK.i7',
        'From: <sip:caller7@127.0.0.1:5070>;tag=f7',
        'To: <sip:bench@127.0.0.1:5060>;tag=a8Xk2',
        'Call-ID: 1000007.mem@bench',
        'CSeq: 1 INVITE',
        'Contact: <sip:127.0.0.1:5060;transport=udp>',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    expect(readResponse(bytes)).toEqual({
      status: 200,
      method: 'INVITE',
      index: 1000007,
      toTag: 'a8Xk2',
      contact: 'sip:127.0.0.1:5060;transport=udp',
    });
  });

  it('has no To tag on a 100 Trying, and nothing for a request or garbage', () => {
    const trying = utf8.encode(
      'SIP/2.0 100 Trying\r\nTo: <sip:bench@127.0.0.1>\r\nCall-ID: 3.reg@bench\r\nCSeq: 1 REGISTER\r\n\r\n',
    );
    expect(readResponse(trying)).toMatchObject({
      status: 100,
      method: 'REGISTER',
      index: 3,
      toTag: undefined,
    });
    expect(readResponse(utf8.encode('INVITE sip:a@b SIP/2.0\r\n\r\n'))).toBeUndefined();
    expect(readResponse(utf8.encode('\u0000\u0001'))).toBeUndefined();
  });
});

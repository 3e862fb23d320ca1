import { parse } from 'sdp-transform';
import { describe, expect, it } from 'vitest';
import { makeAnswer, makeOffer, withDirection } from '../src/sdp.ts';

describe('SDP for hold and transfer (RFC 3264 §8)', () => {
  it('§8.4 withDirection: the same session, one version up, every stream sendonly; the answer mirrors it recvonly', () => {
    const offer = makeOffer('127.0.0.1');
    const hold = withDirection(offer, 'sendonly');
    const before = parse(offer);
    const after = parse(hold);
    expect(after.origin?.sessionId).toBe(before.origin?.sessionId);
    expect(Number(after.origin?.sessionVersion)).toBe(Number(before.origin?.sessionVersion) + 1);
    expect(after.media.map((m) => m.direction)).toEqual(['sendonly']);
    expect(after.media[0]?.rtp).toEqual(before.media[0]?.rtp);
    expect(parse(makeAnswer(hold, '127.0.0.1')).media[0]?.direction).toBe('recvonly');
    // Off hold again: sendrecv, and the version goes on rising.
    const resumed = parse(withDirection(hold, 'sendrecv'));
    expect(resumed.media[0]?.direction).toBe('sendrecv');
    expect(Number(resumed.origin?.sessionVersion)).toBe(Number(before.origin?.sessionVersion) + 2);
  });

  it('withDirection refuses a body that is not a session description', () => {
    expect(() => withDirection('hello', 'sendonly')).toThrow(/no media lines/);
  });
});

/** The answer with its o= line's session id (the time) fixed. */
const fixed = (sdp: string): string => sdp.replace(/^o=sipworks \d+ /m, 'o=sipworks T ');

describe('makeAnswer: the answer serve and call send (RFC 3264 §6)', () => {
  it("answers SIPp's PCMU-only offer with PCMU on our port, sendrecv", () => {
    const offer =
      'v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
    expect(fixed(makeAnswer(offer, '127.0.0.1'))).toBe(
      'v=0\r\no=sipworks T 1 IN IP4 127.0.0.1\r\ns=sipworks\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n' +
        'm=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n',
    );
  });

  it('keeps known codecs in the offer order with their fmtp, mirrors sendonly, refuses video with port 0 (§6.1)', () => {
    const offer =
      'v=0\no=a 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\n' +
      'm=audio 5000 RTP/AVP 96 8 101 0\na=rtpmap:96 opus/48000/2\na=rtpmap:101 telephone-event/8000\n' +
      'a=fmtp:101 0-15\na=fmtp:96 useinbandfec=1\na=sendonly\nm=video 5002 RTP/AVP 97\na=rtpmap:97 H264/90000\n';
    expect(fixed(makeAnswer(offer, '::1'))).toBe(
      'v=0\r\no=sipworks T 1 IN IP6 ::1\r\ns=sipworks\r\nc=IN IP6 ::1\r\nt=0 0\r\n' +
        'm=audio 40002 RTP/AVP 8 101 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n' +
        'a=rtpmap:0 PCMU/8000\r\na=fmtp:101 0-15\r\na=recvonly\r\n' +
        'm=video 0 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\na=sendrecv\r\n',
    );
  });

  it('answers our own offer, and the answer parses as SDP (RFC 4566)', () => {
    const answer = parse(makeAnswer(makeOffer('127.0.0.1'), '127.0.0.1'));
    expect(answer.media[0]?.rtp.map((r) => r.codec)).toEqual(['PCMU', 'PCMA', 'telephone-event']);
    expect(answer.media[0]?.fmtp).toEqual([{ payload: 101, config: '0-16' }]);
  });

  it('refuses an audio stream with no codec we know, and throws for a body without m=', () => {
    const offer = 'v=0\r\ns=-\r\nm=audio 5000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n';
    expect(makeAnswer(offer, '127.0.0.1')).toMatch(
      /\r\nm=audio 0 RTP\/AVP 96\r\na=rtpmap:96 opus\/48000\r\n/,
    );
    expect(() => makeAnswer('hello', '127.0.0.1')).toThrow(/no media lines/);
  });
});

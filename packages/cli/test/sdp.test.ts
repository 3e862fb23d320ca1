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

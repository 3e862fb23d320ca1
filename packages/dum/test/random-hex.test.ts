import { describe, expect, it } from 'vitest';
import { randomHex } from '../src/digest.ts';

describe('randomHex: tags (RFC 3261 §19.3) and nonces (RFC 7616 §3.3) from the CSPRNG pool', () => {
  it('gives 2 lowercase hex digits per byte, for small and large requests', () => {
    for (const n of [1, 3, 16, 300, 1000])
      expect(randomHex(n)).toMatch(new RegExp(`^[0-9a-f]{${2 * n}}$`));
  });

  it('hands no byte out twice across pool refills: 10,000 tags of 8 bytes are distinct', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(randomHex(8));
    expect(seen.size).toBe(10_000);
  });

  it('uses every hex digit (the bytes are not stuck at a constant)', () => {
    const text = Array.from({ length: 200 }, () => randomHex(3)).join('');
    expect(new Set(text).size).toBe(16);
  });
});

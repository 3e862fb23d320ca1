/** The part of `node:crypto` the DUM uses (digest hashing, nonce MACs, randomness). */
export interface NodeCrypto {
  createHash(name: string): { update(d: string | Uint8Array): { digest(enc: 'hex'): string } };
  /** One-shot `crypto.hash` (Node.js 20.12 and later): no Hash object per digest. */
  hash?: (name: string, data: string | Uint8Array, enc: 'hex') => string;
  randomBytes(n: number): Uint8Array;
  randomFillSync(b: Uint8Array): Uint8Array;
  createHmac(
    name: string,
    key: string | Uint8Array,
  ): { update(d: string): { digest(enc: 'hex'): string } };
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
}

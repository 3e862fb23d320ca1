/** The part of `node:crypto` the DUM uses (digest hashing, nonce MACs, randomness). */
export interface NodeCrypto {
  createHash(name: string): { update(d: string | Uint8Array): { digest(enc: 'hex'): string } };
  randomBytes(n: number): Uint8Array;
  randomFillSync(b: Uint8Array): Uint8Array;
  createHmac(
    name: string,
    key: string | Uint8Array,
  ): { update(d: string): { digest(enc: 'hex'): string } };
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
}

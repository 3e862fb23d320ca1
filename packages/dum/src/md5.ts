/**
 * MD5 (RFC 1321), for digest authentication where no `node:crypto` is at hand (a
 * browser: WebCrypto has no MD5). Digest auth still needs it: MD5 is the default
 * algorithm of RFC 2617 and the one most servers offer first (RFC 8760 §2.4 keeps it for
 * compatibility). Not for anything that needs a secure hash.
 */

/** Per-round left rotations (RFC 1321 §3.4). */
const SHIFTS = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
  20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6,
  10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/** T[i] = floor(2^32 * |sin(i + 1)|) (RFC 1321 §3.4), computed once. */
const T = Array.from(
  { length: 64 },
  (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0,
);

/** The message, padded (RFC 1321 §3.1, §3.2) to a multiple of 64 bytes. */
function pad(data: Uint8Array): Uint8Array {
  const total = (((data.length + 8) >>> 6) + 1) << 6;
  const out = new Uint8Array(total);
  out.set(data);
  out[data.length] = 0x80;
  const bits = data.length * 8;
  const view = new DataView(out.buffer);
  view.setUint32(total - 8, bits >>> 0, true);
  view.setUint32(total - 4, Math.floor(bits / 2 ** 32) >>> 0, true);
  return out;
}

/** The MD5 digest of `data` (a string is hashed as UTF-8), as 32 lower-case hex digits. */
export function md5Hex(data: string | Uint8Array): string {
  const bytes = pad(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  const view = new DataView(bytes.buffer);
  let a0 = 0x67452301;
  let b0 = 0xefcdab89;
  let c0 = 0x98badcfe;
  let d0 = 0x10325476;
  const m = new Array<number>(16);
  for (let off = 0; off < bytes.length; off += 64) {
    for (let j = 0; j < 16; j++) m[j] = view.getUint32(off + j * 4, true);
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      // The four auxiliary functions F, G, H, I and their message word order (§3.4).
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) & 15;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) & 15;
      }
      const sum = (a + f + (T[i] as number) + (m[g] as number)) | 0;
      const s = SHIFTS[i] as number;
      a = d;
      d = c;
      c = b;
      b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  const out = new DataView(new ArrayBuffer(16));
  out.setUint32(0, a0, true);
  out.setUint32(4, b0, true);
  out.setUint32(8, c0, true);
  out.setUint32(12, d0, true);
  return toHex(new Uint8Array(out.buffer));
}

/** Bytes as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const x of bytes) s += x.toString(16).padStart(2, '0');
  return s;
}

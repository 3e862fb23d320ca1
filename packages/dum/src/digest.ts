import { nodeCrypto } from '#platform';
import { md5Hex, toHex } from './md5.ts';

/** Digest algorithms of RFC 7616 / RFC 8760, strongest first. */
export const DIGEST_ALGORITHMS = ['SHA-512-256', 'SHA-256', 'MD5'] as const;
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number];

/** Hex digest of `data` with `algorithm`. Injectable so a browser build can use its own. */
export type Hasher = (algorithm: DigestAlgorithm, data: string | Uint8Array) => string;

/**
 * A hasher that answers later, as WebCrypto's `crypto.subtle.digest` does. The client
 * side of digest auth takes one (`ClientAuthManager`'s `asyncHasher`); see `webHasher`.
 */
export type AsyncHasher = (
  algorithm: DigestAlgorithm,
  data: string | Uint8Array,
) => Promise<string>;

const NODE_NAMES: Record<DigestAlgorithm, string> = {
  MD5: 'md5',
  'SHA-256': 'sha256',
  'SHA-512-256': 'sha512-256',
};

/** `node:crypto` in Node.js; undefined in a browser build (see `platform/`). */
export { nodeCrypto };

/** The default hasher, on `node:crypto`. */
export const nodeHasher: Hasher = (algorithm, data) => {
  if (!nodeCrypto) throw new Error('no node:crypto here: pass a Hasher');
  const name = NODE_NAMES[algorithm];
  if (nodeCrypto.hash) return nodeCrypto.hash(name, data, 'hex');
  return nodeCrypto.createHash(name).update(data).digest('hex');
};

/** The algorithm named in a challenge, without `-sess`; undefined when not supported. */
export function baseAlgorithm(
  name: string | undefined,
): { algorithm: DigestAlgorithm; sess: boolean } | undefined {
  const n = (name ?? 'MD5').toUpperCase();
  const sess = n.endsWith('-SESS');
  const base = sess ? n.slice(0, -5) : n;
  const algorithm = DIGEST_ALGORITHMS.find((a) => a === base);
  return algorithm ? { algorithm, sess } : undefined;
}

export interface DigestInput {
  algorithm: DigestAlgorithm;
  sess: boolean;
  username: string;
  realm: string;
  /** The password, or `ha1` instead. */
  password?: string | undefined;
  ha1?: string | undefined;
  nonce: string;
  cnonce?: string | undefined;
  /** `auth`, `auth-int`, or undefined (RFC 2069 compatibility). */
  qop?: string | undefined;
  /** Nonce count, 8 hex digits. */
  nc?: string | undefined;
  method: string;
  uri: string;
  /** The body, for `auth-int`. */
  body?: Uint8Array | undefined;
}

/** H(username:realm:password), the stored form of a password. */
export function computeHa1(
  h: Hasher,
  algorithm: DigestAlgorithm,
  username: string,
  realm: string,
  password: string,
): string {
  return h(algorithm, `${username}:${realm}:${password}`);
}

/** The `response` value of RFC 7616 §3.4.1. */
export function digestResponse(h: Hasher, d: DigestInput): string {
  let ha1 = d.ha1 ?? computeHa1(h, d.algorithm, d.username, d.realm, d.password ?? '');
  if (d.sess) ha1 = h(d.algorithm, `${ha1}:${d.nonce}:${d.cnonce ?? ''}`);
  const ha2 =
    d.qop === 'auth-int'
      ? h(d.algorithm, `${d.method}:${d.uri}:${h(d.algorithm, d.body ?? new Uint8Array(0))}`)
      : h(d.algorithm, `${d.method}:${d.uri}`);
  if (d.qop === 'auth' || d.qop === 'auth-int')
    return h(d.algorithm, `${ha1}:${d.nonce}:${d.nc}:${d.cnonce}:${d.qop}:${ha2}`);
  return h(d.algorithm, `${ha1}:${d.nonce}:${ha2}`);
}

/** `digestResponse` with a hasher that answers later (RFC 7616 §3.4.1, the same steps). */
export async function digestResponseAsync(h: AsyncHasher, d: DigestInput): Promise<string> {
  const a = d.algorithm;
  let ha1 = d.ha1 ?? (await h(a, `${d.username}:${d.realm}:${d.password ?? ''}`));
  if (d.sess) ha1 = await h(a, `${ha1}:${d.nonce}:${d.cnonce ?? ''}`);
  const ha2 =
    d.qop === 'auth-int'
      ? await h(a, `${d.method}:${d.uri}:${await h(a, d.body ?? new Uint8Array(0))}`)
      : await h(a, `${d.method}:${d.uri}`);
  if (d.qop === 'auth' || d.qop === 'auth-int')
    return h(a, `${ha1}:${d.nonce}:${d.nc}:${d.cnonce}:${d.qop}:${ha2}`);
  return h(a, `${ha1}:${d.nonce}:${ha2}`);
}

/** The algorithms `webHasher` can compute here: SHA-256 needs WebCrypto's `subtle`. */
export function webHasherAlgorithms(): DigestAlgorithm[] {
  return globalThis.crypto?.subtle ? ['SHA-256', 'MD5'] : ['MD5'];
}

/**
 * The hasher for hosts without `node:crypto` (browsers): SHA-256 through WebCrypto
 * (`crypto.subtle.digest`, which a page has in a secure context: https, or http on
 * localhost), MD5 through this package's own `md5Hex` (WebCrypto has none). SHA-512-256
 * is in neither, so it is refused; a `ClientAuthManager` on this hasher does not choose it.
 */
export const webHasher: AsyncHasher = async (algorithm, data) => {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  if (algorithm === 'MD5') return md5Hex(bytes);
  const subtle = globalThis.crypto?.subtle;
  if (algorithm !== 'SHA-256' || !subtle)
    throw new Error(`webHasher cannot compute ${algorithm} here`);
  return toHex(new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
};

/** Compare two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  if (nodeCrypto && ea.length === eb.length) return nodeCrypto.timingSafeEqual(ea, eb);
  let diff = ea.length ^ eb.length;
  const n = Math.max(ea.length, eb.length);
  for (let i = 0; i < n; i++) diff |= (ea[i] ?? 0) ^ (eb[i] ?? 0);
  return diff === 0;
}

/** Bytes of the random pool; one call to the CSPRNG fills it for many tags and nonces. */
const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let poolUsed = POOL_BYTES;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function fillRandom(b: Uint8Array): void {
  if (nodeCrypto) nodeCrypto.randomFillSync(b);
  else globalThis.crypto.getRandomValues(b);
}

/**
 * Random hex (cnonce, nonce, tags) from the system CSPRNG. Bytes come from a pool
 * refilled 4 KB at a time, each handed out once: a call per tag (two per dialog) cost
 * more in the crypto binding than in the bytes.
 */
export function randomHex(bytes: number): string {
  if (bytes > POOL_BYTES / 16) {
    const b = new Uint8Array(bytes);
    fillRandom(b);
    let s = '';
    for (const x of b) s += HEX[x];
    return s;
  }
  if (poolUsed + bytes > POOL_BYTES) {
    fillRandom(pool);
    poolUsed = 0;
  }
  let s = '';
  const end = poolUsed + bytes;
  for (let i = poolUsed; i < end; i++) s += HEX[pool[i] as number];
  poolUsed = end;
  return s;
}

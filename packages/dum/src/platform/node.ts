/**
 * What the DUM takes from Node.js: `node:crypto`. The package's `#platform` import
 * resolves here everywhere but in a browser build, which gets `./browser.ts` (package.json
 * `imports`, condition `browser`), where hashing goes through WebCrypto and `md5.ts`.
 */
import * as crypto from 'node:crypto';
import type { NodeCrypto } from './types.ts';

const { createHash, createHmac, randomBytes, randomFillSync, timingSafeEqual } = crypto;
/** `crypto.hash` where this Node.js has it (20.12 and later). */
const hash = (crypto as { hash?: NodeCrypto['hash'] }).hash;

export const nodeCrypto: NodeCrypto | undefined = {
  createHash,
  createHmac,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
  ...(hash ? { hash } : {}),
};

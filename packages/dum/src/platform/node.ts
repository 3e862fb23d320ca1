/**
 * What the DUM takes from Node.js: `node:crypto`. The package's `#platform` import
 * resolves here everywhere but in a browser build, which gets `./browser.ts` (package.json
 * `imports`, condition `browser`), where hashing goes through WebCrypto and `md5.ts`.
 */
import { createHash, createHmac, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';
import type { NodeCrypto } from './types.ts';

export const nodeCrypto: NodeCrypto | undefined = {
  createHash,
  createHmac,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
};

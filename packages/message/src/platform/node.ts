/**
 * What the message layer takes from Node.js: faster byte helpers of `node:buffer`. The
 * package's `#platform` import resolves here everywhere but in a browser build, which gets
 * `./browser.ts` (package.json `imports`, condition `browser`); both export the same names.
 */
import { Buffer, isAscii } from 'node:buffer';

/** `Buffer#latin1Slice`: bytes to a string, one code point per byte. */
export const nativeLatin1: ((this: Uint8Array, start: number, end: number) => string) | undefined =
  (Buffer.prototype as unknown as { latin1Slice: (start: number, end: number) => string })
    .latin1Slice;

/** `Buffer#indexOf`, which searches for a string in bytes without copying. */
export const nativeIndexOf:
  | ((this: Uint8Array, value: string, byteOffset?: number) => number)
  | undefined = Buffer.prototype.indexOf as (
  this: Uint8Array,
  value: string,
  byteOffset?: number,
) => number;

/** `buffer.isAscii`, vectorised. */
export const nativeIsAscii: ((b: Uint8Array) => boolean) | undefined = isAscii;

/** UTF-8 byte length of a string (`Buffer.byteLength`). */
export const nativeUtf8Length: ((s: string) => number) | undefined = (s) =>
  Buffer.byteLength(s, 'utf8');

/** `Buffer#utf8Write`: a string's UTF-8 bytes written at `offset`; returns the count. */
export const nativeUtf8Write:
  | ((this: Uint8Array, s: string, offset: number, length: number) => number)
  | undefined = (
  Buffer.prototype as unknown as {
    utf8Write: (s: string, offset: number, length: number) => number;
  }
).utf8Write;

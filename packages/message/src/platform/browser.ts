/**
 * The browser side of `#platform` (see `./node.ts`): no native byte helpers, so the
 * portable loops of `chars.ts` run.
 */
export const nativeLatin1: ((this: Uint8Array, start: number, end: number) => string) | undefined =
  undefined;
export const nativeIndexOf:
  | ((this: Uint8Array, value: string, byteOffset?: number) => number)
  | undefined = undefined;
export const nativeIsAscii: ((b: Uint8Array) => boolean) | undefined = undefined;
export const nativeUtf8Length: ((s: string) => number) | undefined = undefined;
export const nativeUtf8Write:
  | ((this: Uint8Array, s: string, offset: number, length: number) => number)
  | undefined = undefined;

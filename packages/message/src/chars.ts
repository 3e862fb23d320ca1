import {
  nativeIndexOf,
  nativeIsAscii,
  nativeLatin1,
  nativeUtf8Length,
  nativeUtf8Write,
} from '#platform';

/** Character classes of RFC 3261 §25.1, as lookup tables over the first 128 code points. */

function table(chars: string, alnum: boolean): Uint8Array {
  const t = new Uint8Array(128);
  if (alnum) {
    for (let c = 48; c <= 57; c++) t[c] = 1;
    for (let c = 65; c <= 90; c++) t[c] = 1;
    for (let c = 97; c <= 122; c++) t[c] = 1;
  }
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table("-.!%*_+`'~", true);
/** word (Call-ID) = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}") */
export const WORD = table('-.!%*_+`\'~()<>:\\"/[]?{}', true);
/** unreserved = alphanum / mark */
export const UNRESERVED = table("-_.!~*'()", true);
/** user = 1*( unreserved / escaped / user-unreserved ), user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/" */
export const USER = table("-_.!~*'()&=+$,;?/", true);
/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
export const PASSWORD = table("-_.!~*'()&=+$,", true);
/** paramchar = param-unreserved / unreserved / escaped; param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$" */
export const PARAMCHAR = table("-_.!~*'()[]/:&+$", true);
/** hnv-unreserved / unreserved (URI headers) */
export const HNVCHAR = table("-_.!~*'()[]/?:+$", true);
/** hostname characters, plus the IPv6 reference characters */
export const HOSTCHAR = table('-.', true);
/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
export const SCHEME = table('+-.', true);

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] === 0) return false;
  }
  return true;
}

export function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Whether a string has any character at or above U+0080. */
export function hasHigh(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return true;
  return false;
}

const HEX = '0123456789ABCDEF';

/** %-escape every character of `s` that is not in `allowed` (UTF-8 for non-ASCII). */
export function percentEncode(s: string, allowed: Uint8Array): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 128 && allowed[c] === 1) continue;
    out += s.slice(from, i);
    const bytes = c < 128 ? [c] : Array.from(utf8Encode(s[i] ?? ''));
    for (const b of bytes) out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
    from = i + 1;
  }
  return from === 0 ? s : out + s.slice(from);
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Decode %-escapes (as UTF-8 when they form valid UTF-8, else byte by byte). Returns the input when it has none. */
export function percentDecode(s: string): string {
  const p = s.indexOf('%');
  if (p < 0) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 && i + 2 < s.length + 0 && i + 2 <= s.length - 1) {
      const h = hexVal(s.charCodeAt(i + 1));
      const l = hexVal(s.charCodeAt(i + 2));
      if (h >= 0 && l >= 0) {
        bytes.push((h << 4) | l);
        i += 2;
        continue;
      }
    }
    if (c < 128) bytes.push(c);
    else for (const b of utf8Encode(s[i] ?? '')) bytes.push(b);
  }
  return utf8Decode(Uint8Array.from(bytes));
}

/** Whether every `%` in `s` starts a valid escape. */
export function validEscapes(s: string, from = 0, to = s.length): boolean {
  for (let i = s.indexOf('%', from); i >= 0 && i < to; i = s.indexOf('%', i + 1)) {
    if (i + 2 >= to || hexVal(s.charCodeAt(i + 1)) < 0 || hexVal(s.charCodeAt(i + 2)) < 0)
      return false;
  }
  return true;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/**
 * `s` encoded as UTF-8 followed by `tail`, in one array of exactly that size: a message's
 * header section and its body, written once.
 */
export function utf8EncodeWith(s: string, tail: Uint8Array): Uint8Array {
  if (nativeUtf8Length === undefined || nativeUtf8Write === undefined) {
    const head = encoder.encode(s);
    if (tail.length === 0) return head;
    const out = new Uint8Array(head.length + tail.length);
    out.set(head, 0);
    out.set(tail, head.length);
    return out;
  }
  const n = nativeUtf8Length(s);
  const out = new Uint8Array(n + tail.length);
  nativeUtf8Write.call(out, s, 0, n);
  if (tail.length > 0) out.set(tail, n);
  return out;
}

export function utf8Decode(b: Uint8Array): string {
  return decoder.decode(b);
}

/** Decode bytes one to one into a string (each byte becomes the code point of the same value). */
export function latin1(b: Uint8Array, start: number, end: number): string {
  if (nativeLatin1 !== undefined) return nativeLatin1.call(b, start, end);
  let out = '';
  for (let i = start; i < end; i += 8192) {
    out += String.fromCharCode.apply(
      null,
      b.subarray(i, Math.min(end, i + 8192)) as unknown as number[],
    );
  }
  return out;
}

/** Whether bytes `start..end` are all below 0x80. */
export function isAscii(b: Uint8Array, start: number, end: number): boolean {
  if (nativeIsAscii !== undefined && end - start > 64)
    return nativeIsAscii(start === 0 && end === b.length ? b : b.subarray(start, end));
  for (let i = start; i < end; i++) if ((b[i] as number) > 127) return false;
  return true;
}

/** Offset of the first CRLFCRLF at or after `from`, or -1. */
export function findHeaderEnd(b: Uint8Array, from: number): number {
  if (nativeIndexOf !== undefined) return nativeIndexOf.call(b, '\r\n\r\n', from);
  const n = b.length - 3;
  for (let i = from; i < n; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

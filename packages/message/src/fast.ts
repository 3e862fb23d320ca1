/**
 * Readers of the headers every message is asked for (Via, From, To, Call-ID, CSeq),
 * working on the received bytes of one unfolded header line. They take the common,
 * plain forms only and return `undefined` for anything else (folds, quoted pairs,
 * IPv6 references, non-ASCII text, anything malformed), so that the general parsers
 * read the value and report its errors: a value is never accepted here that the
 * general parser would reject, and it reads the same.
 *
 * `s` is the same bytes decoded one to one (latin1); strings are taken from it.
 */
import { HOSTCHAR, latin1, TOKEN, WORD } from './chars.ts';
import { NameAddr } from './name-addr.ts';
import { GENVALUE } from './params.ts';
import { CSeq } from './typed.ts';
import { Via } from './via.ts';

/** A 256-entry copy of a character table, so that bytes above 0x7F read 0 without a range check. */
function wide(t: Uint8Array): Uint8Array {
  const w = new Uint8Array(256);
  w.set(t);
  return w;
}

const T = wide(TOKEN);
const G = wide(GENVALUE);
const H = wide(HOSTCHAR);
const W = wide(WORD);
/** The visible ASCII characters but '>': those of a URI between '<' and '>' read here. */
const U = new Uint8Array(256);
for (let c = 33; c < 127; c++) U[c] = c === 62 ? 0 : 1;

/**
 * A string of bytes `a..e`: a short one is copied out of `s`, a longer one is decoded
 * on its own, so that it does not keep `s` alive.
 */
export function str(b: Uint8Array, s: string, a: number, e: number): string {
  return e - a < 13 ? s.slice(a, e) : latin1(b, a, e);
}

/** A table of known words, looked up by length, first and last byte; each with its bytes. */
interface Words {
  readonly words: (string | undefined)[];
  readonly bytes: (Uint8Array | undefined)[];
}

function interner(list: readonly string[]): Words {
  const words: (string | undefined)[] = new Array(256).fill(undefined);
  const bytes: (Uint8Array | undefined)[] = new Array(256).fill(undefined);
  for (const w of list) {
    const h = (w.length * 31 + w.charCodeAt(0) * 7 + w.charCodeAt(w.length - 1)) & 255;
    if (words[h] === undefined) {
      words[h] = w;
      bytes[h] = Uint8Array.from(w, (c) => c.charCodeAt(0));
    }
  }
  return { words, bytes };
}

const PARAM_NAMES = interner([
  'tag',
  'branch',
  'rport',
  'received',
  'lr',
  'transport',
  'expires',
  'maddr',
  'ttl',
  'user',
  'q',
  'ob',
  'method',
  'alias',
  'keep',
  'gr',
  'sigcomp-id',
  '+sip.instance',
  'reg-id',
  'ttl',
]);

const METHODS = interner([
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'REGISTER',
  'OPTIONS',
  'INFO',
  'UPDATE',
  'PRACK',
  'SUBSCRIBE',
  'NOTIFY',
  'REFER',
  'MESSAGE',
  'PUBLISH',
]);

const TRANSPORTS = interner(['UDP', 'TCP', 'TLS', 'WS', 'WSS', 'SCTP', 'TLS-SCTP']);

/** The known word for bytes `a..e` (non-empty), or undefined. */
function known(t: Words, b: Uint8Array, a: number, e: number): string | undefined {
  const n = e - a;
  const h = (n * 31 + (b[a] as number) * 7 + (b[e - 1] as number)) & 255;
  const wb = t.bytes[h];
  if (wb === undefined || wb.length !== n) return undefined;
  for (let j = 0; j < n; j++) if (wb[j] !== b[a + j]) return undefined;
  return t.words[h];
}

/** A word of bytes `a..e` (non-empty): the shared string when it is a known one. */
function word(t: Words, b: Uint8Array, s: string, a: number, e: number): string {
  return known(t, b, a, e) ?? str(b, s, a, e);
}

/** A method name (request line, CSeq): the shared string for the common ones. */
export function methodName(b: Uint8Array, s: string, a: number, e: number): string {
  return word(METHODS, b, s, a, e);
}

/** A method name read from bytes without a decoded copy, or undefined when it is not a known one. */
export function knownMethod(b: Uint8Array, a: number, e: number): string | undefined {
  return e > a ? known(METHODS, b, a, e) : undefined;
}

function skipWs(b: Uint8Array, i: number): number {
  let c = b[i];
  while (c === 32 || c === 9) c = b[++i];
  return i;
}

/** Where `parseParams` collects names and values. */
const kv: (string | null)[] = new Array(32).fill(null);
/** Where `parseParams` stopped. */
let at = 0;

/**
 * `*( SEMI generic-param )` without quoted values or folds, from `i`. Returns the
 * parameters (an exact-size array, or undefined when there are none), or null to give up;
 * `at` is left where they end.
 */
function parseParams(b: Uint8Array, s: string, i: number): (string | null)[] | undefined | null {
  let n = 0;
  for (;;) {
    if (b[i] !== 59) {
      i = skipWs(b, i);
      if (b[i] !== 59) break;
    }
    i = skipWs(b, i + 1);
    const ns = i;
    let c = b[i] as number;
    while (T[c] === 1) c = b[++i] as number;
    if (i === ns) return null;
    const ne = i;
    if (n + 2 > kv.length) kv.length = n + 16;
    kv[n++] = word(PARAM_NAMES, b, s, ns, ne);
    i = skipWs(b, i);
    if (b[i] === 61) {
      i = skipWs(b, i + 1);
      const vs = i;
      c = b[i] as number;
      while (G[c] === 1) c = b[++i] as number;
      if (i === vs) return null;
      kv[n++] = str(b, s, vs, i);
    } else {
      kv[n++] = null;
    }
  }
  at = i;
  switch (n) {
    case 0:
      return undefined;
    case 2:
      return [kv[0] as string, kv[1] as string | null];
    case 4:
      return [kv[0] as string, kv[1] as string | null, kv[2] as string, kv[3] as string | null];
    case 6:
      return [
        kv[0] as string,
        kv[1] as string | null,
        kv[2] as string,
        kv[3] as string | null,
        kv[4] as string,
        kv[5] as string | null,
      ];
    default:
      return kv.slice(0, n);
  }
}

/**
 * The Via values of one line (`i` to its CR at `end`), appended to `out`; false to give up.
 */
export function readVias(b: Uint8Array, s: string, i: number, end: number, out: Via[]): boolean {
  for (;;) {
    i = skipWs(b, i);
    if (
      b[i] !== 83 ||
      b[i + 1] !== 73 ||
      b[i + 2] !== 80 ||
      b[i + 3] !== 47 ||
      b[i + 4] !== 50 ||
      b[i + 5] !== 46 ||
      b[i + 6] !== 48 ||
      b[i + 7] !== 47
    )
      return false;
    i += 8;
    const ts = i;
    let c = b[i] as number;
    while (T[c] === 1) c = b[++i] as number;
    if (i === ts) return false;
    const transport = known(TRANSPORTS, b, ts, i);
    if (transport === undefined || (c !== 32 && c !== 9)) return false;
    i = skipWs(b, i);
    const hs = i;
    c = b[i] as number;
    while (H[c] === 1) c = b[++i] as number;
    if (i === hs) return false;
    const host = str(b, s, hs, i);
    let port: number | undefined;
    if (c === 58) {
      const ps = ++i;
      let v = 0;
      c = b[i] as number;
      while (c >= 48 && c <= 57) {
        v = v * 10 + c - 48;
        c = b[++i] as number;
      }
      if (i === ps || i - ps > 5 || v > 65535) return false;
      port = v;
    }
    const params = parseParams(b, s, i);
    if (params === null) return false;
    i = skipWs(b, at);
    const via = new Via(transport, host, port, undefined, true);
    if (params !== undefined) via.p = params;
    out.push(via);
    if (i >= end) return i === end;
    if (b[i] !== 44) return false;
    i++;
  }
}

/**
 * One name-addr or addr-spec with its parameters, the whole value of a line (From,
 * To...), or undefined to give up.
 */
export function readNameAddr(
  b: Uint8Array,
  s: string,
  i: number,
  end: number,
  header: string,
): NameAddr | undefined {
  i = skipWs(b, i);
  let ds = -1;
  let de = -1;
  let c = b[i] as number;
  let wide = false;
  if (c === 34) {
    ds = ++i;
    c = b[i] as number;
    while (c !== 34) {
      if (c === 92 || (c < 32 && c !== 9) || i >= end) return undefined;
      if (c > 126) wide = true;
      c = b[++i] as number;
    }
    de = i;
    i = skipWs(b, i + 1);
    c = b[i] as number;
    if (c !== 60) return undefined;
  } else if (c !== 60) {
    // Tokens separated by single spaces before '<' are a display name; otherwise
    // this should be an addr-spec.
    const ts = i;
    let last = i;
    while (c !== 60) {
      if (c === 32) {
        if (b[i + 1] === 32) return undefined;
      } else if (T[c] === 1) last = i + 1;
      else break;
      c = b[++i] as number;
    }
    if (c === 60) {
      ds = ts;
      de = last;
    } else {
      i = ts;
      c = b[i] as number;
      while (c !== 59 && c !== 44 && c !== 32 && c !== 9 && c !== 13 && i < end) {
        if (c === 63 || c === 60 || c === 34 || c > 126 || c < 32) return undefined;
        c = b[++i] as number;
      }
      if (i === ts) return undefined;
      return finishNameAddr(b, s, i, end, -1, -1, ts, i, header);
    }
  }
  // at '<'
  const us = ++i;
  c = b[i] as number;
  while (U[c] === 1) c = b[++i] as number;
  if (c !== 62 || i === us) return undefined;
  return finishNameAddr(b, s, i + 1, end, ds, de, us, i, header, wide);
}

function finishNameAddr(
  b: Uint8Array,
  s: string,
  i: number,
  end: number,
  ds: number,
  de: number,
  us: number,
  ue: number,
  header: string,
  wide = false,
): NameAddr | undefined {
  const params = parseParams(b, s, i);
  if (params === null || skipWs(b, at) !== end) return undefined;
  return NameAddr.inBytes(b, ds, de, us, ue, params, header, wide);
}

/** CSeq: `number method`, or undefined to give up. */
export function readCSeq(b: Uint8Array, s: string, i: number, end: number): CSeq | undefined {
  i = skipWs(b, i);
  const ns = i;
  let v = 0;
  let c = b[i] as number;
  while (c >= 48 && c <= 57) {
    v = v * 10 + c - 48;
    c = b[++i] as number;
  }
  if (i === ns || i - ns > 10 || v > 0xffffffff || (c !== 32 && c !== 9)) return undefined;
  i = skipWs(b, i);
  const ms = i;
  c = b[i] as number;
  while (T[c] === 1) c = b[++i] as number;
  if (i === ms || skipWs(b, i) !== end) return undefined;
  return new CSeq(v, methodName(b, s, ms, i));
}

/** Call-ID: `word [@ word]`, or undefined to give up. */
export function readCallId(b: Uint8Array, s: string, i: number, end: number): string | undefined {
  i = skipWs(b, i);
  const cs = i;
  let c = b[i] as number;
  while (W[c] === 1) c = b[++i] as number;
  if (i === cs) return undefined;
  if (c === 64) {
    const hs = ++i;
    c = b[i] as number;
    while (W[c] === 1) c = b[++i] as number;
    if (i === hs) return undefined;
  }
  const ce = i;
  if (skipWs(b, i) !== end) return undefined;
  return str(b, s, cs, ce);
}

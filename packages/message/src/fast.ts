/**
 * Readers of the headers every message is asked for (Via, From, To, Call-ID, CSeq),
 * working on the received bytes of one unfolded header line. They take the common,
 * plain forms only and return `undefined` for anything else (folds, quoted pairs,
 * IPv6 references, non-ASCII text, anything malformed), so that the general parsers
 * read the value and report its errors: a value is never accepted here that the
 * general parser would reject, and it reads the same.
 *
 * A value ends at the first CR: no reader accepts a CR, an LF or any other control
 * character but HT inside it, so a value that is read proves that its line holds
 * neither, and `valueEnd()` is where its line ends. `end` only bounds the scan: the
 * CR that ends the line when it is known, else the end of the input.
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
/** The characters of a quoted display name read here as they are: HT and visible ASCII but '"' and '\\'. */
const Q = new Uint8Array(256);
for (let c = 32; c < 127; c++) Q[c] = c === 34 || c === 92 ? 0 : 1;
Q[9] = 1;
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

/**
 * Where the bytes of class `t` from `i` end. Two bytes are tested per step: the loop
 * then branches half as often, which is most of its cost.
 */
export function span(t: Uint8Array, b: Uint8Array, i: number): number {
  while (((t[b[i] as number] as number) & (t[b[i + 1] as number] as number)) === 1) i += 2;
  return t[b[i] as number] === 1 ? i + 1 : i;
}

function skipWs(b: Uint8Array, i: number): number {
  let c = b[i];
  while (c === 32 || c === 9) c = b[++i];
  return i;
}

/** Where `parseParams` stopped. */
let at = 0;
/** The CR that ended the value last read. */
let crAt = 0;
/** The value of the parameter `param` read last: its offsets, `vs` -1 when it has none. */
let vs = -1;
let ve = -1;

/** Where the value last read successfully ends: the offset of the CR after it. */
export function valueEnd(): number {
  return crAt;
}

/**
 * One `SEMI generic-param` (without a quoted value) from `i`, after optional white space:
 * its name, its value left in `vs`..`ve` and `at` where it ends; undefined when none
 * starts here (`at` left after the white space), null to give up.
 */
function param(b: Uint8Array, s: string, i: number): string | null | undefined {
  if (b[i] !== 59) {
    i = skipWs(b, i);
    if (b[i] !== 59) {
      at = i;
      return undefined;
    }
  }
  i = skipWs(b, i + 1);
  const ns = i;
  i = span(T, b, i);
  if (i === ns) return null;
  const name = word(PARAM_NAMES, b, s, ns, i);
  i = skipWs(b, i);
  if (b[i] === 61) {
    i = skipWs(b, i + 1);
    vs = i;
    i = span(G, b, i);
    if (i === vs) return null;
    ve = i;
  } else {
    vs = -1;
  }
  at = i;
  return name;
}

/** The value of the parameter `param` read last. */
function paramValue(b: Uint8Array, s: string): string | null {
  return vs < 0 ? null : str(b, s, vs, ve);
}

/**
 * `*( SEMI generic-param )` without quoted values or folds, from `i`. Returns the
 * parameters as names and values in turn (an exact-size array, or undefined when there
 * are none), or null to give up; `at` is left where they end. The first three are held
 * in locals, so that nothing but the result is written to memory.
 */
function parseParams(b: Uint8Array, s: string, i: number): (string | null)[] | undefined | null {
  const k0 = param(b, s, i);
  if (k0 == null) return k0;
  const v0 = paramValue(b, s);
  const k1 = param(b, s, at);
  if (k1 === undefined) return [k0, v0];
  if (k1 === null) return null;
  const v1 = paramValue(b, s);
  const k2 = param(b, s, at);
  if (k2 === undefined) return [k0, v0, k1, v1];
  if (k2 === null) return null;
  const out = [k0, v0, k1, v1, k2, paramValue(b, s)];
  for (;;) {
    const k = param(b, s, at);
    if (k === undefined) return out.length === 6 ? out : out.slice();
    if (k === null) return null;
    out.push(k, paramValue(b, s));
  }
}

/**
 * The Via values of one line (from `i`), stored in `out` from index `n` on; returns
 * the new number of values in `out`, or -1 to give up.
 */
export function readVias(
  b: Uint8Array,
  s: string,
  i: number,
  end: number,
  out: Via[],
  n: number,
): number {
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
      return -1;
    i += 8;
    const ts = i;
    i = span(T, b, i);
    let c = b[i] as number;
    if (i === ts) return -1;
    const transport = known(TRANSPORTS, b, ts, i);
    if (transport === undefined || (c !== 32 && c !== 9)) return -1;
    i = skipWs(b, i);
    const hs = i;
    i = span(H, b, i);
    c = b[i] as number;
    if (i === hs) return -1;
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
      if (i === ps || i - ps > 5 || v > 65535) return -1;
      port = v;
    }
    const params = parseParams(b, s, i);
    if (params === null) return -1;
    i = skipWs(b, at);
    const via = new Via(transport, host, port, undefined, true);
    if (params !== undefined) via.p = params;
    out[n++] = via;
    if (b[i] === 13) {
      crAt = i;
      return n;
    }
    if (i >= end || b[i] !== 44) return -1;
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
    for (;;) {
      i = span(Q, b, i);
      c = b[i] as number;
      if (c === 34) break;
      // Bytes above 0x7E are taken, as UTF-8; a quoted pair, a control or the end is not.
      if (c <= 126 || i >= end) return undefined;
      wide = true;
      i++;
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
      return finishNameAddr(b, s, i, -1, -1, ts, i, header);
    }
  }
  // at '<'
  const us = ++i;
  i = span(U, b, i);
  c = b[i] as number;
  if (c !== 62 || i === us) return undefined;
  return finishNameAddr(b, s, i + 1, ds, de, us, i, header, wide);
}

function finishNameAddr(
  b: Uint8Array,
  s: string,
  i: number,
  ds: number,
  de: number,
  us: number,
  ue: number,
  header: string,
  wide = false,
): NameAddr | undefined {
  const params = parseParams(b, s, i);
  if (params === null) return undefined;
  const cr = skipWs(b, at);
  if (b[cr] !== 13) return undefined;
  crAt = cr;
  return NameAddr.inBytes(b, ds, de, us, ue, params, header, wide);
}

/** CSeq: `number method`, or undefined to give up. */
export function readCSeq(b: Uint8Array, s: string, i: number): CSeq | undefined {
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
  i = span(T, b, i);
  const cr = skipWs(b, i);
  if (i === ms || b[cr] !== 13) return undefined;
  crAt = cr;
  return new CSeq(v, methodName(b, s, ms, i));
}

/** Call-ID: `word [@ word]`, or undefined to give up. */
export function readCallId(b: Uint8Array, s: string, i: number): string | undefined {
  i = skipWs(b, i);
  const cs = i;
  i = span(W, b, i);
  const c = b[i] as number;
  if (i === cs) return undefined;
  if (c === 64) {
    const hs = ++i;
    i = span(W, b, i);
    if (i === hs) return undefined;
  }
  const ce = i;
  const cr = skipWs(b, i);
  if (b[cr] !== 13) return undefined;
  crAt = cr;
  return str(b, s, cs, ce);
}

import { isToken, PARAMCHAR, percentDecode, percentEncode, TOKEN, validEscapes } from './chars.ts';
import { SipParseError } from './errors.ts';
import { type Lexer, quote } from './lexer.ts';

/** gen-value = token / host / quoted-string: token characters plus those of an IPv6 reference. */
export const GENVALUE = TOKEN.slice();
for (const c of '[]:') GENVALUE[c.charCodeAt(0)] = 1;
const GENNAME = TOKEN;

/** How a parameter list is written. */
export type ParamStyle = 'header' | 'uri' | 'auth';

/**
 * Parameters in order, with valueless flags kept (`;lr`, `;rport`). Names are matched
 * case-insensitively; values are returned unquoted (header parameters) or with their
 * %-escapes decoded (URI parameters).
 */
/** Parameters as constructors take them: `[name, value]` pairs (a `Params` is one), or a plain object. */
export type ParamsInit = Iterable<[string, string | null]> | Record<string, string | null>;

/** The pairs of a `ParamsInit`. */
export function paramEntries(
  x: ParamsInit | undefined,
): Iterable<[string, string | null]> | undefined {
  if (x === undefined) return undefined;
  if (Symbol.iterator in x) return x as Iterable<[string, string | null]>;
  return Object.entries(x);
}

/** Shared by every empty parameter list until one is added. */
export const NO_PARAMS: (string | null)[] = [];

/** Where `parseHeaderParams` collects before copying to an exact-size array. */
const collect: (string | null)[] = new Array(32).fill(null);

export class Params implements Iterable<[string, string | null]> {
  /** @internal names and values, alternating */
  kv: (string | null)[];
  /** @internal bit i set: value i was written as a quoted string */
  quotedMask = 0;
  /** True once the list was changed after parsing. */
  dirty = false;
  readonly style: ParamStyle;

  constructor(style: ParamStyle = 'header', init?: Iterable<[string, string | null]>) {
    this.style = style;
    this.kv = NO_PARAMS;
    if (init) for (const [k, v] of init) this.append(k, v);
  }

  get size(): number {
    return this.kv.length >> 1;
  }

  private find(name: string): number {
    return findParam(this.kv, name);
  }

  /** The value, `null` for a flag, `undefined` when absent. */
  get(name: string): string | null | undefined {
    const i = this.find(name);
    return i < 0 ? undefined : this.kv[2 * i + 1];
  }

  has(name: string): boolean {
    return this.find(name) >= 0;
  }

  /** Set (replace or append) a parameter; `null` makes a flag. */
  set(name: string, value: string | null = null, options?: { quoted?: boolean }): this {
    if (!isToken(name)) throw new TypeError(`invalid parameter name: ${JSON.stringify(name)}`);
    if (value !== null && /[\r\n\0]/.test(value))
      throw new TypeError('a parameter value cannot contain CR, LF or NUL');
    const i = this.find(name);
    if (i >= 0) {
      this.kv[2 * i + 1] = value;
      this.setQuoted(i, options?.quoted ?? false);
    } else {
      this.append(name, value, options?.quoted ?? false);
    }
    this.dirty = true;
    return this;
  }

  delete(name: string): boolean {
    const i = this.find(name);
    if (i < 0) return false;
    this.kv = this.kv.slice();
    this.kv.splice(2 * i, 2);
    // Shift the quoted bits above i down by one.
    const low = this.quotedMask & ((1 << i) - 1);
    const high = (this.quotedMask >>> (i + 1)) << i;
    this.quotedMask = low | high;
    this.dirty = true;
    return true;
  }

  /** @internal */
  append(name: string, value: string | null, quoted = false): void {
    if (this.kv === NO_PARAMS) this.kv = [];
    this.kv.push(name, value);
    if (quoted) this.setQuoted((this.kv.length >> 1) - 1, true);
  }

  private setQuoted(i: number, q: boolean): void {
    if (i >= 31) return;
    if (q) this.quotedMask |= 1 << i;
    else this.quotedMask &= ~(1 << i);
  }

  isQuoted(name: string): boolean {
    const i = this.find(name);
    return i >= 0 && i < 31 && (this.quotedMask & (1 << i)) !== 0;
  }

  *[Symbol.iterator](): Iterator<[string, string | null]> {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) yield [kv[i] as string, kv[i + 1] as string | null];
  }

  /** A plain object of the parameters (lower-cased names). */
  toJSON(): Record<string, string | null> {
    const o: Record<string, string | null> = {};
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2)
      o[(kv[i] as string).toLowerCase()] = kv[i + 1] as string | null;
    return o;
  }

  /** Encode as written on the wire: `;a=b;c` (header, uri) or `a="b", c=d` (auth). */
  toString(): string {
    let out = '';
    const kv = this.kv;
    for (let j = 0; j < kv.length; j += 2) {
      const i = j >> 1;
      const name = kv[j] as string;
      const v = kv[j + 1];
      const q = i < 31 && (this.quotedMask & (1 << i)) !== 0;
      if (this.style === 'auth') {
        out += `${i === 0 ? '' : ', '}${name}`;
        if (v !== null && v !== undefined) out += `=${q ? quote(v, true) : quoteGen(v)}`;
        continue;
      }
      out += `;${name}`;
      if (v === null || v === undefined) continue;
      if (this.style === 'uri') out += `=${percentEncode(v, PARAMCHAR)}`;
      else out += `=${q ? quote(v, true) : quoteGen(v)}`;
    }
    return out;
  }
}

/** The index of parameter `name` (any case) in names and values `kv`, or -1. */
function findParam(kv: (string | null)[], name: string): number {
  const n = name.length;
  let lower: string | undefined;
  for (let i = 0; i < kv.length; i += 2) {
    const k = kv[i] as string;
    if (k.length !== n) continue;
    if (k === name) return i >> 1;
    lower ??= name.toLowerCase();
    if (k.toLowerCase() === lower) return i >> 1;
  }
  return -1;
}

/** The value of parameter `name` in names and values `kv`: `null` for a flag, `undefined` when absent. */
export function paramIn(kv: (string | null)[], name: string): string | null | undefined {
  const i = findParam(kv, name);
  return i < 0 ? undefined : kv[2 * i + 1];
}

/**
 * The parameters of a typed value: the names and values as parsed, until they are
 * asked for as `Params`.
 */
export function paramsOf(p: Params | (string | null)[]): Params {
  if (!Array.isArray(p)) return p;
  const q = new Params('header');
  q.kv = p;
  return q;
}

function quoteGen(v: string): string {
  if (v.length === 0) return '""';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c > 127 || GENVALUE[c] === 0) return quote(v, true);
  }
  return v;
}

/**
 * Parse `*( SEMI generic-param )` at the lexer's position, into `params`. Stops before
 * anything that is not a `;` (a comma, or the end).
 */
export function parseHeaderParams(lx: Lexer, params: Params): void {
  const s = lx.s;
  const end = lx.end;
  let i = lx.i;
  let n = 0;
  params.quotedMask = 0;
  for (;;) {
    i = skipLws(s, i, end);
    let c = s.charCodeAt(i);
    if (i >= end || c !== 59) break;
    i = skipLws(s, i + 1, end);
    c = s.charCodeAt(i);
    const ns = i;
    while (i < end && c < 128 && GENNAME[c] === 1) c = s.charCodeAt(++i);
    if (i === ns) {
      lx.i = i;
      throw lx.fail('expected a parameter name');
    }
    const name = s.slice(ns, i);
    i = skipLws(s, i, end);
    c = s.charCodeAt(i);
    if (i < end && c === 61) {
      i = skipLws(s, i + 1, end);
      c = s.charCodeAt(i);
      if (c === 34) {
        lx.i = i;
        if (n >> 1 < 31) params.quotedMask |= 1 << (n >> 1);
        if (n + 2 > collect.length) collect.length = n + 16;
        collect[n++] = name;
        collect[n++] = lx.quoted();
        i = lx.i;
        continue;
      }
      const vs = i;
      while (i < end && c < 128 && GENVALUE[c] === 1) c = s.charCodeAt(++i);
      if (i === vs) {
        lx.i = i;
        throw lx.fail('expected a parameter value');
      }
      if (n + 2 > collect.length) collect.length = n + 16;
      collect[n++] = name;
      collect[n++] = s.slice(vs, i);
    } else {
      if (n + 2 > collect.length) collect.length = n + 16;
      collect[n++] = name;
      collect[n++] = null;
    }
  }
  lx.i = i;
  if (n > 0) params.kv = collect.slice(0, n);
}

/** Skip SP, HTAB and folds (CRLF followed by SP or HTAB). */
function skipLws(s: string, i: number, end: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 32 || c === 9) i++;
    else if (c === 13 && i + 2 < end && s.charCodeAt(i + 1) === 10) i += 3;
    else return i;
  }
}

/**
 * Parse auth-params `name=value *(COMMA name=value)` (RFC 3261 §25.1, RFC 7616) to the end.
 */
export function parseAuthParams(lx: Lexer, params: Params): void {
  lx.ws();
  if (lx.atEnd()) return;
  for (;;) {
    const name = lx.token('an auth parameter name');
    lx.expect(61, "'='");
    if (lx.peek() === 34) params.append(name, lx.quoted(), true);
    else params.append(name, lx.run(GENVALUE, 'an auth parameter value'));
    lx.ws();
    if (lx.atEnd()) return;
    lx.expect(44, "','");
    // Tolerate empty list elements (RFC 7230 #rule).
    while (lx.eat(44)) {}
  }
}

/**
 * Parse URI parameters `;name[=value]` in `s` from `start` to `end` (the text after the
 * host and port, up to `?` or the end of the URI).
 */
export function parseUriParams(s: string, start: number, end: number, params: Params): void {
  let i = start;
  while (i < end) {
    if (s.charCodeAt(i) !== 59)
      throw new SipParseError('SIP_ERR_PARSE_URI', `expected ';' in URI parameters of ${s}`, i);
    let j = i + 1;
    let eq = -1;
    while (j < end && s.charCodeAt(j) !== 59) {
      const c = s.charCodeAt(j);
      if (c === 61 && eq < 0) eq = j;
      else if (c === 37) {
        /* escapes checked below */
      } else if (c > 127 || PARAMCHAR[c] === 0)
        throw new SipParseError(
          'SIP_ERR_PARSE_URI',
          `invalid character '${s[j]}' in URI parameter of ${s}`,
          j,
        );
      j++;
    }
    const nameEnd = eq < 0 ? j : eq;
    if (nameEnd === i + 1)
      throw new SipParseError('SIP_ERR_PARSE_URI', `empty URI parameter name in ${s}`, i);
    if (!validEscapes(s, i + 1, j))
      throw new SipParseError('SIP_ERR_PARSE_URI', `bad %-escape in URI parameter of ${s}`, i);
    const name = percentDecode(s.slice(i + 1, nameEnd));
    params.append(name, eq < 0 ? null : percentDecode(s.slice(eq + 1, j)));
    i = j;
  }
}

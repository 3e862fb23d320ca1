import { isAscii, latin1, utf8Decode, utf8Encode, utf8EncodeWith } from './chars.ts';

const EMPTY = new Uint8Array(0);
/** Shared by every header that is absent (never changed in place). */
const NONE: unknown[] = Object.freeze([]) as unknown as unknown[];

import { SipMessageError, SipParseError } from './errors.ts';
import { readCallId, readCSeq, readNameAddr, readVias } from './fast.ts';
import { type HeaderDef, headerDef } from './headers.ts';
import { Lexer, splitList } from './lexer.ts';
import type { Contact, NameAddr } from './name-addr.ts';
import type { CSeq, MediaType } from './typed.ts';
import { parseUri, type Uri } from './uri.ts';
import type { Via } from './via.ts';

/**
 * The header section of the message whose typed values were last read, decoded one to
 * one: the strings of typed values are copied out of it.
 */
let srcOwner: object | undefined;
let srcText = '';
/** @internal `text`: the bytes of `m` decoded one to one, as the parser did. */
export function readFrom(m: SipMessage, text: string): void {
  srcOwner = m;
  srcText = text;
}

/** @internal see `SipMessage.seed` */
export function seed(
  m: SipMessage,
  via: Via[] | undefined,
  from: NameAddr | undefined,
  callId: string | undefined,
  cseq: CSeq | undefined,
): void {
  SipMessage.seed(m, via, from, callId, cseq);
}

/** @internal see `SipMessage.appendLines` */
export function appendLines(m: SipMessage, d: HeaderDef, texts: string[], typed?: unknown[]): void {
  SipMessage.appendLines(m, d, texts, typed);
}

/** The first `n` values of `vias`, in an array of their own of exactly that size. */
export function exactVias(vias: Via[], n: number): Via[] {
  return n === 1 ? [vias[0] as Via] : n === 2 ? [vias[0] as Via, vias[1] as Via] : vias.slice(0, n);
}

/** The state of a message that only some messages need. */
class Extra {
  lines: HeaderLine[] | undefined = undefined;
  cache: Map<string, unknown[]> | undefined = undefined;
  bodyBytes: Uint8Array | undefined = undefined;
  startText: string | undefined = undefined;
  startChanged = false;
  pristine: boolean;
  /** -1 not known yet, 0 ASCII, 1 UTF-8 */
  utf8 = -1;
  constructor(pristine: boolean) {
    this.pristine = pristine;
  }
}

/** A header line once the message has been changed. */
interface HeaderLine {
  /** The name as written. */
  name: string;
  /** The header's key (lower-cased long form). */
  key: string;
  /** The value text, possibly with folds. */
  value: string;
  /** The whole line as received, while unchanged. */
  raw: string | undefined;
}

/** Anything that can be written as a header value. */
export type HeaderValue = string | number | { toString(): string };

function lowerCode(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

function unfold(s: string): string {
  return s.indexOf('\r') < 0 ? s : s.replace(/\r\n[ \t]+/g, ' ');
}

/** Skip the white space before the colon, the colon, and the white space after it. */
function valueStartBytes(b: Uint8Array, i: number, end: number): number {
  while (i < end && b[i - 1] !== 58) i++;
  for (;;) {
    const c = b[i];
    if (i < end && (c === 32 || c === 9)) i++;
    else if (c === 13 && i + 2 < end && b[i + 1] === 10) i += 3;
    else return i;
  }
}

/** Where a new header goes: at the end, but before a Content-Length that ends the header section. */
function endPosition(lines: HeaderLine[]): number {
  const n = lines.length;
  return n > 0 && (lines[n - 1] as HeaderLine).key === 'content-length' ? n - 1 : n;
}

function isDirty(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as { dirty?: boolean }).dirty === true;
}

/**
 * A header value from the API may not break the line: no CR or LF, so no second header
 * can be injected. (A NUL may appear, escaped, in a quoted string: RFC 3261 §25.1.)
 */
function checkValue(name: string, text: string): string {
  if (text.indexOf('\r') >= 0 || text.indexOf('\n') >= 0)
    throw new SipMessageError(`the value of ${name} cannot contain CR or LF`);
  return text;
}

const HEADER_NAME = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
/** Header keys already checked against `HEADER_NAME` (bounded: names come from the API). */
const checkedNames = new Set<string>();

/** Throws unless `d.key` is a valid header name (RFC 3261 §25.1: a token). */
function checkName(name: string, d: HeaderDef): void {
  if (checkedNames.has(d.key)) return;
  if (d.key.length === 0 || !HEADER_NAME.test(d.key))
    throw new SipMessageError(`invalid header name: ${JSON.stringify(name)}`);
  if (checkedNames.size < 1024) checkedNames.add(d.key);
}

/**
 * A SIP message: what requests and responses share. Header lines stay as received
 * text; a header is parsed into its typed form when first read, and cached.
 */
export abstract class SipMessage {
  abstract readonly isRequest: boolean;

  /**
   * @internal The bytes received; header and body offsets are offsets into them.
   */
  protected b: Uint8Array | undefined;
  /**
   * @internal One number per header line: bits 0-19 where the line ends (its CR),
   * bits 20-30 the length of its name, bit 31 set when the line is folded. Undefined
   * once the message was changed (see `lines`).
   */
  protected idx: number[] | undefined;
  /**
   * @internal The first line of Via, From, To, Call-ID and CSeq, 6 bits each in that
   * order; 63 when the parser did not note it (absent, or too far down), to be searched.
   */
  protected hot: number;
  /** @internal offset of the start line */
  protected hs: number;
  /** @internal offset of the CR that ends the start line */
  protected startEnd: number;
  /** @internal where the body ends in `b` */
  protected be: number;
  protected cVia: Via[] | undefined;
  protected cCallId: string | undefined;
  protected cCSeq: CSeq | undefined;
  protected cFrom: NameAddr | undefined;
  protected cTo: NameAddr | undefined;
  /**
   * @internal Values the parser read ahead from the received lines (see `seed`): an
   * accessor takes its value from here when first asked, and caches it as it would one
   * it read itself. Dropped when the message is changed before they were asked for, so
   * that the lines are read again, as they would have been.
   */
  protected sVia: Via[] | undefined;
  protected sCallId: string | undefined;
  protected sCSeq: CSeq | undefined;
  protected sFrom: NameAddr | undefined;
  /** @internal what only some messages need, created on first use */
  protected x: Extra | undefined;

  /** @internal */
  constructor(
    b: Uint8Array | undefined,
    hs: number,
    startEnd: number,
    idx: number[] | undefined,
    be: number,
    body: Uint8Array | undefined,
    hot: number,
  ) {
    this.b = b;
    this.idx = idx;
    this.hot = hot;
    this.hs = hs;
    this.startEnd = startEnd;
    this.be = be;
    this.cVia = undefined;
    this.cCallId = undefined;
    this.cCSeq = undefined;
    this.cFrom = undefined;
    this.cTo = undefined;
    this.sVia = undefined;
    this.sCallId = undefined;
    this.sCSeq = undefined;
    this.sFrom = undefined;
    this.x = undefined;
    if (idx === undefined) this.ext().lines = [];
    if (body !== undefined) this.ext().bodyBytes = body;
  }

  /**
   * @internal Values of the common headers the parser already read from the received
   * lines, as their accessors would read them first (undefined: read on access).
   */
  static seed(
    m: SipMessage,
    via: Via[] | undefined,
    from: NameAddr | undefined,
    callId: string | undefined,
    cseq: CSeq | undefined,
  ): void {
    m.sVia = via;
    m.sFrom = from;
    m.sCallId = callId;
    m.sCSeq = cseq;
  }

  /**
   * @internal Add lines of header `d` at the end of a message being built (no lines of
   * it yet, nothing cached for it), as `setHeader` would: the texts are checked here.
   */
  static appendLines(m: SipMessage, d: HeaderDef, texts: string[], typed?: unknown[]): void {
    const lines = m.materialize();
    for (const value of texts)
      lines.push({ name: d.name, key: d.key, value: checkValue(d.name, value), raw: undefined });
    if (typed !== undefined) m.cacheSet(d.key, typed);
  }

  /** @internal */
  protected ext(): Extra {
    return (this.x ??= new Extra(this.idx !== undefined));
  }

  /** @internal header lines, once the message has been changed */
  protected get lines(): HeaderLine[] | undefined {
    return this.x?.lines;
  }
  protected set lines(v: HeaderLine[] | undefined) {
    this.ext().lines = v;
  }
  /** @internal typed values by header key */
  protected get cache(): Map<string, unknown[]> | undefined {
    return this.x?.cache;
  }
  protected set cache(v: Map<string, unknown[]> | undefined) {
    this.ext().cache = v;
  }
  /** @internal the body, once it was read, set or built */
  protected get bodyBytes(): Uint8Array | undefined {
    return this.x?.bodyBytes;
  }
  protected set bodyBytes(v: Uint8Array | undefined) {
    this.ext().bodyBytes = v;
  }
  /** @internal false once anything was changed */
  protected get pristine(): boolean {
    return this.x === undefined ? this.idx !== undefined : this.x.pristine;
  }
  protected set pristine(v: boolean) {
    this.ext().pristine = v;
  }
  /** @internal the start line must be rebuilt */
  protected get startChanged(): boolean {
    return this.x?.startChanged ?? false;
  }
  protected set startChanged(v: boolean) {
    this.ext().startChanged = v;
  }
  /** @internal the start line's text, kept when the header lines are materialized */
  protected get startText(): string | undefined {
    return this.x?.startText;
  }
  protected set startText(v: string | undefined) {
    this.ext().startText = v;
  }
  /** @internal whether the header section has bytes above 0x7F (read as UTF-8) */
  protected get utf8(): boolean {
    const x = this.ext();
    if (x.utf8 < 0) {
      const b = this.b as Uint8Array;
      x.utf8 = isAscii(b, this.hs, this.headerEnd()) ? 0 : 1;
    }
    return x.utf8 === 1;
  }
  /** @internal where the body starts in `b` */
  protected get bs(): number {
    return Math.min(this.headerEnd() + 4, (this.b as Uint8Array).length);
  }
  /** @internal the first line of hot header `k` (see `hot`), or -1 to search */
  private hotLine(k: number): number {
    const l = (this.hot >>> (6 * k)) & 63;
    return l === 63 ? -1 : l;
  }
  protected get lVia(): number {
    return this.hotLine(0);
  }
  protected get lFrom(): number {
    return this.hotLine(1);
  }
  protected get lTo(): number {
    return this.hotLine(2);
  }
  protected get lCallId(): number {
    return this.hotLine(3);
  }
  protected get lCSeq(): number {
    return this.hotLine(4);
  }

  /** @internal text of the header section between two offsets */
  protected text(a: number, e: number): string {
    const b = this.b as Uint8Array;
    return this.utf8 ? utf8Decode(b.subarray(a, e)) : latin1(b, a, e);
  }

  // ---- typed accessors of the common headers ----

  /** Call-ID (compact `i`). Throws `SipParseError` when missing or malformed. */
  get callId(): string {
    let v = this.cCallId;
    if (v === undefined) {
      v = this.sCallId;
      const l = v === undefined ? this.fastLine(this.lCallId) : -1;
      if (l >= 0) {
        const v0 = (this.idx as number[])[l] as number;
        v = readCallId(this.b as Uint8Array, this.src(), this.valueAt(l, v0));
      }
      v ??= this.required<string>(CALL_ID, this.lCallId);
      this.cCallId = v;
    }
    return v;
  }

  /** CSeq. Throws `SipParseError` when missing or malformed. */
  get cseq(): CSeq {
    let v = this.cCSeq;
    if (v === undefined) {
      v = this.sCSeq;
      const l = v === undefined ? this.fastLine(this.lCSeq) : -1;
      if (l >= 0) {
        const v0 = (this.idx as number[])[l] as number;
        v = readCSeq(this.b as Uint8Array, this.src(), this.valueAt(l, v0));
      }
      v ??= this.required<CSeq>(CSEQ, this.lCSeq);
      this.cCSeq = v;
    }
    return v;
  }

  /** From. Throws `SipParseError` when missing or malformed. */
  get from(): NameAddr {
    return (this.cFrom ??= this.sFrom ?? this.nameAddr(FROM, this.lFrom));
  }

  /** To. Throws `SipParseError` when missing or malformed. */
  get to(): NameAddr {
    return (this.cTo ??= this.nameAddr(TO, this.lTo));
  }

  private nameAddr(d: HeaderDef, hot: number): NameAddr {
    const l = this.fastLine(hot);
    if (l >= 0) {
      const v0 = (this.idx as number[])[l] as number;
      const v = readNameAddr(
        this.b as Uint8Array,
        this.src(),
        this.valueAt(l, v0),
        v0 & 0xfffff,
        d.name,
      );
      if (v !== undefined) return v;
    }
    return this.required<NameAddr>(d, hot);
  }

  /** Every Via value, top first. */
  get via(): Via[] {
    return (this.cVia ??= this.sVia ?? this.fastVias() ?? this.getAll<Via>('via'));
  }

  /** The Via values read from the received lines, or undefined when one of them needs the general parser. */
  private fastVias(): Via[] | undefined {
    let l = this.fastLine(this.lVia);
    if (l < 0) return undefined;
    const idx = this.idx as number[];
    const b = this.b as Uint8Array;
    const s = this.src();
    const out: Via[] = [];
    const n = idx.length;
    let v = idx[l] as number;
    let count = readVias(b, s, this.valueAt(l, v), v & 0xfffff, out, 0);
    if (count < 0) return undefined;
    for (l++; l < n; l++) {
      v = idx[l] as number;
      const len = (v >>> 20) & 0x7ff;
      if ((len !== 3 && len !== 1) || !this.lineIs(l, VIA)) continue;
      if (v < 0) return undefined;
      count = readVias(b, s, this.valueAt(l, v), v & 0xfffff, out, count);
      if (count < 0) return undefined;
    }
    return exactVias(out, count);
  }

  /** `l` when the values of line `l` can be read from the received bytes, else -1. */
  private fastLine(l: number): number {
    return this.lines === undefined && l >= 0 && ((this.idx as number[])[l] as number) >= 0
      ? l
      : -1;
  }

  /** Where the value of line `l` (whose index entry is `v`) starts: after the colon. */
  private valueAt(l: number, v: number): number {
    const b = this.b as Uint8Array;
    let i = this.lineStart(l) + ((v >>> 20) & 0x7ff);
    while (b[i] !== 58) i++;
    return i + 1;
  }

  /** The header section decoded one to one (shared while this message is the one being read). */
  private src(): string {
    if (srcOwner !== this) {
      srcText = latin1(this.b as Uint8Array, 0, this.headerEnd());
      srcOwner = this;
    }
    return srcText;
  }

  /** The top Via, if any. */
  get topVia(): Via | undefined {
    return this.via[0];
  }

  /** Every Contact value. */
  get contacts(): Contact[] {
    return this.getAll<Contact>('contact');
  }

  get maxForwards(): number | undefined {
    return this.get<number>('max-forwards');
  }

  get expires(): number | undefined {
    return this.get<number>('expires');
  }

  get contentLength(): number | undefined {
    return this.get<number>('content-length');
  }

  get contentType(): MediaType | undefined {
    return this.get<MediaType>('content-type');
  }

  /** The body (empty when there is none). */
  get body(): Uint8Array {
    if (this.bodyBytes === undefined)
      this.bodyBytes =
        this.be === this.bs ? EMPTY : (this.b as Uint8Array).subarray(this.bs, this.be);
    return this.bodyBytes;
  }

  /** The body decoded as UTF-8. */
  get bodyText(): string {
    const body = this.body;
    return body.length === 0 ? '' : utf8Decode(body);
  }

  /** The first value of a single-value header, parsed; throws when it is missing. */
  private required<T>(d: HeaderDef, hot: number): T {
    const cached = this.cache?.get(d.key);
    if (cached !== undefined && cached.length > 0) return cached[0] as T;
    const n = this.lineCount();
    for (let i = this.lines === undefined && hot >= 0 ? hot : 0; i < n; i++) {
      if (!this.lineIs(i, d)) continue;
      const lx = new Lexer(this.lineValue(i), d.name);
      const v = (d.parse as (lx: Lexer) => unknown)(lx);
      lx.finish();
      return v as T;
    }
    throw new SipParseError(
      'SIP_ERR_PARSE_MISSING_HEADER',
      `missing ${d.name} header`,
      -1,
      400,
      d.name,
    );
  }

  // ---- generic header access ----

  /** Number of header lines. */
  protected lineCount(): number {
    return this.lines !== undefined ? this.lines.length : (this.idx as number[]).length;
  }

  /** Where line `i` starts (its name). */
  private lineStart(i: number): number {
    return i === 0 ? this.startEnd + 2 : (((this.idx as number[])[i - 1] as number) & 0xfffff) + 2;
  }

  /** Whether line `i` is header `d`. */
  protected lineIs(i: number, d: HeaderDef): boolean {
    if (this.lines !== undefined) return (this.lines[i] as HeaderLine).key === d.key;
    const ns = this.lineStart(i);
    const len = (((this.idx as number[])[i] as number) >>> 20) & 0x7ff;
    const key = d.key;
    if (len === key.length) {
      const b = this.b as Uint8Array;
      for (let j = 0; j < len; j++)
        if (lowerCode(b[ns + j] as number) !== key.charCodeAt(j)) return false;
      return true;
    }
    if (len !== 1 || d.compact === undefined) return false;
    const c = (this.b as Uint8Array)[ns] as number;
    return lowerCode(c) === d.compact.charCodeAt(0);
  }

  /** The value text of line `i`, with folds as received. */
  protected lineValue(i: number): string {
    if (this.lines !== undefined) return (this.lines[i] as HeaderLine).value;
    const v = (this.idx as number[])[i] as number;
    const end = v & 0xfffff;
    const ne = this.lineStart(i) + ((v >>> 20) & 0x7ff);
    const vs = valueStartBytes(this.b as Uint8Array, ne + 1, end);
    return this.text(vs, end);
  }

  protected lineName(i: number): string {
    if (this.lines !== undefined) return (this.lines[i] as HeaderLine).name;
    const ns = this.lineStart(i);
    return this.text(ns, ns + ((((this.idx as number[])[i] as number) >>> 20) & 0x7ff));
  }

  private cacheGet(key: string): unknown[] | undefined {
    switch (key) {
      case 'via':
        return this.cVia;
      default:
        return this.cache?.get(key);
    }
  }

  private cacheSet(key: string, values: unknown[] | undefined): void {
    if (key === 'via') this.cVia = values as Via[] | undefined;
    else if (values === undefined) this.cache?.delete(key);
    else (this.cache ??= new Map()).set(key, values);
    if (values === undefined) {
      if (key === 'call-id') this.cCallId = undefined;
      else if (key === 'cseq') this.cCSeq = undefined;
      else if (key === 'from') this.cFrom = undefined;
      else if (key === 'to') this.cTo = undefined;
    }
  }

  /**
   * Every typed value of a header, in order: comma-separated values of list headers
   * are separate entries. Headers without a typed form give their text.
   * Throws `SipParseError` when a value is malformed.
   */
  getAll<T = unknown>(name: string): T[] {
    const d = headerDef(name);
    const cached = this.cacheGet(d.key);
    if (cached !== undefined) return cached as T[];
    const out: unknown[] = [];
    const n = this.lineCount();
    const first = this.lines === undefined && d.key === 'via' ? Math.max(this.lVia, 0) : 0;
    for (let i = first; i < n; i++) {
      if (!this.lineIs(i, d)) continue;
      const text = this.lineValue(i);
      if (d.parse !== undefined) {
        const lx = new Lexer(text, d.name);
        if (d.list) {
          lx.ws();
          if (lx.atEnd()) throw lx.fail('empty value');
          for (;;) {
            out.push(d.parse(lx));
            lx.ws();
            if (lx.atEnd()) break;
            if (lx.peek() !== 44) throw lx.fail("expected ','");
            lx.i++;
          }
        } else {
          out.push(d.parse(lx));
          lx.finish();
        }
      } else if (d.list) {
        for (const v of splitList(unfold(text))) out.push(v);
      } else {
        out.push(unfold(text).trimEnd());
      }
    }
    // An exact-size copy: a pushed-to array keeps spare room.
    const values = out.length === 0 ? NONE : out.slice();
    this.cacheSet(d.key, values);
    return values as T[];
  }

  /** The first typed value of a header, or `undefined`. */
  get<T = unknown>(name: string): T | undefined {
    return this.getAll<T>(name)[0];
  }

  /** The first value of a header as text (unfolded), or `undefined`. */
  header(name: string): string | undefined {
    return this.headers(name)[0];
  }

  /** Every value of a header as text: one per line, and one per comma-separated value of list headers. */
  headers(name: string): string[] {
    const d = headerDef(name);
    const out: string[] = [];
    const n = this.lineCount();
    for (let i = 0; i < n; i++) {
      if (!this.lineIs(i, d)) continue;
      const v = unfold(this.lineValue(i)).trimEnd();
      if (d.list) for (const x of splitList(v)) out.push(x);
      else out.push(v);
    }
    return out;
  }

  /** Whether the message has a header of this name. */
  has(name: string): boolean {
    const d = headerDef(name);
    const n = this.lineCount();
    for (let i = 0; i < n; i++) if (this.lineIs(i, d)) return true;
    return false;
  }

  /** Number of header lines of this name. */
  countLines(name: string): number {
    const d = headerDef(name);
    let c = 0;
    const n = this.lineCount();
    for (let i = 0; i < n; i++) if (this.lineIs(i, d)) c++;
    return c;
  }

  /** @internal The first of `defs` that has more than one line, in the order of `defs`. */
  firstRepeated(defs: readonly HeaderDef[]): HeaderDef | undefined {
    let seen = 0;
    let twice = 0;
    const n = this.lineCount();
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < defs.length; j++) {
        if (!this.lineIs(i, defs[j] as HeaderDef)) continue;
        const bit = 1 << j;
        if ((seen & bit) !== 0) twice |= bit;
        seen |= bit;
        break;
      }
    }
    if (twice === 0) return undefined;
    for (let j = 0; j < defs.length; j++) if ((twice & (1 << j)) !== 0) return defs[j];
    return undefined;
  }

  /** The names of the header lines, in order, as written. */
  headerNames(): string[] {
    const out: string[] = [];
    const n = this.lineCount();
    for (let i = 0; i < n; i++) out.push(this.lineName(i));
    return out;
  }

  /** Every header line as `[name, value]`, in order. */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    const n = this.lineCount();
    for (let i = 0; i < n; i++) out.push([this.lineName(i), unfold(this.lineValue(i)).trimEnd()]);
    return out;
  }

  // ---- changing the message ----

  /** @internal Turn offsets into lines, and write typed values that were changed into them. */
  protected materialize(): HeaderLine[] {
    this.pristine = false;
    if (this.lines === undefined) {
      this.sVia = undefined;
      this.sCallId = undefined;
      this.sCSeq = undefined;
      this.sFrom = undefined;
      const idx = this.idx as number[];
      const lines: HeaderLine[] = [];
      for (let i = 0; i < idx.length; i++) {
        const ns = this.lineStart(i);
        const v = idx[i] as number;
        const name = this.text(ns, ns + ((v >>> 20) & 0x7ff));
        lines.push({
          name,
          key: headerDef(name).key,
          value: this.lineValue(i),
          raw: this.text(ns, v & 0xfffff),
        });
      }
      if (!this.startChanged) this.startText = this.text(this.hs, this.startEnd);
      this.body;
      // Offsets into the header section are read later (reason, Request-URI) with
      // the same decoding.
      void this.utf8;
      this.lines = lines;
      this.idx = undefined;
    }
    this.flush();
    return this.lines;
  }

  /** Rewrite the lines of every header whose typed values were changed in place. */
  private flush(): void {
    let keys: string[] | undefined;
    if (this.cVia?.some(isDirty)) keys = ['via'];
    if (this.cache) for (const [k, v] of this.cache) if (v.some(isDirty)) (keys ??= []).push(k);
    if (keys === undefined) return;
    for (const k of keys) {
      const values = this.cacheGet(k) as unknown[];
      this.replaceLines(headerDef(k), values.map(String));
    }
  }

  private replaceLines(d: HeaderDef, values: string[], at?: 'first' | 'last'): void {
    const lines = this.lines as HeaderLine[];
    let pos = -1;
    for (let i = lines.length - 1; i >= 0; i--) {
      if ((lines[i] as HeaderLine).key === d.key) {
        lines.splice(i, 1);
        pos = i;
      }
    }
    if (pos < 0) pos = at === 'first' ? 0 : endPosition(lines);
    const add = values.map((value) => ({ name: d.name, key: d.key, value, raw: undefined }));
    lines.splice(pos, 0, ...add);
  }

  private prepare(
    name: string,
    value: HeaderValue | readonly HeaderValue[],
  ): [HeaderDef, string[], unknown[] | undefined] {
    const d = headerDef(name);
    checkName(name, d);
    const list = (Array.isArray(value) ? value : [value]) as HeaderValue[];
    const texts = list.map((v) => checkValue(d.name, String(v)));
    const typed = list.every((v) => typeof v === 'object') ? list : undefined;
    return [d, texts, typed];
  }

  /** Replace every line of a header with the given value(s), one line each. */
  setHeader(name: string, value: HeaderValue | readonly HeaderValue[]): this {
    const [d, texts, typed] = this.prepare(name, value);
    this.materialize();
    this.replaceLines(d, texts);
    this.cacheSet(d.key, undefined);
    if (typed !== undefined && d.parse !== undefined) this.cacheSet(d.key, typed);
    return this;
  }

  /** Add a header line; `first` puts it before the other lines of the same header (as a proxy does with Via). */
  addHeader(
    name: string,
    value: HeaderValue | readonly HeaderValue[],
    options?: { first?: boolean },
  ): this {
    const [d, texts] = this.prepare(name, value);
    const lines = this.materialize();
    let pos = -1;
    for (let i = 0; i < lines.length; i++) {
      if ((lines[i] as HeaderLine).key === d.key) {
        if (options?.first) {
          pos = i;
          break;
        }
        pos = i + 1;
      }
    }
    if (pos < 0) pos = options?.first && d.key === 'via' ? 0 : endPosition(lines);
    lines.splice(
      pos,
      0,
      ...texts.map((v) => ({ name: d.name, key: d.key, value: v, raw: undefined })),
    );
    this.cacheSet(d.key, undefined);
    return this;
  }

  /** Remove every line of a header; returns how many were removed. */
  removeHeader(name: string): number {
    const d = headerDef(name);
    const lines = this.materialize();
    let removed = 0;
    for (let i = lines.length - 1; i >= 0; i--) {
      if ((lines[i] as HeaderLine).key === d.key) {
        lines.splice(i, 1);
        removed++;
      }
    }
    this.cacheSet(d.key, undefined);
    return removed;
  }

  /** Remove the first value of a header (the top Via, the first Route...). */
  removeFirst(name: string): boolean {
    const d = headerDef(name);
    const values = this.getAll(name);
    if (values.length === 0) return false;
    const rest = values.slice(1);
    if (rest.length === 0) this.removeHeader(name);
    else if (d.parse !== undefined) this.setHeader(name, rest as HeaderValue[]);
    else this.setHeader(name, rest.map(String));
    return true;
  }

  /** Replace the body; Content-Length follows, and Content-Type when given. */
  setBody(body: Uint8Array | string, contentType?: string | MediaType): this {
    this.materialize();
    this.bodyBytes = typeof body === 'string' ? utf8Encode(body) : body;
    if (contentType !== undefined) this.setHeader('Content-Type', contentType);
    else if (this.bodyBytes.length === 0) this.removeHeader('Content-Type');
    this.setHeader('Content-Length', this.bodyBytes.length);
    this.pristine = false;
    return this;
  }

  // ---- writing ----

  protected abstract buildStartLine(): string;

  /** The start line, as it will be written. */
  get startLine(): string {
    if (this.startChanged) return this.buildStartLine();
    return this.startText ?? this.text(this.hs, this.startEnd);
  }

  private unchanged(): boolean {
    if (!this.pristine || this.startChanged) return false;
    if (this.cVia?.some(isDirty)) return false;
    if (this.cache) for (const v of this.cache.values()) if (v.some(isDirty)) return false;
    return true;
  }

  /** The header section as text: start line, header lines, and the blank line. */
  headerText(): string {
    if (this.unchanged()) return `${this.text(this.hs, this.headerEnd())}\r\n\r\n`;
    const lines = this.materialize();
    if (!lines.some((l) => l.key === 'content-length')) {
      lines.push({
        name: 'Content-Length',
        key: 'content-length',
        value: String(this.body.length),
        raw: undefined,
      });
    }
    let out = `${this.startLine}\r\n`;
    for (const l of lines) out += `${l.raw ?? `${l.name}: ${l.value}`}\r\n`;
    return `${out}\r\n`;
  }

  /** The message as bytes. An unchanged parsed message gives back exactly the bytes it came from. */
  serialize(): Uint8Array {
    if (this.unchanged() && this.b !== undefined) {
      const b = this.b;
      return this.hs === 0 && this.be === b.length ? b : b.subarray(this.hs, this.be);
    }
    return utf8EncodeWith(this.headerText(), this.body);
  }

  /** The message as text (the body decoded as UTF-8). */
  toString(): string {
    if (this.unchanged() && this.b !== undefined) return utf8Decode(this.serialize());
    return this.headerText() + this.bodyText;
  }

  /**
   * Forget the typed values read so far: they are read again from the message's bytes
   * (or lines) when next asked for, as on first access, and are equal to what was
   * dropped. Something that keeps a message for long (an invite session its INVITE)
   * then holds the bytes and the line index instead of every value parsed out of them.
   * A value changed in place (a Via the stack added `received` to) is kept, since it is
   * not in the bytes. Returns whether every typed value could be dropped.
   */
  releaseParsed(): boolean {
    let all = true;
    if (this.cVia?.some(isDirty)) all = false;
    else this.cVia = undefined;
    if (isDirty(this.cFrom)) all = false;
    else this.cFrom = undefined;
    if (isDirty(this.cTo)) all = false;
    else this.cTo = undefined;
    if (isDirty(this.cCSeq)) all = false;
    else this.cCSeq = undefined;
    this.cCallId = undefined;
    this.sVia = undefined;
    this.sCallId = undefined;
    this.sCSeq = undefined;
    this.sFrom = undefined;
    if (!this.releaseStart()) all = false;
    const x = this.x;
    if (x !== undefined) {
      if (x.cache !== undefined) {
        for (const [k, v] of x.cache) {
          if (v.some(isDirty)) all = false;
          else x.cache.delete(k);
        }
        if (x.cache.size === 0) x.cache = undefined;
      }
      // While unchanged, the body is a view of the bytes, taken again on use.
      if (x.pristine) x.bodyBytes = undefined;
      if (
        x.lines === undefined &&
        x.cache === undefined &&
        x.bodyBytes === undefined &&
        x.startText === undefined &&
        !x.startChanged &&
        x.pristine === (this.idx !== undefined)
      )
        this.x = undefined;
    }
    if (srcOwner === this) {
      srcOwner = undefined;
      srcText = '';
    }
    return all;
  }

  /** @internal Forget what was parsed of the start line; false when it was changed. */
  protected releaseStart(): boolean {
    return true;
  }

  /** Where the header section ends (the CR of its last line). */
  private headerEnd(): number {
    const idx = this.idx as number[];
    if (idx.length === 0) return this.startEnd;
    return (idx[idx.length - 1] as number) & 0xfffff;
  }

  /** A deep copy that can be changed without touching this one. */
  abstract clone(): SipMessage;
}

/** A SIP request. */
export class SipRequest extends SipMessage {
  readonly method: string;
  private uriValue: Uri | undefined;

  /** @internal */
  constructor(
    method: string,
    uri: Uri | undefined,
    b: Uint8Array | undefined,
    hs: number,
    startEnd: number,
    idx: number[] | undefined,
    be: number,
    body: Uint8Array | undefined,
    hot: number,
  ) {
    super(b, hs, startEnd, idx, be, body, hot);
    this.method = method;
    this.uriValue = uri;
    if (uri !== undefined) this.startChanged = true;
  }

  get isRequest(): true {
    return true;
  }

  /** @internal where the Request-URI is, while it has not been read: after the method and a space */
  private get us(): number {
    return this.hs + this.method.length + 1;
  }
  /** @internal ... up to the space before `SIP/2.0` */
  private get ue(): number {
    return this.startEnd - 8;
  }

  /** The Request-URI, parsed when first read. Throws `SipParseError` when malformed. */
  get uri(): Uri {
    if (this.uriValue === undefined) {
      try {
        this.uriValue = parseUri(this.text(this.us, this.ue));
      } catch (e) {
        if (e instanceof SipParseError)
          throw new SipParseError('SIP_ERR_PARSE_URI', `Request-URI: ${e.message}`, e.offset, 400);
        throw e;
      }
    }
    return this.uriValue;
  }

  set uri(value: Uri) {
    this.uriValue = value;
    this.startChanged = true;
    this.pristine = false;
  }

  protected buildStartLine(): string {
    return `${this.method} ${this.uri.toString()} SIP/2.0`;
  }

  protected override releaseStart(): boolean {
    if (this.uriValue === undefined) return true;
    if (this.startChanged || this.uriValue.dirty) return false;
    this.uriValue = undefined;
    return true;
  }

  override get startLine(): string {
    if (!this.startChanged && this.uriValue?.dirty) this.startChanged = true;
    return super.startLine;
  }

  override serialize(): Uint8Array {
    if (this.uriValue?.dirty && !this.startChanged) this.startChanged = true;
    return super.serialize();
  }

  override toString(): string {
    if (this.uriValue?.dirty && !this.startChanged) this.startChanged = true;
    return super.toString();
  }

  clone(): SipRequest {
    return copyOf(this) as SipRequest;
  }
}

/** A SIP response. */
export class SipResponse extends SipMessage {
  readonly status: number;
  private reasonText: string | undefined;

  /** @internal */
  constructor(
    status: number,
    reason: string | undefined,
    b: Uint8Array | undefined,
    hs: number,
    startEnd: number,
    idx: number[] | undefined,
    be: number,
    body: Uint8Array | undefined,
    hot: number,
  ) {
    super(b, hs, startEnd, idx, be, body, hot);
    this.status = status;
    this.reasonText = reason;
    if (idx === undefined) this.startChanged = true;
  }

  get isRequest(): false {
    return false;
  }

  /** @internal where the reason phrase is, while it has not been read: after `SIP/2.0 200 ` */
  private get rs(): number {
    const i = this.hs + 11;
    return i < this.startEnd ? i + 1 : this.startEnd;
  }

  get reason(): string {
    return (this.reasonText ??= this.rs < this.startEnd ? this.text(this.rs, this.startEnd) : '');
  }

  set reason(value: string) {
    checkValue('the reason phrase', value);
    this.reasonText = value;
    this.startChanged = true;
    this.pristine = false;
  }

  protected buildStartLine(): string {
    return `SIP/2.0 ${this.status} ${this.reason}`;
  }

  clone(): SipResponse {
    return copyOf(this) as SipResponse;
  }
}

let reparse: ((input: Uint8Array) => SipMessage) | undefined;

/** @internal set by the parser module */
export function setReparse(fn: (input: Uint8Array) => SipMessage): void {
  reparse = fn;
}

function copyOf(m: SipMessage): SipMessage {
  if (reparse === undefined) throw new Error('the parser module is not loaded');
  return reparse(m.serialize().slice());
}

const CALL_ID = headerDef('call-id');
const CSEQ = headerDef('cseq');
const FROM = headerDef('from');
const TO = headerDef('to');
const VIA = headerDef('via');

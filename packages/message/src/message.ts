import { latin1, utf8Decode, utf8Encode } from './chars.ts';
import { SipMessageError, SipParseError } from './errors.ts';
import { type HeaderDef, headerDef } from './headers.ts';
import { Lexer, splitList } from './lexer.ts';
import type { Contact, NameAddr } from './name-addr.ts';
import type { CSeq, MediaType } from './typed.ts';
import { parseUri, type Uri } from './uri.ts';
import type { Via } from './via.ts';

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

function isDirty(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as { dirty?: boolean }).dirty === true;
}

function checkValue(name: string, text: string): string {
  if (/[\r\n\0]/.test(text))
    throw new SipMessageError(`the value of ${name} cannot contain CR, LF or NUL`);
  return text;
}

/**
 * A SIP message: what requests and responses share. Header lines stay as received
 * text; a header is parsed into its typed form when first read, and cached.
 */
export abstract class SipMessage {
  abstract readonly isRequest: boolean;

  /** @internal text of the start line and header lines (no final CRLF CRLF) */
  protected src: string;
  /** @internal where the start line ends in `src` */
  protected startEnd: number;
  /** @internal header line offsets in `src`, four per line: name start, name end, value start, line end (negated when folded) */
  protected idx: number[] | undefined;
  /** @internal header lines, once the message has been changed */
  protected lines: HeaderLine[] | undefined;
  /** @internal typed values by header key */
  protected cache: Map<string, unknown[]> | undefined;
  protected cVia: Via[] | undefined;
  protected cCallId: string | undefined;
  protected cCSeq: CSeq | undefined;
  protected cFrom: NameAddr | undefined;
  protected cTo: NameAddr | undefined;
  protected bodyBytes: Uint8Array;
  /** @internal the exact bytes or text this message was parsed from, while unchanged */
  protected original: Uint8Array | string | undefined;
  /** @internal the start line must be rebuilt */
  protected startChanged = false;

  /** @internal */
  constructor(
    src: string,
    startEnd: number,
    idx: number[] | undefined,
    body: Uint8Array,
    original: Uint8Array | string | undefined,
  ) {
    this.src = src;
    this.startEnd = startEnd;
    this.idx = idx;
    this.lines = idx === undefined ? [] : undefined;
    this.cache = undefined;
    this.cVia = undefined;
    this.cCallId = undefined;
    this.cCSeq = undefined;
    this.cFrom = undefined;
    this.cTo = undefined;
    this.bodyBytes = body;
    this.original = original;
  }

  // ---- typed accessors of the common headers ----

  /** Call-ID (compact `i`). Throws `SipParseError` when missing or malformed. */
  get callId(): string {
    return (this.cCallId ??= this.required<string>('call-id'));
  }

  /** CSeq. Throws `SipParseError` when missing or malformed. */
  get cseq(): CSeq {
    return (this.cCSeq ??= this.required<CSeq>('cseq'));
  }

  /** From. Throws `SipParseError` when missing or malformed. */
  get from(): NameAddr {
    return (this.cFrom ??= this.required<NameAddr>('from'));
  }

  /** To. Throws `SipParseError` when missing or malformed. */
  get to(): NameAddr {
    return (this.cTo ??= this.required<NameAddr>('to'));
  }

  /** Every Via value, top first. */
  get via(): Via[] {
    return (this.cVia ??= this.getAll<Via>('via'));
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
    return this.bodyBytes;
  }

  /** The body decoded as UTF-8. */
  get bodyText(): string {
    return this.bodyBytes.length === 0 ? '' : utf8Decode(this.bodyBytes);
  }

  private required<T>(key: string): T {
    const v = this.getAll<T>(key);
    if (v.length === 0) {
      const d = headerDef(key);
      throw new SipParseError(
        'SIP_ERR_PARSE_MISSING_HEADER',
        `missing ${d.name} header`,
        -1,
        400,
        d.name,
      );
    }
    return v[0] as T;
  }

  // ---- generic header access ----

  /** Number of header lines. */
  protected lineCount(): number {
    return this.lines !== undefined ? this.lines.length : (this.idx as number[]).length >> 2;
  }

  /** Whether line `i` is header `d`. */
  protected lineIs(i: number, d: HeaderDef): boolean {
    if (this.lines !== undefined) return (this.lines[i] as HeaderLine).key === d.key;
    const idx = this.idx as number[];
    const ns = idx[i << 2] as number;
    const len = (idx[(i << 2) + 1] as number) - ns;
    const src = this.src;
    const key = d.key;
    if (len === key.length) {
      for (let j = 0; j < len; j++) {
        if (lowerCode(src.charCodeAt(ns + j)) !== key.charCodeAt(j)) return false;
      }
      return true;
    }
    return (
      len === 1 &&
      d.compact !== undefined &&
      lowerCode(src.charCodeAt(ns)) === d.compact.charCodeAt(0)
    );
  }

  /** The value text of line `i`, with folds as received. */
  protected lineValue(i: number): string {
    if (this.lines !== undefined) return (this.lines[i] as HeaderLine).value;
    const idx = this.idx as number[];
    const end = idx[(i << 2) + 3] as number;
    return this.src.slice(idx[(i << 2) + 2] as number, end < 0 ? ~end : end);
  }

  protected lineName(i: number): string {
    if (this.lines !== undefined) return (this.lines[i] as HeaderLine).name;
    const idx = this.idx as number[];
    return this.src.slice(idx[i << 2] as number, idx[(i << 2) + 1] as number);
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
    for (let i = 0; i < n; i++) {
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
    this.cacheSet(d.key, out);
    return out as T[];
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
    this.original = undefined;
    if (this.lines === undefined) {
      const idx = this.idx as number[];
      const lines: HeaderLine[] = [];
      for (let i = 0; i < idx.length; i += 4) {
        const ns = idx[i] as number;
        const end = idx[i + 3] as number;
        const e = end < 0 ? ~end : end;
        const name = this.src.slice(ns, idx[i + 1] as number);
        lines.push({
          name,
          key: headerDef(name).key,
          value: this.src.slice(idx[i + 2] as number, e),
          raw: this.src.slice(ns, e),
        });
      }
      this.lines = lines;
      this.idx = undefined;
    }
    this.flush();
    return this.lines;
  }

  /** Rewrite the lines of every header whose typed values were changed in place. */
  private flush(): void {
    const keys: string[] = [];
    if (this.cVia?.some(isDirty)) keys.push('via');
    if (this.cache) for (const [k, v] of this.cache) if (v.some(isDirty)) keys.push(k);
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
    if (pos < 0) pos = at === 'first' ? 0 : lines.length;
    const add = values.map((value) => ({ name: d.name, key: d.key, value, raw: undefined }));
    lines.splice(pos, 0, ...add);
  }

  private text(
    name: string,
    value: HeaderValue | readonly HeaderValue[],
  ): [HeaderDef, string[], unknown[] | undefined] {
    const d = headerDef(name);
    if (d.key.length === 0 || !/^[A-Za-z0-9\-.!%*_+`'~]+$/.test(d.key))
      throw new SipMessageError(`invalid header name: ${JSON.stringify(name)}`);
    const list = (Array.isArray(value) ? value : [value]) as HeaderValue[];
    const texts = list.map((v) => checkValue(d.name, String(v)));
    const typed = list.every((v) => typeof v === 'object') ? list : undefined;
    return [d, texts, typed];
  }

  /** Replace every line of a header with the given value(s), one line each. */
  setHeader(name: string, value: HeaderValue | readonly HeaderValue[]): this {
    const [d, texts, typed] = this.text(name, value);
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
    const [d, texts] = this.text(name, value);
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
    if (pos < 0) pos = options?.first && d.key === 'via' ? 0 : lines.length;
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
    return this;
  }

  // ---- writing ----

  protected abstract buildStartLine(): string;

  /** The start line, as it will be written. */
  get startLine(): string {
    return this.startChanged ? this.buildStartLine() : this.src.slice(0, this.startEnd);
  }

  private unchanged(): boolean {
    if (this.original === undefined || this.startChanged) return false;
    if (this.cVia?.some(isDirty)) return false;
    if (this.cache) for (const v of this.cache.values()) if (v.some(isDirty)) return false;
    return true;
  }

  /** The header section as text: start line, header lines, and the blank line. */
  headerText(): string {
    if (this.unchanged() && this.idx !== undefined) return `${this.src}\r\n\r\n`;
    const lines = this.materialize();
    if (!lines.some((l) => l.key === 'content-length')) {
      lines.push({
        name: 'Content-Length',
        key: 'content-length',
        value: String(this.bodyBytes.length),
        raw: undefined,
      });
    }
    let out = `${this.startLine}\r\n`;
    for (const l of lines) out += `${l.raw ?? `${l.name}: ${l.value}`}\r\n`;
    return `${out}\r\n`;
  }

  /** The message as bytes. An unchanged parsed message gives back exactly the bytes it came from. */
  serialize(): Uint8Array {
    if (this.unchanged()) {
      const o = this.original as Uint8Array | string;
      return typeof o === 'string' ? utf8Encode(o) : o;
    }
    const head = utf8Encode(this.headerText());
    if (this.bodyBytes.length === 0) return head;
    const out = new Uint8Array(head.length + this.bodyBytes.length);
    out.set(head, 0);
    out.set(this.bodyBytes, head.length);
    return out;
  }

  /** The message as text (the body decoded as UTF-8). */
  toString(): string {
    if (this.unchanged() && typeof this.original === 'string') return this.original;
    return this.headerText() + this.bodyText;
  }

  /** A deep copy that can be changed without touching this one. */
  abstract clone(): SipMessage;
}

/** A SIP request. */
export class SipRequest extends SipMessage {
  readonly isRequest = true as const;
  readonly method: string;
  private uriText: string;
  private uriValue: Uri | undefined;

  /** @internal */
  constructor(
    method: string,
    uri: string | Uri,
    src: string,
    startEnd: number,
    idx: number[] | undefined,
    body: Uint8Array,
    original: Uint8Array | string | undefined,
  ) {
    super(src, startEnd, idx, body, original);
    this.method = method;
    if (typeof uri === 'string') {
      this.uriText = uri;
      this.uriValue = undefined;
    } else {
      this.uriText = '';
      this.uriValue = uri;
      this.startChanged = true;
    }
  }

  /** The Request-URI, parsed when first read. Throws `SipParseError` when malformed. */
  get uri(): Uri {
    if (this.uriValue === undefined) {
      try {
        this.uriValue = parseUri(this.uriText);
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
    this.original = undefined;
  }

  protected buildStartLine(): string {
    return `${this.method} ${this.uri.toString()} SIP/2.0`;
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
    return parseCopy(this) as SipRequest;
  }
}

/** A SIP response. */
export class SipResponse extends SipMessage {
  readonly isRequest = false as const;
  readonly status: number;
  private reasonText: string;

  /** @internal */
  constructor(
    status: number,
    reason: string,
    src: string,
    startEnd: number,
    idx: number[] | undefined,
    body: Uint8Array,
    original: Uint8Array | string | undefined,
  ) {
    super(src, startEnd, idx, body, original);
    this.status = status;
    this.reasonText = reason;
    if (idx === undefined) this.startChanged = true;
  }

  get reason(): string {
    return this.reasonText;
  }

  set reason(value: string) {
    checkValue('the reason phrase', value);
    this.reasonText = value;
    this.startChanged = true;
    this.original = undefined;
  }

  protected buildStartLine(): string {
    return `SIP/2.0 ${this.status} ${this.reasonText}`;
  }

  clone(): SipResponse {
    return parseCopy(this) as SipResponse;
  }
}

let reparse: ((input: Uint8Array) => SipMessage) | undefined;

/** @internal set by the parser module */
export function setReparse(fn: (input: Uint8Array) => SipMessage): void {
  reparse = fn;
}

function parseCopy(m: SipMessage): SipMessage {
  if (reparse === undefined) throw new Error('parser not loaded');
  const bytes = m.serialize();
  return reparse(bytes.slice());
}

/** `latin1` re-exported for the parser. */
export { latin1 };

import { latin1, TOKEN, utf8Decode } from './chars.ts';
import { SipParseError } from './errors.ts';
import { type Lexer, quote } from './lexer.ts';
import {
  NO_PARAMS,
  Params,
  type ParamsInit,
  paramEntries,
  paramIn,
  paramsOf,
  parseHeaderParams,
} from './params.ts';
import { parseUri, type Uri } from './uri.ts';

/** Marks a value built by the parser, whose URI is read later from its text. */
const NO_URI = Object.freeze(Object.create(null)) as Uri;

/**
 * name-addr or addr-spec with header parameters: the value of From, To, Contact, Route,
 * Record-Route, Path, Service-Route, Refer-To, Referred-By, Reply-To and the like.
 * The URI is parsed when first read.
 */
export class NameAddr {
  /** @internal the display name, once known */
  private dn: string | undefined;
  /** @internal the parameters, as parsed names and values until `params` is read */
  p: Params | (string | null)[];
  /** @internal the URI as written, once known */
  private ut: string | undefined;
  protected uriValue: Uri | undefined;
  /** @internal the header the value came from, for error messages */
  private header: string | undefined;
  /** @internal the received bytes, while the display name or the URI text is still in them */
  private src: Uint8Array | undefined;
  /**
   * @internal where the display name is in `src`: start * 1024 + length when it is
   * ASCII, -2 - (start * 1024 + length) when it is UTF-8; -1 when it is not there
   */
  private dpos: number;
  /** @internal where the URI text is in `src` (start * 1024 + length), or -1 */
  private upos: number;

  constructor(
    uri: Uri | string,
    options?: {
      displayName?: string | undefined;
      params?: ParamsInit;
    },
  ) {
    this.dn = options?.displayName;
    this.ut = undefined;
    this.uriValue = uri === NO_URI ? undefined : typeof uri === 'string' ? parseUri(uri) : uri;
    this.header = undefined;
    this.src = undefined;
    this.dpos = -1;
    this.upos = -1;
    const p = options?.params;
    this.p = p === undefined ? NO_PARAMS : new Params('header', paramEntries(p));
  }

  get params(): Params {
    const p = this.p;
    if (!Array.isArray(p)) return p;
    const q = paramsOf(p);
    this.p = q;
    return q;
  }

  /** @internal a parsed value */
  static parsed<T extends NameAddr>(
    kind: new (uri: Uri | string) => T,
    displayName: string | undefined,
    uriText: string,
    kv: (string | null)[] | undefined,
    header: string | undefined,
  ): T {
    const o = new kind(NO_URI);
    o.dn = displayName;
    o.ut = uriText;
    o.header = header;
    if (kv !== undefined) o.p = kv;
    return o;
  }

  /**
   * @internal A parsed value whose display name (`ds..de`, none when `ds` < 0; UTF-8
   * when `utf8`, else ASCII) and URI (`us..ue`, ASCII) are still in the received bytes `b`.
   */
  static inBytes(
    b: Uint8Array,
    ds: number,
    de: number,
    us: number,
    ue: number,
    kv: (string | null)[] | undefined,
    header: string,
    utf8: boolean,
  ): NameAddr {
    const o = new NameAddr(NO_URI);
    o.header = header;
    if (kv !== undefined) o.p = kv;
    o.src = b;
    if (ds >= 0) {
      if (de - ds < 1024 && ds < 0x100000) {
        const d = ds * 1024 + (de - ds);
        o.dpos = utf8 ? -2 - d : d;
      } else o.dn = utf8 ? utf8Decode(b.subarray(ds, de)) : latin1(b, ds, de);
    }
    if (ue - us < 1024 && us < 0x100000) o.upos = us * 1024 + (ue - us);
    else o.ut = latin1(b, us, ue);
    return o;
  }

  /** The display name, unquoted; `undefined` when there is none. */
  get displayName(): string | undefined {
    const d = this.dpos;
    if (d !== -1) {
      const b = this.src as Uint8Array;
      const p = d >= 0 ? d : -2 - d;
      const a = Math.floor(p / 1024);
      const e = a + (p % 1024);
      this.dn = d >= 0 ? latin1(b, a, e) : utf8Decode(b.subarray(a, e));
      this.dpos = -1;
    }
    return this.dn;
  }

  /** @internal the URI as written (while it was not parsed) */
  protected get uriText(): string | undefined {
    const u = this.upos;
    if (u >= 0) {
      const a = Math.floor(u / 1024);
      this.ut = latin1(this.src as Uint8Array, a, a + (u % 1024));
      this.upos = -1;
    }
    return this.ut;
  }

  get uri(): Uri {
    this.uriValue ??= this.parseOwnUri();
    return this.uriValue;
  }

  /**
   * Throw `SipParseError` when the URI is malformed, without keeping the parsed URI
   * (validation of a message that may only be stored, never read further).
   */
  checkUri(): void {
    if (this.uriValue === undefined && this.uriText !== undefined) this.parseOwnUri();
  }

  /** Parse the URI text, naming the header in the error. */
  private parseOwnUri(): Uri {
    try {
      return parseUri(this.uriText as string);
    } catch (e) {
      if (e instanceof SipParseError)
        throw new SipParseError(
          'SIP_ERR_PARSE_URI',
          `${this.header ? `${this.header}: ` : ''}${e.message}`,
          e.offset,
          400,
          this.header,
        );
      throw e;
    }
  }

  get tag(): string | undefined {
    const p = this.p;
    return (Array.isArray(p) ? paramIn(p, 'tag') : p.get('tag')) ?? undefined;
  }

  /** Whether the value changed since parsing. */
  get dirty(): boolean {
    const p = this.p;
    return (!Array.isArray(p) && p.dirty) || (this.uriValue?.dirty ?? false);
  }

  /** A copy with its own parameters (and, optionally, another display name or URI). */
  clone(changes?: { displayName?: string | undefined; uri?: Uri }): this {
    const ctor = this.constructor as new (
      uri: Uri,
      options?: { displayName?: string | undefined; params?: Iterable<[string, string | null]> },
    ) => this;
    const c = new ctor(changes?.uri ?? this.uri.clone(), {
      displayName: changes && 'displayName' in changes ? changes.displayName : this.displayName,
      params: this.params,
    });
    for (const [k] of this.params)
      if (this.params.isQuoted(k)) c.params.set(k, this.params.get(k) ?? null, { quoted: true });
    return c;
  }

  toString(): string {
    const dn = this.displayName === undefined ? '' : `${quote(this.displayName, true)} `;
    const uri = this.uriValue !== undefined ? this.uriValue.toString() : this.uriText;
    return `${dn}<${uri}>${this.params.toString()}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** A Contact value: a name-addr with `expires` and `q`, or `*`. */
export class Contact extends NameAddr {
  /** True for `Contact: *` (remove all bindings). */
  get star(): boolean {
    return this.uriText === '*' && this.uriValue === undefined;
  }

  /** @internal */
  static parsedStar(): Contact {
    return NameAddr.parsed(Contact, undefined, '*', undefined, 'Contact');
  }

  override toString(): string {
    return this.star ? '*' : super.toString();
  }

  override get uri(): Uri {
    if (this.star) throw new TypeError('Contact: * has no URI');
    return super.uri;
  }

  override get dirty(): boolean {
    return this.star ? false : super.dirty;
  }

  get expires(): number | undefined {
    const v = this.params.get('expires');
    if (v === undefined || v === null) return undefined;
    if (!/^\d{1,10}$/.test(v) || Number(v) > 0xffffffff)
      throw new SipParseError(
        'SIP_ERR_PARSE_HEADER',
        `Contact: invalid expires '${v}'`,
        -1,
        400,
        'Contact',
      );
    return Number(v);
  }

  get q(): number | undefined {
    const v = this.params.get('q');
    if (v === undefined || v === null) return undefined;
    if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v))
      throw new SipParseError(
        'SIP_ERR_PARSE_HEADER',
        `Contact: invalid q '${v}'`,
        -1,
        400,
        'Contact',
      );
    return Number(v);
  }
}

/**
 * Parse one name-addr / addr-spec with its parameters at the lexer's position.
 * `list`: a comma ends the value (Contact, Route...).
 */
export function parseNameAddr<T extends NameAddr>(lx: Lexer, kind: { prototype: T }): T {
  lx.ws();
  const s = lx.s;
  let display: string | undefined;
  let uriText: string;
  const c = lx.peek();
  let angle = c === 60 || c === 34;
  if (!angle) {
    // Tokens followed by '<' are a display name; otherwise this is an addr-spec.
    let j = lx.i;
    while (j < lx.end) {
      const d = s.charCodeAt(j);
      if (d === 60) {
        angle = true;
        break;
      }
      if (d === 59 || d === 44 || d === 34) break;
      j++;
    }
  }
  if (angle) {
    if (c === 34) {
      display = lx.quoted();
      lx.ws();
    } else if (c !== 60) {
      const ds = lx.i;
      while (lx.i < lx.end && s.charCodeAt(lx.i) !== 60) {
        const d = s.charCodeAt(lx.i);
        if (
          !(d === 32 || d === 9 || d === 13 || d === 10 || (d < 128 && TOKEN[d] === 1) || d > 127)
        )
          throw lx.fail('invalid character in display name');
        lx.i++;
      }
      display = collapseWs(s.slice(ds, lx.i));
    }
    if (lx.peek() !== 60) throw lx.fail("expected '<'");
    const us = lx.i + 1;
    const close = s.indexOf('>', us);
    if (close < 0 || close >= lx.end) throw lx.fail("unterminated '<'");
    uriText = s.slice(us, close);
    if (close === us) throw lx.fail('nothing inside <>');
    for (let j = us; j < close; j++) {
      const d = s.charCodeAt(j);
      if (d === 32 || d === 9 || d === 13 || d === 10) throw lx.fail('white space inside <>');
    }
    lx.i = close + 1;
  } else {
    const us = lx.i;
    while (lx.i < lx.end) {
      const d = s.charCodeAt(lx.i);
      if (d === 59 || d === 44 || d === 32 || d === 9 || d === 13) break;
      if (d === 63) throw lx.fail("a URI with headers ('?') must be enclosed in <>");
      lx.i++;
    }
    uriText = s.slice(us, lx.i);
    if (uriText.length === 0) throw lx.fail('expected a URI');
  }
  const o = NameAddr.parsed(
    kind as unknown as new (
      uri: Uri | string,
    ) => T,
    display,
    uriText,
    undefined,
    lx.header,
  );
  parseHeaderParams(lx, o.params);
  return o;
}

/** Trim, and fold runs of white space (and folds) into one space. */
function collapseWs(t: string): string {
  const x = t.trim();
  for (let i = 0; i < x.length; i++) {
    const c = x.charCodeAt(i);
    if (c === 9 || c === 13 || c === 10 || (c === 32 && x.charCodeAt(i + 1) === 32))
      return x.replace(/\s+/g, ' ');
  }
  return x;
}

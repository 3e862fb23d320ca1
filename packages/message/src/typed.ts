import { SipParseError } from './errors.ts';
import { type Lexer, quote } from './lexer.ts';
import {
  Params,
  type ParamsInit,
  paramEntries,
  parseAuthParams,
  parseHeaderParams,
} from './params.ts';

/** CSeq (RFC 3261 §20.16). */
export class CSeq {
  readonly seq: number;
  readonly method: string;
  constructor(seq: number, method: string) {
    this.seq = seq;
    this.method = method;
  }
  toString(): string {
    return `${this.seq} ${this.method}`;
  }
  toJSON(): string {
    return this.toString();
  }
}

export function parseCSeq(lx: Lexer): CSeq {
  lx.ws();
  const seq = lx.number('a CSeq number');
  const p = lx.peek();
  if (p !== 32 && p !== 9 && p !== 13) throw lx.fail('expected white space after the CSeq number');
  lx.ws();
  return new CSeq(seq, lx.token('a method'));
}

/** RAck (RFC 3262 §7.2): `response-num CSeq-num method`. */
export class RAck {
  readonly rseq: number;
  readonly cseq: number;
  readonly method: string;
  constructor(rseq: number, cseq: number, method: string) {
    this.rseq = rseq;
    this.cseq = cseq;
    this.method = method;
  }
  toString(): string {
    return `${this.rseq} ${this.cseq} ${this.method}`;
  }
  toJSON(): string {
    return this.toString();
  }
}

export function parseRAck(lx: Lexer): RAck {
  lx.ws();
  const rseq = lx.number('an RSeq number');
  lx.ws();
  const cseq = lx.number('a CSeq number');
  lx.ws();
  return new RAck(rseq, cseq, lx.token('a method'));
}

/**
 * A value followed by header parameters: the shape of Event, Subscription-State,
 * Session-Expires, Min-SE, Retry-After, Reason, Replaces, Accept-Encoding and others.
 * The classes below add named getters.
 */
export class ValueWithParams {
  readonly value: string;
  readonly params: Params;
  /** For Retry-After: the comment, when present. */
  readonly comment: string | undefined;
  /** @internal */
  raw: string | undefined;
  constructor(value: string, params?: ParamsInit, comment?: string) {
    this.value = value;
    this.params = new Params('header', paramEntries(params));
    this.comment = comment;
    this.raw = undefined;
  }
  get dirty(): boolean {
    return this.raw === undefined || this.params.dirty;
  }
  toString(): string {
    if (!this.dirty) return this.raw as string;
    return `${this.value}${this.comment === undefined ? '' : ` (${this.comment})`}${this.params}`;
  }
  toJSON(): string {
    return this.toString();
  }
  protected num(name: string): number | undefined {
    const v = this.params.get(name);
    if (v === undefined || v === null) return undefined;
    if (!/^\d{1,10}$/.test(v) || Number(v) > 0xffffffff)
      throw new SipParseError('SIP_ERR_PARSE_HEADER', `invalid ${name} '${v}'`, -1, 400);
    return Number(v);
  }
}

/** Event (RFC 6665 §8.2.1): the event package, with an optional `id`. */
export class EventHeader extends ValueWithParams {
  get package(): string {
    return this.value;
  }
  get id(): string | undefined {
    return this.params.get('id') ?? undefined;
  }
}

/** Subscription-State (RFC 6665 §8.2.3). */
export class SubscriptionState extends ValueWithParams {
  /** `active`, `pending`, `terminated`, or an extension, lower-cased. */
  get state(): string {
    return this.value.toLowerCase();
  }
  get reason(): string | undefined {
    return this.params.get('reason') ?? undefined;
  }
  get expires(): number | undefined {
    return this.num('expires');
  }
  get retryAfter(): number | undefined {
    return this.num('retry-after');
  }
}

/** Session-Expires and Min-SE (RFC 4028). */
export class SessionExpires extends ValueWithParams {
  get deltaSeconds(): number {
    return Number(this.value);
  }
  get refresher(): 'uac' | 'uas' | undefined {
    const r = this.params.get('refresher')?.toLowerCase();
    return r === 'uac' || r === 'uas' ? r : undefined;
  }
}

/** Retry-After (RFC 3261 §20.33). */
export class RetryAfter extends ValueWithParams {
  get seconds(): number {
    return Number(this.value);
  }
  get duration(): number | undefined {
    return this.num('duration');
  }
}

/** Reason (RFC 3326): `SIP ;cause=200 ;text="Call completed elsewhere"`. */
export class ReasonHeader extends ValueWithParams {
  get protocol(): string {
    return this.value;
  }
  get cause(): number | undefined {
    return this.num('cause');
  }
  get text(): string | undefined {
    return this.params.get('text') ?? undefined;
  }
}

/** Replaces (RFC 3891): `call-id;to-tag=..;from-tag=..[;early-only]`. */
export class Replaces extends ValueWithParams {
  get callId(): string {
    return this.value;
  }
  get toTag(): string | undefined {
    return this.params.get('to-tag') ?? undefined;
  }
  get fromTag(): string | undefined {
    return this.params.get('from-tag') ?? undefined;
  }
  get earlyOnly(): boolean {
    return this.params.has('early-only');
  }
}

type VwpCtor<T extends ValueWithParams> = new (value: string) => T;

/** Parse `value [comment] *(;param)`; `valueKind` checks the value. */
export function parseValueWithParams<T extends ValueWithParams>(
  lx: Lexer,
  ctor: VwpCtor<T>,
  valueKind: 'token' | 'number' | 'callid',
  allowComment = false,
): T {
  lx.ws();
  const start = lx.i;
  let value: string;
  if (valueKind === 'number') value = String(lx.number('a number'));
  else if (valueKind === 'callid') value = lx.callId();
  else value = lx.token('a value');
  const o = new ctor(value);
  lx.ws();
  if (allowComment && lx.peek() === 40)
    (o as { comment: string | undefined }).comment = lx.comment();
  parseHeaderParams(lx, o.params);
  o.raw = lx.s.slice(start, lx.i).trimEnd();
  return o;
}

/** A media type (Content-Type, Accept): `type/subtype *(;param)`. */
export class MediaType {
  readonly type: string;
  readonly subtype: string;
  readonly params: Params;
  private raw: string | undefined;
  constructor(type: string, subtype: string, params?: ParamsInit) {
    this.type = type;
    this.subtype = subtype;
    this.params = new Params('header', paramEntries(params));
    this.raw = undefined;
  }
  /** `type/subtype`, lower-cased. */
  get mimeType(): string {
    return `${this.type}/${this.subtype}`.toLowerCase();
  }
  get dirty(): boolean {
    return this.raw === undefined || this.params.dirty;
  }
  /** Whether this type (possibly with wildcards, as in Accept) matches `mime`. */
  matches(mime: string): boolean {
    const [t, s] = mime.toLowerCase().split('/');
    const mt = this.type.toLowerCase();
    const ms = this.subtype.toLowerCase();
    return (mt === '*' || mt === t) && (ms === '*' || ms === s);
  }
  toString(): string {
    if (!this.dirty) return this.raw as string;
    return `${this.type}/${this.subtype}${this.params}`;
  }
  toJSON(): string {
    return this.toString();
  }
  /** @internal */
  static parse(lx: Lexer): MediaType {
    lx.ws();
    const start = lx.i;
    const type = lx.token('a media type');
    lx.expect(47, "'/'");
    const m = new MediaType(type, lx.token('a media subtype'));
    parseHeaderParams(lx, m.params);
    m.raw = lx.s.slice(start, lx.i).trimEnd();
    return m;
  }
}

/**
 * WWW-Authenticate, Proxy-Authenticate (a challenge), Authorization,
 * Proxy-Authorization (credentials), and Authentication-Info (params only, no scheme).
 */
export class AuthHeader {
  /** `Digest`, `Bearer`...; empty for Authentication-Info. */
  readonly scheme: string;
  readonly params: Params;
  private raw: string | undefined;
  constructor(scheme: string, params?: ParamsInit) {
    this.scheme = scheme;
    this.params = new Params('auth', paramEntries(params));
    this.raw = undefined;
  }
  private p(name: string): string | undefined {
    return this.params.get(name) ?? undefined;
  }
  get realm(): string | undefined {
    return this.p('realm');
  }
  get nonce(): string | undefined {
    return this.p('nonce');
  }
  get opaque(): string | undefined {
    return this.p('opaque');
  }
  /** The algorithm, `MD5` when absent (RFC 7616 §3.3). */
  get algorithm(): string {
    return this.p('algorithm') ?? 'MD5';
  }
  /** qop: the options offered (challenge) or the one chosen (credentials). */
  get qop(): string[] {
    const q = this.p('qop');
    return q === undefined
      ? []
      : q
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x.length > 0);
  }
  get stale(): boolean {
    return this.p('stale')?.toLowerCase() === 'true';
  }
  get username(): string | undefined {
    return this.p('username');
  }
  get uri(): string | undefined {
    return this.p('uri');
  }
  get response(): string | undefined {
    return this.p('response');
  }
  get cnonce(): string | undefined {
    return this.p('cnonce');
  }
  get nc(): string | undefined {
    return this.p('nc');
  }
  get dirty(): boolean {
    return this.raw === undefined || this.params.dirty;
  }
  toString(): string {
    if (!this.dirty) return this.raw as string;
    const p = this.params.toString();
    return this.scheme.length === 0 ? p : `${this.scheme} ${p}`;
  }
  toJSON(): string {
    return this.toString();
  }
  /** @internal */
  static parse(lx: Lexer, withScheme: boolean): AuthHeader {
    lx.ws();
    const start = lx.i;
    let scheme = '';
    if (withScheme) {
      scheme = lx.token('an auth scheme');
      const c = lx.peek();
      if (c !== -1 && c !== 32 && c !== 9 && c !== 13)
        throw lx.fail('expected white space after the auth scheme');
    }
    const a = new AuthHeader(scheme);
    parseAuthParams(lx, a.params);
    a.raw = lx.s.slice(start, lx.i).trimEnd();
    return a;
  }
}

/** Quote helper re-exported for builders. */
export { quote };

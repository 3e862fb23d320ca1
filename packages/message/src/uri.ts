import {
  HNVCHAR,
  HOSTCHAR,
  PASSWORD,
  percentDecode,
  percentEncode,
  SCHEME,
  USER,
  validEscapes,
} from './chars.ts';
import { SipParseError } from './errors.ts';
import { Params, type ParamsInit, paramEntries, parseUriParams } from './params.ts';

export interface UriParts {
  scheme: string;
  user?: string | undefined;
  password?: string | undefined;
  host?: string;
  port?: number | undefined;
  params?: ParamsInit;
  headers?: ParamsInit;
  /** For schemes other than sip, sips and tel: the text after the colon. */
  opaque?: string;
}

function uriError(text: string, msg: string, at: number): SipParseError {
  return new SipParseError('SIP_ERR_PARSE_URI', `${msg} in URI '${text}'`, at);
}

/**
 * A URI: `sip:`/`sips:` (RFC 3261 §19.1), `tel:` (RFC 3966), or any other absolute URI,
 * kept opaque. Fields are read with %-escapes decoded; an unchanged URI is written back
 * exactly as it was received.
 */
export class Uri {
  /** Lower-cased scheme. */
  readonly scheme: string;
  /** The user part (sip, sips), or the number (tel). */
  readonly user: string | undefined;
  readonly password: string | undefined;
  /** Host as written; IPv6 references keep their brackets. Empty for opaque URIs. */
  readonly host: string;
  readonly port: number | undefined;
  readonly params: Params;
  /** Embedded headers (`?Replaces=...`), decoded. */
  readonly headers: Params;
  /** For other schemes: everything after `scheme:`. */
  readonly opaque: string | undefined;
  private raw: string | undefined;

  constructor(parts: UriParts, raw?: string) {
    this.scheme = parts.scheme.toLowerCase();
    this.user = parts.user;
    this.password = parts.password;
    this.host = parts.host ?? '';
    this.port = parts.port;
    this.params = new Params('uri', paramEntries(parts.params));
    this.headers = new Params('uri', paramEntries(parts.headers));
    this.opaque = parts.opaque;
    this.raw = raw;
    if (raw === undefined) {
      if (/[\s<>"]/.test(`${this.user ?? ''}${this.password ?? ''}${this.host}`))
        throw new TypeError('URI parts cannot contain white space, <, > or "');
      if (this.isSip && this.host.length === 0) throw new TypeError('a SIP URI needs a host');
    }
  }

  get isSip(): boolean {
    return this.scheme === 'sip' || this.scheme === 'sips';
  }

  get isSecure(): boolean {
    return this.scheme === 'sips';
  }

  get transport(): string | undefined {
    const t = this.params.get('transport');
    return t ?? undefined;
  }

  /** host:port, or host alone when there is no port. */
  get hostPort(): string {
    return this.port === undefined ? this.host : `${this.host}:${this.port}`;
  }

  /** Whether `params` or `headers` changed since parsing. */
  get dirty(): boolean {
    return this.raw === undefined || this.params.dirty || this.headers.dirty;
  }

  /** A copy with some parts replaced. */
  with(parts: Partial<UriParts>): Uri {
    return new Uri({
      scheme: this.scheme,
      user: this.user,
      password: this.password,
      host: this.host,
      port: this.port,
      params: this.params,
      headers: this.headers,
      ...(this.opaque !== undefined ? { opaque: this.opaque } : {}),
      ...parts,
    });
  }

  clone(): Uri {
    return this.with({});
  }

  /**
   * Equality as RFC 3261 §19.1.4 defines it for SIP URIs (user and password
   * case-sensitive, host case-insensitive, parameters present in both must match, and
   * user, ttl, method and maddr must match when present in either); other schemes
   * compare case-insensitively as text.
   */
  equals(other: Uri): boolean {
    if (this.scheme !== other.scheme) return false;
    if (!this.isSip) return this.toString().toLowerCase() === other.toString().toLowerCase();
    if (this.user !== other.user || this.password !== other.password) return false;
    if (this.host.toLowerCase() !== other.host.toLowerCase() || this.port !== other.port)
      return false;
    for (const [k, v] of this.params) {
      const o = other.params.get(k);
      if (o === undefined) {
        if (['user', 'ttl', 'method', 'maddr', 'transport'].includes(k.toLowerCase())) return false;
        continue;
      }
      if ((v ?? '').toLowerCase() !== (o ?? '').toLowerCase()) return false;
    }
    for (const [k] of other.params) {
      if (
        !this.params.has(k) &&
        ['user', 'ttl', 'method', 'maddr', 'transport'].includes(k.toLowerCase())
      )
        return false;
    }
    if (this.headers.size !== other.headers.size) return false;
    for (const [k, v] of this.headers) if (other.headers.get(k) !== v) return false;
    return true;
  }

  toString(): string {
    if (!this.dirty) return this.raw as string;
    if (this.opaque !== undefined) return `${this.scheme}:${this.opaque}`;
    let s = `${this.scheme}:`;
    if (this.scheme === 'tel') return `${s}${this.user ?? ''}${this.params}`;
    if (this.user !== undefined) {
      s += percentEncode(this.user, USER);
      if (this.password !== undefined) s += `:${percentEncode(this.password, PASSWORD)}`;
      s += '@';
    }
    s += this.host;
    if (this.port !== undefined) s += `:${this.port}`;
    s += this.params.toString();
    let sep = '?';
    for (const [k, v] of this.headers) {
      s += `${sep}${percentEncode(k, HNVCHAR)}=${percentEncode(v ?? '', HNVCHAR)}`;
      sep = '&';
    }
    return s;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Parse the host and optional port at `i` in `s`; returns [host, port, end]. */
export function parseHostPort(
  s: string,
  i: number,
  end: number,
  what = s,
): [string, number | undefined, number] {
  const start = i;
  if (s.charCodeAt(i) === 91) {
    const close = s.indexOf(']', i);
    if (close < 0 || close >= end) throw uriError(what, 'unterminated IPv6 reference', i);
    for (let j = i + 1; j < close; j++) {
      const c = s.charCodeAt(j);
      const ok = (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 46;
      if (!ok) throw uriError(what, 'invalid character in IPv6 reference', j);
    }
    if (close === i + 1 || s.indexOf(':', i) > close)
      throw uriError(what, 'invalid IPv6 reference', i);
    i = close + 1;
  } else {
    let colons = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 128 && HOSTCHAR[c] === 1) i++;
      else break;
    }
    if (i === start) throw uriError(what, 'missing host', i);
    // A bare IPv6 address (RFC 5118 §4.10: not allowed without brackets).
    for (let j = i; j < end && s.charCodeAt(j) === 58; j++) colons++;
    if (colons > 1) throw uriError(what, 'IPv6 address without brackets', i);
  }
  const host = s.slice(start, i);
  let port: number | undefined;
  if (i < end && s.charCodeAt(i) === 58) {
    i++;
    const ps = i;
    let v = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + c - 48;
      i++;
    }
    if (i === ps || i - ps > 5 || v > 65535) throw uriError(what, 'invalid port', ps);
    port = v;
  }
  return [host, port, i];
}

/** Parse a URI. Throws `SipParseError` (code `SIP_ERR_PARSE_URI`) when it is malformed. */
export function parseUri(text: string): Uri {
  const colon = text.indexOf(':');
  if (colon <= 0) throw uriError(text, 'missing scheme', 0);
  const c0 = text.charCodeAt(0);
  if (!((c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122)))
    throw uriError(text, 'invalid scheme', 0);
  for (let i = 1; i < colon; i++) {
    const c = text.charCodeAt(i);
    if (c > 127 || SCHEME[c] === 0) throw uriError(text, 'invalid scheme', i);
  }
  for (let i = colon + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 32 || c === 127 || c === 34 || c === 60 || c === 62)
      throw uriError(text, `invalid character ${JSON.stringify(text[i])}`, i);
  }
  const scheme = text.slice(0, colon).toLowerCase();
  if (scheme === 'sip' || scheme === 'sips') return parseSip(text, scheme, colon + 1);
  if (scheme === 'tel') {
    const semi = text.indexOf(';', colon + 1);
    const end = semi < 0 ? text.length : semi;
    const number = text.slice(colon + 1, end);
    if (number.length === 0 || !/^[0-9A-Fa-f*#+\-.()pPwW%]+$/.test(number))
      throw uriError(text, 'invalid telephone number', colon + 1);
    const uri = new Uri({ scheme, user: percentDecode(number) }, text);
    if (semi >= 0) parseUriParams(text, semi, text.length, uri.params);
    return uri;
  }
  if (colon + 1 >= text.length) throw uriError(text, 'empty URI', colon);
  return new Uri({ scheme, opaque: text.slice(colon + 1) }, text);
}

function parseSip(text: string, scheme: string, start: number): Uri {
  const end = text.length;
  let i = start;
  let user: string | undefined;
  let password: string | undefined;
  const at = text.indexOf('@', start);
  if (at >= 0) {
    let pw = -1;
    for (let j = start; j < at; j++) {
      const c = text.charCodeAt(j);
      if (c === 58 && pw < 0) {
        pw = j;
        continue;
      }
      const table = pw < 0 ? USER : PASSWORD;
      if (c !== 37 && (c > 127 || table[c] === 0))
        throw uriError(text, `invalid character '${text[j]}' in the user part`, j);
    }
    if (!validEscapes(text, start, at))
      throw uriError(text, 'bad %-escape in the user part', start);
    const userEnd = pw < 0 ? at : pw;
    if (userEnd === start) throw uriError(text, 'empty user part', start);
    user = percentDecode(text.slice(start, userEnd));
    if (pw >= 0) password = percentDecode(text.slice(pw + 1, at));
    i = at + 1;
  }
  const [host, port, after] = parseHostPort(text, i, end, text);
  const q = text.indexOf('?', after);
  const paramsEnd = q < 0 ? end : q;
  if (after < paramsEnd && text.charCodeAt(after) !== 59)
    throw uriError(text, `unexpected '${text[after]}' after the host`, after);
  const uri = new Uri({ scheme, user, password, host, port }, text);
  if (after < paramsEnd) parseUriParams(text, after, paramsEnd, uri.params);
  if (q >= 0) {
    const hs = text.slice(q + 1);
    if (hs.length === 0) throw uriError(text, 'empty headers part', q);
    for (const pair of hs.split('&')) {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      const value = eq < 0 ? '' : pair.slice(eq + 1);
      for (let j = 0; j < pair.length; j++) {
        const c = pair.charCodeAt(j);
        if (c !== 37 && c !== 61 && (c > 127 || HNVCHAR[c] === 0))
          throw uriError(text, `invalid character '${pair[j]}' in a URI header`, q);
      }
      if (name.length === 0 || !validEscapes(pair)) throw uriError(text, 'malformed URI header', q);
      uri.headers.append(percentDecode(name), percentDecode(value));
    }
  }
  return uri;
}

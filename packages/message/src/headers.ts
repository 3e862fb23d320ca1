import type { Lexer } from './lexer.ts';
import { Contact, NameAddr, parseNameAddr } from './name-addr.ts';
import {
  AuthHeader,
  EventHeader,
  MediaType,
  parseCSeq,
  parseRAck,
  parseValueWithParams,
  ReasonHeader,
  Replaces,
  RetryAfter,
  SessionExpires,
  SubscriptionState,
  ValueWithParams,
} from './typed.ts';
import { parseVia } from './via.ts';

/** How a header is read. */
export interface HeaderDef {
  /** Canonical spelling, used when the header is written. */
  readonly name: string;
  /** Lower-cased long form: the key headers are matched on. */
  readonly key: string;
  /** The compact form (RFC 3261 §7.3.3 and extensions), lower-cased. */
  readonly compact: string | undefined;
  /** A comma-separated list header. */
  readonly list: boolean;
  /** At most one may appear in a message. */
  readonly single: boolean;
  /** Parses one value; absent for headers kept as text. */
  readonly parse: ((lx: Lexer) => unknown) | undefined;
}

const defs = new Map<string, HeaderDef>();
const compacts = new Map<string, HeaderDef>();
/** The usual spellings (canonical, lower case, compact in either case), looked up without lower-casing. */
const spelled = new Map<string, HeaderDef>();

function def(
  name: string,
  opts: { compact?: string; list?: boolean; single?: boolean; parse?: (lx: Lexer) => unknown },
): void {
  const d: HeaderDef = {
    name,
    key: name.toLowerCase(),
    compact: opts.compact,
    list: opts.list ?? false,
    single: opts.single ?? false,
    parse: opts.parse,
  };
  defs.set(d.key, d);
  spelled.set(d.name, d);
  spelled.set(d.key, d);
  if (d.compact) {
    compacts.set(d.compact, d);
    spelled.set(d.compact, d);
    spelled.set(d.compact.toUpperCase(), d);
  }
}

const nameAddr = (lx: Lexer) => parseNameAddr(lx, NameAddr);
const contact = (lx: Lexer) => {
  lx.ws();
  if (lx.peek() === 42) {
    lx.i++;
    return Contact.parsedStar();
  }
  return parseNameAddr(lx, Contact);
};
const token = (lx: Lexer) => {
  lx.ws();
  return lx.token();
};
const num = (max: number) => (lx: Lexer) => {
  lx.ws();
  return lx.number('a number', max);
};
const U32 = 0xffffffff;

def('Via', { compact: 'v', list: true, parse: parseVia });
def('From', { compact: 'f', single: true, parse: nameAddr });
def('To', { compact: 't', single: true, parse: nameAddr });
def('Call-ID', {
  compact: 'i',
  single: true,
  parse: (lx) => {
    lx.ws();
    return lx.callId();
  },
});
def('CSeq', { single: true, parse: parseCSeq });
def('Contact', { compact: 'm', list: true, parse: contact });
def('Max-Forwards', { single: true, parse: num(255) });
def('Expires', { single: true, parse: num(U32) });
def('Min-Expires', { single: true, parse: num(U32) });
def('Content-Length', { compact: 'l', single: true, parse: num(U32) });
def('Content-Type', { compact: 'c', single: true, parse: MediaType.parse });
def('Content-Encoding', { compact: 'e', list: true, parse: token });
def('Content-Disposition', {
  single: true,
  parse: (lx) => parseValueWithParams(lx, ValueWithParams, 'token'),
});
def('Accept', { list: true, parse: MediaType.parse });
def('Accept-Encoding', { list: true });
def('Accept-Language', { list: true });
def('Allow', { list: true, parse: token });
def('Supported', { compact: 'k', list: true, parse: token });
def('Require', { list: true, parse: token });
def('Proxy-Require', { list: true, parse: token });
def('Unsupported', { list: true, parse: token });
def('Allow-Events', { compact: 'u', list: true, parse: token });
def('Event', {
  compact: 'o',
  single: true,
  parse: (lx) => parseValueWithParams(lx, EventHeader, 'token'),
});
def('Subscription-State', {
  single: true,
  parse: (lx) => parseValueWithParams(lx, SubscriptionState, 'token'),
});
def('SIP-ETag', { single: true, parse: token });
def('SIP-If-Match', { single: true, parse: token });
def('RSeq', { single: true, parse: num(U32) });
def('RAck', { single: true, parse: parseRAck });
def('Session-Expires', {
  compact: 'x',
  single: true,
  parse: (lx) => parseValueWithParams(lx, SessionExpires, 'number'),
});
def('Min-SE', { single: true, parse: (lx) => parseValueWithParams(lx, SessionExpires, 'number') });
def('Refer-To', { compact: 'r', single: true, parse: nameAddr });
def('Referred-By', { compact: 'b', single: true, parse: nameAddr });
def('Refer-Sub', { single: true, parse: token });
def('Replaces', { single: true, parse: (lx) => parseValueWithParams(lx, Replaces, 'callid') });
def('Route', { list: true, parse: nameAddr });
def('Record-Route', { list: true, parse: nameAddr });
def('Path', { list: true, parse: nameAddr });
def('Service-Route', { list: true, parse: nameAddr });
def('Reply-To', { single: true, parse: nameAddr });
def('P-Asserted-Identity', { list: true, parse: nameAddr });
def('P-Preferred-Identity', { list: true, parse: nameAddr });
def('WWW-Authenticate', { parse: (lx) => AuthHeader.parse(lx, true) });
def('Proxy-Authenticate', { parse: (lx) => AuthHeader.parse(lx, true) });
def('Authorization', { parse: (lx) => AuthHeader.parse(lx, true) });
def('Proxy-Authorization', { parse: (lx) => AuthHeader.parse(lx, true) });
def('Authentication-Info', { single: true, parse: (lx) => AuthHeader.parse(lx, false) });
def('Retry-After', {
  single: true,
  parse: (lx) => parseValueWithParams(lx, RetryAfter, 'number', true),
});
def('Reason', { list: true, parse: (lx) => parseValueWithParams(lx, ReasonHeader, 'token') });
def('Warning', { list: true });
def('Call-Info', { list: true });
def('Alert-Info', { list: true });
def('Error-Info', { list: true });
def('In-Reply-To', { list: true });
def('Subject', { compact: 's' });
def('Accept-Contact', { compact: 'a', list: true });
def('Reject-Contact', { compact: 'j', list: true });
def('Request-Disposition', { compact: 'd', list: true });
def('Identity', { compact: 'y' });
def('Date', { single: true });
def('User-Agent', {});
def('Server', {});
def('Organization', {});
def('Priority', { single: true });
def('Timestamp', {});
def('MIME-Version', { single: true });
def('Security-Client', { list: true });
def('Security-Server', { list: true });
def('Security-Verify', { list: true });

/** The definition of a header name (long or compact, any case); unknown headers get a text-only one. */
export function headerDef(name: string): HeaderDef {
  const known = spelled.get(name);
  if (known !== undefined) return known;
  const lower = name.toLowerCase();
  const d = lower.length === 1 ? compacts.get(lower) : defs.get(lower);
  if (d !== undefined) return d;
  return {
    name,
    key: lower,
    compact: undefined,
    list: false,
    single: false,
    parse: undefined,
  };
}

/** The canonical spelling of a header name (`call-id` -> `Call-ID`, `v` -> `Via`). */
export function canonicalName(name: string): string {
  return headerDef(name).name;
}

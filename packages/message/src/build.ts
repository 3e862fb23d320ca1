import { isToken } from './chars.ts';
import { SipMessageError, SipParseError } from './errors.ts';
import { headerDef } from './headers.ts';
import { Lexer } from './lexer.ts';
import { appendLines, type HeaderValue, SipRequest, SipResponse } from './message.ts';
import type { NameAddr } from './name-addr.ts';
import { CSeq, type MediaType } from './typed.ts';
import { parseUri, type Uri } from './uri.ts';
import type { Via } from './via.ts';

/** Reason phrases of RFC 3261 §21 and its extensions. */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  199: 'Early Dialog Terminated',
  200: 'OK',
  202: 'Accepted',
  204: 'No Notification',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  412: 'Conditional Request Failed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  417: 'Unknown Resource-Priority',
  420: 'Bad Extension',
  421: 'Extension Required',
  422: 'Session Interval Too Small',
  423: 'Interval Too Brief',
  428: 'Use Identity Header',
  429: 'Provide Referrer Identity',
  433: 'Anonymity Disallowed',
  439: 'First Hop Lacks Outbound Support',
  440: 'Max-Breadth Exceeded',
  469: 'Bad Info Package',
  470: 'Consent Needed',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  489: 'Bad Event',
  491: 'Request Pending',
  493: 'Undecipherable',
  494: 'Security Agreement Required',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  555: 'Push Notification Service Not Supported',
  580: 'Precondition Failure',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
  607: 'Unwanted',
  608: 'Rejected',
};

/** The standard reason phrase of a status code. */
export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? (status < 200 ? 'Progress' : status < 300 ? 'OK' : 'Failure');
}

/**
 * Parse the text of a header value into its typed values (`parseHeader('Contact',
 * '<sip:a@b>;expires=60, <sip:c@d>')`). Headers without a typed form give their text.
 */
export function parseHeader<T = unknown>(name: string, text: string): T[] {
  const d = headerDef(name);
  if (d.parse === undefined) return [text.trim() as T];
  const lx = new Lexer(text, d.name);
  const out: T[] = [];
  for (;;) {
    out.push(d.parse(lx) as T);
    lx.ws();
    if (lx.atEnd() || !d.list) break;
    lx.expect(44, "','");
  }
  lx.finish();
  return out;
}

function nameAddr(v: NameAddr | string, header: string): NameAddr {
  return typeof v === 'string' ? (parseHeader<NameAddr>(header, v)[0] as NameAddr) : v.clone();
}

export interface RequestInit {
  method: string;
  uri: Uri | string;
  from: NameAddr | string;
  to: NameAddr | string;
  callId: string;
  cseq: number;
  via?: Via | readonly Via[];
  /** Default 70. */
  maxForwards?: number;
  contact?: NameAddr | string | readonly (NameAddr | string)[];
  /** Other headers, in order: `[name, value]` pairs or an object. */
  headers?: Iterable<[string, HeaderValue]> | Record<string, HeaderValue | HeaderValue[]>;
  body?: Uint8Array | string;
  contentType?: string | MediaType;
}

function eachHeader(
  h: RequestInit['headers'],
  fn: (name: string, value: HeaderValue | HeaderValue[]) => void,
): void {
  if (h === undefined) return;
  if (Symbol.iterator in h) for (const [k, v] of h as Iterable<[string, HeaderValue]>) fn(k, v);
  else for (const [k, v] of Object.entries(h)) fn(k, v);
}

/** Build a request from scratch (RFC 3261 §8.1.1). */
export function createRequest(init: RequestInit): SipRequest {
  if (!isToken(init.method))
    throw new SipMessageError(`invalid method: ${JSON.stringify(init.method)}`);
  const uri = typeof init.uri === 'string' ? parseUri(init.uri) : init.uri;
  const req = new SipRequest(init.method, uri, undefined, 0, 0, undefined, 0, undefined, -1);
  if (init.via !== undefined)
    req.setHeader('Via', Array.isArray(init.via) ? [...init.via] : [init.via as Via]);
  req.setHeader('Max-Forwards', init.maxForwards ?? 70);
  req.setHeader('To', nameAddr(init.to, 'To'));
  req.setHeader('From', nameAddr(init.from, 'From'));
  if (!/^[\x21-\x7e]+$/.test(init.callId)) throw new SipMessageError('invalid Call-ID');
  req.setHeader('Call-ID', init.callId);
  req.setHeader(
    'CSeq',
    new CSeq(
      init.cseq,
      init.method === 'ACK' || init.method === 'CANCEL' ? init.method : init.method,
    ),
  );
  if (init.contact !== undefined) {
    const list = Array.isArray(init.contact) ? init.contact : [init.contact];
    req.setHeader(
      'Contact',
      list.map((c: NameAddr | string) =>
        typeof c === 'string' ? (parseHeader<NameAddr>('Contact', c)[0] as NameAddr) : c,
      ),
    );
  }
  eachHeader(init.headers, (k, v) => req.addHeader(k, v));
  req.setBody(
    init.body ?? new Uint8Array(0),
    init.body !== undefined ? init.contentType : undefined,
  );
  return req;
}

export interface ResponseInit {
  /** A tag for To, added when the request's To has none (RFC 3261 §8.2.6.2). */
  toTag?: string;
  headers?: RequestInit['headers'];
  body?: Uint8Array | string;
  contentType?: string | MediaType;
}

const VIA = headerDef('Via');
const FROM = headerDef('From');
const TO = headerDef('To');
const CALL_ID = headerDef('Call-ID');
const CSEQ = headerDef('CSeq');

/**
 * A Via of the request as its copy in the response is written: a copy's parameters are
 * written from their values (a value quoted in the request is quoted only when it must be).
 */
function viaText(v: Via): string {
  return v.params.quotedMask === 0 ? v.toString() : v.clone().toString();
}

/**
 * Build a response to a request as RFC 3261 §8.2.6 says: Via (all, in order), From,
 * To (with `toTag` added when it has none), Call-ID and CSeq copied, and Timestamp for
 * a 100 (§8.2.6.1).
 */
export function createResponse(
  req: SipRequest,
  status: number,
  reason?: string,
  init?: ResponseInit,
): SipResponse {
  if (!Number.isInteger(status) || status < 100 || status > 699)
    throw new SipMessageError(`invalid status ${status}`);
  const res = new SipResponse(
    status,
    reason ?? reasonPhrase(status),
    undefined,
    0,
    0,
    undefined,
    0,
    undefined,
    -1,
  );
  res.reason = reason ?? reasonPhrase(status);
  // The header section is written line by line, as setHeader would write it, without
  // the checks a value from the API needs: these come from a parsed request.
  const vias = req.via;
  if (vias.length > 0) appendLines(res, VIA, vias.map(viaText));
  // From and To are copied as the request wrote them (§8.2.6.2): re-encoding them could
  // change what a peer compares, and some valid values (escaped spaces, quoted control
  // characters) are not accepted from the API.
  const from = req.header('From');
  let to = req.header('To');
  if (from === undefined || to === undefined)
    throw new SipParseError(
      'SIP_ERR_PARSE_MISSING_HEADER',
      'the request has no From or To',
      -1,
      400,
    );
  // Reading the tags checks that both parse.
  void req.from.tag;
  appendLines(res, FROM, [from]);
  if (init?.toTag !== undefined && req.to.tag === undefined && status !== 100) {
    if (!isToken(init.toTag))
      throw new SipMessageError(`invalid To tag: ${JSON.stringify(init.toTag)}`);
    to = `${to};tag=${init.toTag}`;
  }
  appendLines(res, TO, [to]);
  appendLines(res, CALL_ID, [req.callId]);
  const cseq = req.cseq;
  appendLines(res, CSEQ, [cseq.toString()], [cseq]);
  if (status === 100) {
    const ts = req.header('Timestamp');
    if (ts !== undefined) res.setHeader('Timestamp', ts);
  }
  eachHeader(init?.headers, (k, v) => res.addHeader(k, v));
  res.setBody(
    init?.body ?? new Uint8Array(0),
    init?.body !== undefined ? init.contentType : undefined,
  );
  return res;
}

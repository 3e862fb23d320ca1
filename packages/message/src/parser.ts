import { latin1, SCHEME, TOKEN, utf8Encode } from './chars.ts';
import { SipParseError } from './errors.ts';
import {
  knownMethod,
  readCallId,
  readCSeq,
  readNameAddr,
  readVias,
  span,
  valueEnd,
} from './fast.ts';
import {
  exactVias,
  readFrom,
  type SipMessage,
  SipRequest,
  SipResponse,
  seed,
  setReparse,
} from './message.ts';
import type { NameAddr } from './name-addr.ts';
import type { CSeq } from './typed.ts';
import type { Via } from './via.ts';

export interface ParseOptions {
  /** The largest header section accepted, in bytes (default 65,536). */
  maxHeaderBytes?: number;
  /** The largest body accepted, in bytes (default 1,048,576). */
  maxBodyBytes?: number;
  /**
   * `datagram` (default): the input is one whole datagram; without Content-Length the
   * body runs to the end. `stream`: Content-Length is required (RFC 3261 §18.3).
   */
  framing?: 'datagram' | 'stream';
}

export const DEFAULT_MAX_HEADER_BYTES = 65536;
export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

/** The token characters, over all 256 byte values. */
const W = new Uint8Array(256);
W.set(TOKEN);
/** The scheme characters, over all 256 byte values. */
const S = new Uint8Array(256);
S.set(SCHEME);

function startLineError(msg: string, offset: number): SipParseError {
  return new SipParseError('SIP_ERR_PARSE_START_LINE', msg, offset, 400);
}

/**
 * Parse one SIP message from bytes (as a transport receives them) or text.
 * Throws `SipParseError` for anything malformed at the message level; malformed
 * header values are reported when the header is read.
 */
export function parseMessage(
  input: Uint8Array | string,
  options?: ParseOptions,
): SipRequest | SipResponse {
  const maxHeader = options?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const maxBody = options?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const stream = options?.framing === 'stream';
  let b: Uint8Array;
  if (typeof input === 'string') b = utf8Encode(input);
  else if (input instanceof Uint8Array) b = input;
  else throw new TypeError('parseMessage takes a Uint8Array or a string');
  const limit = b.length;
  let hs = 0;
  while (b[hs] === 13 && b[hs + 1] === 10) hs += 2;

  // The bytes decoded one to one, for the native searches; character loops read the
  // bytes themselves. Offsets are the same in both.
  const src = latin1(b, 0, limit);

  // ---- the start line ----
  let startEnd = src.indexOf('\r', hs);
  while (startEnd >= 0 && b[startEnd + 1] !== 10) startEnd = src.indexOf('\r', startEnd + 1);
  if (startEnd < 0) {
    if (limit - hs > maxHeader) throw noHeaderEnd(limit - hs, maxHeader);
    throw new SipParseError(
      'SIP_ERR_PARSE_INCOMPLETE',
      'the start line does not end with CRLF',
      limit,
      400,
    );
  }
  if (startEnd - hs > maxHeader) throw noHeaderEnd(limit - hs, maxHeader);
  const isResponse = b[hs] === 83 && b[hs + 1] === 73 && b[hs + 2] === 80 && b[hs + 3] === 47;
  let method = '';
  let us = 0;
  let ue = 0;
  let status = 0;
  let rs = 0;
  if (isResponse) {
    // `SIP/2.0 ` is the common case; anything else is searched for.
    const sp =
      b[hs + 7] === 32 && b[hs + 4] === 50 && b[hs + 5] === 46 && b[hs + 6] === 48
        ? hs + 7
        : indexOfChar(src, ' ', hs, startEnd);
    if (sp < 0) throw startLineError('malformed status line', hs);
    checkVersion(b, hs, sp);
    let i = sp + 1;
    let code = 0;
    const cs = i;
    while (i < startEnd) {
      const c = b[i] as number;
      if (c < 48 || c > 57) break;
      code = code * 10 + c - 48;
      i++;
    }
    if (i - cs !== 3 || code < 100 || code > 699)
      throw startLineError(
        `invalid status code '${latin1(b, cs, Math.min(startEnd, cs + 12))}'`,
        cs,
      );
    if (i < startEnd && b[i] !== 32) throw startLineError('invalid status code', cs);
    status = code;
    rs = i < startEnd ? i + 1 : startEnd;
    for (let j = rs; j < startEnd; j++) {
      const c = b[j] as number;
      if ((c < 32 && c !== 9) || c === 127)
        throw startLineError('control character in the reason phrase', j);
    }
  } else {
    // The method: token characters up to the first space.
    let sp1 = hs;
    while (W[b[sp1] as number] === 1) sp1++;
    if (b[sp1] !== 32 || sp1 === hs || sp1 >= startEnd) {
      sp1 = indexOfChar(src, ' ', hs, startEnd);
      if (sp1 <= hs) throw startLineError('malformed request line', hs);
      for (let j = hs; j < sp1; j++) {
        if (W[b[j] as number] === 0) throw startLineError('invalid method', j);
      }
    }
    method = knownMethod(b, hs, sp1) ?? latin1(b, hs, sp1);
    const sp2 = indexOfChar(src, ' ', sp1 + 1, startEnd);
    if (sp2 < 0) throw startLineError('malformed request line', sp1);
    if (sp2 === sp1 + 1) throw startLineError('more than one space before the Request-URI', sp1);
    // The URI itself is checked when it is first read (parse-on-access); only its
    // shape is checked here.
    us = sp1 + 1;
    ue = sp2;
    const c0 = b[us] as number;
    // The scheme's colon, usually right after it; else anywhere in the URI.
    let colon = us;
    while (S[b[colon] as number] === 1) colon++;
    if (b[colon] !== 58 || colon >= ue) colon = indexOfChar(src, ':', us, ue);
    if (!((c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122)) || colon < 0)
      throw startLineError('the Request-URI is not an absolute URI', us);
    checkVersion(b, sp2 + 1, startEnd);
  }

  // ---- header lines, up to the empty line: one number each (see SipMessage.idx) ----
  const idx = scratch;
  let hVia = -1;
  let hFrom = -1;
  let hTo = -1;
  let hCallId = -1;
  let hCSeq = -1;
  let k = 0;
  let contentLength = -1;
  let pos = startEnd + 2;
  /** The CR of the CRLF CRLF that ends the header section. */
  let hdrEnd = -1;
  const headerLimit = Math.min(limit, hs + maxHeader);
  // The values of the headers every message is asked for, read here when they are
  // in the plain form (see fast.ts); the Via values only when every Via line is.
  let vias: Via[] | undefined;
  let nVia = 0;
  let from: NameAddr | undefined;
  let callId: string | undefined;
  let cseq: CSeq | undefined;
  for (;;) {
    if (pos >= limit) {
      // No empty line. A datagram that ends with a header line's CRLF is taken as
      // having no body.
      if (pos === limit && !stream && pos - hs <= maxHeader) {
        hdrEnd = pos - 2;
        break;
      }
      throw noHeaderEnd(limit - hs, maxHeader);
    }
    if (pos > headerLimit) throw noHeaderEnd(limit - hs, maxHeader);
    let c = b[pos] as number;
    if (c === 13) {
      if (b[pos + 1] !== 10) throw headerLineError('a CR that does not end a line', pos);
      hdrEnd = pos - 2;
      break;
    }
    if (c === 32 || c === 9) throw headerLineError('a header line starts with white space', pos);
    // The name: token characters up to optional white space and the colon.
    let j = span(W, b, pos);
    c = b[j] as number;
    const nameEnd = j;
    while (c === 32 || c === 9) c = b[++j] as number;
    if (j >= limit) throw noHeaderEnd(limit - hs, maxHeader);
    if (c !== 58) {
      if (j === pos) throw headerLineError('a header line has an empty name', pos);
      throw headerLineError(
        c === 13 || c === undefined
          ? 'a header line has no colon'
          : 'invalid character in a header name',
        j,
      );
    }
    const nl = nameEnd - pos;
    if (nl === 0) throw headerLineError('a header line has an empty name', pos);
    if (nl > 0x7ff) throw headerLineError('a header name is too long', pos);
    const colon = j;
    // Which of the headers noted here the line is: the compact or long name, in any case.
    const c0 = (b[pos] as number) | 0x20;
    let name = H_OTHER;
    switch (nl) {
      case 1:
        if (c0 === 118) name = H_VIA;
        else if (c0 === 102) name = H_FROM;
        else if (c0 === 116) name = H_TO;
        else if (c0 === 105) name = H_CALL_ID;
        else if (c0 === 108) name = H_CONTENT_LENGTH;
        break;
      case 2:
        if (c0 === 116 && ((b[pos + 1] as number) | 0x20) === 111) name = H_TO;
        break;
      case 3:
        if (c0 === 118 && (b[pos + 1] | 0x20) === 105 && (b[pos + 2] | 0x20) === 97) name = H_VIA;
        break;
      case 4:
        if (c0 === 102) {
          if (
            (b[pos + 1] | 0x20) === 114 &&
            (b[pos + 2] | 0x20) === 111 &&
            (b[pos + 3] | 0x20) === 109
          )
            name = H_FROM;
        } else if (
          c0 === 99 &&
          (b[pos + 1] | 0x20) === 115 &&
          (b[pos + 2] | 0x20) === 101 &&
          (b[pos + 3] | 0x20) === 113
        )
          name = H_CSEQ;
        break;
      case 7:
        if (
          c0 === 99 &&
          (b[pos + 1] | 0x20) === 97 &&
          (b[pos + 2] | 0x20) === 108 &&
          (b[pos + 3] | 0x20) === 108 &&
          b[pos + 4] === 45 &&
          (b[pos + 5] | 0x20) === 105 &&
          (b[pos + 6] | 0x20) === 100
        )
          name = H_CALL_ID;
        break;
      case 14:
        if (
          c0 === 99 &&
          (b[pos + 8] | 0x20) === 108 &&
          (b[pos + 13] | 0x20) === 104 &&
          // the usual spelling in one native comparison, any other case byte by byte
          (src.startsWith('Content-Length', pos) || isName(b, pos, CONTENT_LENGTH))
        )
          name = H_CONTENT_LENGTH;
        break;
    }
    // The line of a header read on every message is noted; the value of its first
    // line (of every Via line) is read now when it is plain, which also finds where
    // the line ends: a value read holds no CR or LF.
    let end = -1;
    switch (name) {
      case H_VIA:
        if (hVia < 0) hVia = k;
        if (nVia >= 0) {
          vias ??= new Array<Via>(2);
          nVia = readVias(b, src, colon + 1, limit, vias, nVia);
          if (nVia >= 0 && plainLineEnd(b, valueEnd())) end = valueEnd();
          else nVia = -1;
        }
        break;
      case H_FROM:
        if (hFrom < 0) {
          hFrom = k;
          const v = readNameAddr(b, src, colon + 1, limit, 'From');
          if (v !== undefined && plainLineEnd(b, valueEnd())) {
            from = v;
            end = valueEnd();
          }
        }
        break;
      case H_TO:
        if (hTo < 0) hTo = k;
        break;
      case H_CALL_ID:
        if (hCallId < 0) {
          hCallId = k;
          const v = readCallId(b, src, colon + 1);
          if (v !== undefined && plainLineEnd(b, valueEnd())) {
            callId = v;
            end = valueEnd();
          }
        }
        break;
      case H_CSEQ:
        if (hCSeq < 0) {
          hCSeq = k;
          const v = readCSeq(b, src, colon + 1);
          if (v !== undefined && plainLineEnd(b, valueEnd())) {
            cseq = v;
            end = valueEnd();
          }
        }
        break;
    }
    // Otherwise the end of the line is found here: a CR that an LF follows; a CRLF
    // followed by white space is a fold that continues the line. A lone CR or LF is
    // an error.
    let folded = false;
    if (end < 0) {
      // A number (Content-Length, Max-Forwards, Expires...) is read to its CR here,
      // for less than the two searches cost: digits and white space hold no CR or LF.
      let i = colon + 1;
      let ch = b[i] as number;
      while (ch === 32 || ch === 9) ch = b[++i] as number;
      if (ch >= 48 && ch <= 57) {
        do ch = b[++i] as number;
        while (ch >= 48 && ch <= 57);
        while (ch === 32 || ch === 9) ch = b[++i] as number;
        if (ch === 13 && b[i + 1] === 10) end = i;
      }
      if (end < 0) end = lineEnd(b, src, colon, colon, limit, hs, maxHeader);
      for (;;) {
        const d = b[end + 2];
        if (d !== 32 && d !== 9) break;
        folded = true;
        end = lineEnd(b, src, end + 2, colon, limit, hs, maxHeader);
      }
    }
    // Content-Length is needed now, to find the body.
    if (name === H_CONTENT_LENGTH)
      contentLength = checkContentLength(b, colon + 1, end, contentLength, pos);
    if (end > 0xfffff) throw noHeaderEnd(end, 0xfffff);
    if (k === idx.length) idx.length = k * 2;
    idx[k++] = (folded ? 0x80000000 : 0) | (nl << 20) | end;
    pos = end + 2;
  }
  const lineIdx = idx.slice(0, k);

  // ---- body ----
  if (contentLength < 0 && stream)
    throw new SipParseError(
      'SIP_ERR_PARSE_CONTENT_LENGTH',
      'a message on a stream must have Content-Length',
      0,
      400,
      'Content-Length',
    );
  const total = b.length;
  const bodyStart = Math.min(hdrEnd + 4, total);
  const avail = total - bodyStart;
  if (contentLength > maxBody || (contentLength < 0 && avail > maxBody))
    throw new SipParseError(
      'SIP_ERR_PARSE_TOO_LARGE',
      `the body is larger than ${maxBody} bytes`,
      bodyStart,
      513,
    );
  if (contentLength > avail) throw contentLengthTooLarge(contentLength, avail, bodyStart);
  const be = contentLength < 0 ? total : bodyStart + contentLength;
  const packed =
    hotBits(hVia) |
    (hotBits(hFrom) << 6) |
    (hotBits(hTo) << 12) |
    (hotBits(hCallId) << 18) |
    (hotBits(hCSeq) << 24);
  const m = isResponse
    ? new SipResponse(status, undefined, b, hs, startEnd, lineIdx, be, undefined, packed)
    : new SipRequest(method, undefined, b, hs, startEnd, lineIdx, be, undefined, packed);
  readFrom(m, src);
  seed(m, vias !== undefined && nVia > 0 ? exactVias(vias, nVia) : undefined, from, callId, cseq);
  return m;
}

/** Reused for every parse; each message keeps an exact-size copy. */
const scratch: number[] = new Array(64).fill(0);

/** The header names the parser tells apart: those read on every message, and Content-Length. */
const H_OTHER = 0;
const H_VIA = 1;
const H_FROM = 2;
const H_TO = 3;
const H_CALL_ID = 4;
const H_CSEQ = 5;
const H_CONTENT_LENGTH = 6;

/** Whether the CR at `cr` ends a line: an LF follows, and no white space that would fold it. */
function plainLineEnd(b: Uint8Array, cr: number): boolean {
  const d = b[cr + 2];
  return b[cr + 1] === 10 && d !== 32 && d !== 9;
}

/** A hot line index as stored in 6 bits: 63 when absent or too far down. */
function hotBits(l: number): number {
  return l < 0 || l > 62 ? 63 : l;
}

/**
 * Whether the header name at `pos` (token characters, of the same length) is `lower`,
 * ignoring case. Or-ing 0x20 folds case and leaves '-' and digits as they are.
 */
function isName(b: Uint8Array, pos: number, lower: Uint8Array): boolean {
  for (let j = 1; j < lower.length; j++)
    if (((b[pos + j] as number) | 0x20) !== lower[j]) return false;
  return true;
}

const CONTENT_LENGTH = utf8Encode('content-length');

/** The first `ch` in `from..to`, or -1. */
function indexOfChar(s: string, ch: string, from: number, to: number): number {
  const i = s.indexOf(ch, from);
  return i < to ? i : -1;
}

/**
 * The CR that ends the segment of a header line from `seg` (the line's colon, or the
 * start of a folded continuation): the first CR, which an LF must follow, with no LF
 * before it.
 */
function lineEnd(
  b: Uint8Array,
  src: string,
  seg: number,
  colon: number,
  limit: number,
  hs: number,
  maxHeader: number,
): number {
  const end = src.indexOf('\r', seg);
  if (end < 0 || b[end + 1] !== 10 || src.indexOf('\n', seg) !== end + 1)
    throw lineEndError(b, colon, limit, hs, maxHeader);
  return end;
}

/**
 * The error of a header line whose end is malformed or missing, found the way the
 * line is read: segment by segment (folds), a CR that no LF follows first, then an LF
 * alone, then the end of the input.
 */
function lineEndError(
  b: Uint8Array,
  colon: number,
  limit: number,
  hs: number,
  maxHeader: number,
): SipParseError {
  const src = latin1(b, 0, limit);
  let seg = colon;
  let end = src.indexOf('\r', seg);
  if (end < 0) end = limit;
  for (;;) {
    if (end < limit && b[end + 1] !== 10)
      return headerLineError('a header value has a CR that does not end the line', end);
    const lf = src.indexOf('\n', seg);
    if (lf >= 0 && lf < end) return headerLineError('a line ends with LF alone', lf);
    if (end >= limit) return noHeaderEnd(limit - hs, maxHeader);
    const d = b[end + 2];
    if (d !== 32 && d !== 9) return noHeaderEnd(limit - hs, maxHeader);
    seg = end + 2;
    end = src.indexOf('\r', seg);
    if (end < 0) end = limit;
  }
}

function checkContentLength(
  src: Uint8Array,
  from: number,
  end: number,
  prev: number,
  pos: number,
): number {
  const v = readContentLength(src, from, end);
  if (prev >= 0 && v !== prev)
    throw new SipParseError(
      'SIP_ERR_PARSE_CONTENT_LENGTH',
      'conflicting Content-Length headers',
      pos,
      400,
      'Content-Length',
    );
  return v;
}

function noHeaderEnd(length: number, max: number): SipParseError {
  if (length > max)
    return new SipParseError(
      'SIP_ERR_PARSE_TOO_LARGE',
      `the header section is larger than ${max} bytes`,
      max,
      513,
    );
  return new SipParseError(
    'SIP_ERR_PARSE_INCOMPLETE',
    'the header section does not end with an empty line',
    length,
    400,
  );
}

function contentLengthTooLarge(cl: number, avail: number, at: number): SipParseError {
  return new SipParseError(
    'SIP_ERR_PARSE_CONTENT_LENGTH',
    `Content-Length ${cl} is larger than the ${avail} bytes of body received`,
    at,
    400,
    'Content-Length',
  );
}

function headerLineError(msg: string, offset: number): SipParseError {
  return new SipParseError('SIP_ERR_PARSE_HEADER', msg, offset, 400);
}

function checkVersion(b: Uint8Array, from: number, to: number): void {
  if (
    to - from === 7 &&
    b[from] === 83 &&
    b[from + 1] === 73 &&
    b[from + 2] === 80 &&
    b[from + 3] === 47 &&
    b[from + 4] === 50 &&
    b[from + 5] === 46 &&
    b[from + 6] === 48
  )
    return;
  const v = latin1(b, from, to);
  const offset = from;
  if (/^SIP\/\d+\.\d+$/i.test(v)) {
    if (v.toUpperCase() === 'SIP/2.0') return;
    throw new SipParseError('SIP_ERR_PARSE_VERSION', `unsupported SIP version '${v}'`, offset, 505);
  }
  throw startLineError(`malformed SIP version '${v.slice(0, 20)}'`, offset);
}

function readContentLength(src: Uint8Array, from: number, end: number): number {
  let vs = from;
  for (;;) {
    const c = src[vs] as number;
    if (vs < end && (c === 32 || c === 9)) vs++;
    else if (c === 13 && vs + 2 < end && src[vs + 1] === 10) vs += 3;
    else break;
  }
  let i = vs;
  let v = 0;
  while (i < end) {
    const c = src[i] as number;
    if (c < 48 || c > 57) break;
    v = v * 10 + c - 48;
    i++;
  }
  const digits = i - vs;
  while (i < end) {
    const c = src[i] as number;
    if (c !== 32 && c !== 9) break;
    i++;
  }
  if (digits === 0 || i !== end)
    throw new SipParseError(
      'SIP_ERR_PARSE_CONTENT_LENGTH',
      `malformed Content-Length '${latin1(src, vs, Math.min(end, vs + 20))}'`,
      vs,
      400,
      'Content-Length',
    );
  if (digits > 10 || v > 0xffffffff)
    throw new SipParseError(
      'SIP_ERR_PARSE_TOO_LARGE',
      'Content-Length is too large',
      vs,
      513,
      'Content-Length',
    );
  return v;
}

setReparse((b) => parseMessage(b) as SipMessage);

import { findHeaderEnd, isAscii, latin1, TOKEN, utf8Decode, utf8Encode } from './chars.ts';
import { SipParseError } from './errors.ts';
import { type SipMessage, SipRequest, SipResponse, setReparse } from './message.ts';

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

const EMPTY = new Uint8Array(0);

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
  let src: string;
  let start = 0;
  let hdrEnd: number;
  let total: number;
  if (typeof input === 'string') {
    while (input.charCodeAt(start) === 13 && input.charCodeAt(start + 1) === 10) start += 2;
    hdrEnd = input.indexOf('\r\n\r\n', start);
    total = input.length;
    if (hdrEnd < 0 && !stream && total - start <= maxHeader && input.endsWith('\r\n')) {
      hdrEnd = total - 2;
      input = `${input}\r\n`;
      total = input.length;
    }
    if (hdrEnd < 0 || hdrEnd - start > maxHeader) {
      throw noHeaderEnd(total - start, maxHeader);
    }
    src = input.slice(start, hdrEnd);
  } else {
    if (!(input instanceof Uint8Array))
      throw new TypeError('parseMessage takes a Uint8Array or a string');
    while (input[start] === 13 && input[start + 1] === 10) start += 2;
    hdrEnd = findHeaderEnd(input, start);
    total = input.length;
    if (
      hdrEnd < 0 &&
      !stream &&
      total - start <= maxHeader &&
      input[total - 2] === 13 &&
      input[total - 1] === 10
    ) {
      // A datagram whose header section is not closed by an empty line: take it as
      // having no body.
      hdrEnd = total - 2;
      total = hdrEnd + 4;
    }
    if (hdrEnd < 0 || hdrEnd - start > maxHeader) {
      throw noHeaderEnd(total - start, maxHeader);
    }
    src = isAscii(input, start, hdrEnd)
      ? latin1(input, start, hdrEnd)
      : utf8Decode(input.subarray(start, hdrEnd));
  }
  const bodyStart = hdrEnd + 4;

  // ---- the start line ----
  let startEnd = src.indexOf('\r\n');
  if (startEnd < 0) startEnd = src.length;
  const isResponse = src.charCodeAt(0) === 83 && src.startsWith('SIP/');
  let method = '';
  let uriText = '';
  let status = 0;
  let reason = '';
  if (isResponse) {
    const sp = src.indexOf(' ');
    if (sp < 0 || sp > startEnd) throw startLineError('malformed status line', 0);
    checkVersion(src.slice(0, sp), 0);
    let i = sp + 1;
    let code = 0;
    const cs = i;
    while (i < startEnd) {
      const c = src.charCodeAt(i);
      if (c < 48 || c > 57) break;
      code = code * 10 + c - 48;
      i++;
    }
    if (i - cs !== 3 || code < 100 || code > 699)
      throw startLineError(
        `invalid status code '${src.slice(cs, Math.min(startEnd, cs + 12))}'`,
        cs,
      );
    if (i < startEnd && src.charCodeAt(i) !== 32) throw startLineError('invalid status code', cs);
    status = code;
    reason = i < startEnd ? src.slice(i + 1, startEnd) : '';
    for (let j = 0; j < reason.length; j++) {
      const c = reason.charCodeAt(j);
      if ((c < 32 && c !== 9) || c === 127)
        throw startLineError('control character in the reason phrase', i + 1 + j);
    }
  } else {
    const sp1 = src.indexOf(' ');
    if (sp1 <= 0 || sp1 > startEnd) throw startLineError('malformed request line', 0);
    for (let j = 0; j < sp1; j++) {
      const c = src.charCodeAt(j);
      if (c > 127 || TOKEN[c] === 0) throw startLineError('invalid method', j);
    }
    method = src.slice(0, sp1);
    const sp2 = src.indexOf(' ', sp1 + 1);
    if (sp2 < 0 || sp2 > startEnd) throw startLineError('malformed request line', sp1);
    if (sp2 === sp1 + 1) throw startLineError('more than one space before the Request-URI', sp1);
    uriText = src.slice(sp1 + 1, sp2);
    for (let j = 0; j < uriText.length; j++) {
      const c = uriText.charCodeAt(j);
      if (c <= 32 || c === 127 || c === 60 || c === 62 || c > 127)
        throw startLineError('invalid character in the Request-URI', sp1 + 1 + j);
    }
    const colon = uriText.indexOf(':');
    if (colon <= 0) throw startLineError('the Request-URI has no scheme', sp1 + 1);
    checkVersion(src.slice(sp2 + 1, startEnd), sp2 + 1);
  }

  // ---- header lines ----
  const idx: number[] = [];
  let contentLength = -1;
  let pos = startEnd + 2;
  const n = src.length;
  if (pos < n) {
    const c = src.charCodeAt(pos);
    if (c === 32 || c === 9) throw headerLineError('a header line starts with white space', pos);
  }
  while (pos < n) {
    let end = src.indexOf('\r\n', pos);
    if (end < 0) end = n;
    let folded = false;
    while (end < n) {
      const c = src.charCodeAt(end + 2);
      if (c !== 32 && c !== 9) break;
      folded = true;
      end = src.indexOf('\r\n', end + 2);
      if (end < 0) end = n;
    }
    const colon = src.indexOf(':', pos);
    if (colon < 0 || colon > end) throw headerLineError('a header line has no colon', pos);
    let nameEnd = colon;
    while (nameEnd > pos) {
      const c = src.charCodeAt(nameEnd - 1);
      if (c !== 32 && c !== 9) break;
      nameEnd--;
    }
    if (nameEnd === pos) throw headerLineError('a header line has an empty name', pos);
    for (let j = pos; j < nameEnd; j++) {
      const c = src.charCodeAt(j);
      if (c > 127 || TOKEN[c] === 0) throw headerLineError('invalid character in a header name', j);
    }
    let vs = colon + 1;
    for (;;) {
      const c = src.charCodeAt(vs);
      if (vs < end && (c === 32 || c === 9)) vs++;
      else if (c === 13 && vs + 2 < end && src.charCodeAt(vs + 1) === 10) vs += 3;
      else break;
    }
    for (let j = vs; j < end; j++) {
      const c = src.charCodeAt(j);
      if ((c === 10 && src.charCodeAt(j - 1) !== 13) || (c === 13 && src.charCodeAt(j + 1) !== 10))
        throw headerLineError('control character in a header value', j);
    }
    // Content-Length is needed now, to find the body.
    const nl = nameEnd - pos;
    if (
      (nl === 14 && src.slice(pos, nameEnd).toLowerCase() === 'content-length') ||
      (nl === 1 && (src.charCodeAt(pos) | 0x20) === 108)
    ) {
      const v = readContentLength(src, vs, end);
      if (contentLength >= 0 && v !== contentLength)
        throw new SipParseError(
          'SIP_ERR_PARSE_CONTENT_LENGTH',
          'conflicting Content-Length headers',
          pos,
          400,
          'Content-Length',
        );
      contentLength = v;
    }
    idx.push(pos, nameEnd, vs, folded ? ~end : end);
    pos = end + 2;
  }

  // ---- body ----
  let body: Uint8Array;
  let original: Uint8Array | string;
  if (contentLength < 0 && stream)
    throw new SipParseError(
      'SIP_ERR_PARSE_CONTENT_LENGTH',
      'a message on a stream must have Content-Length',
      0,
      400,
      'Content-Length',
    );
  if (contentLength > maxBody || (contentLength < 0 && total - bodyStart > maxBody))
    throw new SipParseError(
      'SIP_ERR_PARSE_TOO_LARGE',
      `the body is larger than ${maxBody} bytes`,
      bodyStart,
      513,
    );
  if (typeof input === 'string') {
    const rest = utf8Encode(input.slice(bodyStart));
    if (contentLength > rest.length)
      throw contentLengthTooLarge(contentLength, rest.length, bodyStart);
    body = contentLength < 0 ? rest : rest.subarray(0, contentLength);
    original =
      contentLength < 0 || contentLength === rest.length
        ? input.slice(start)
        : input.slice(start, bodyStart) + utf8Decode(body);
  } else {
    const avail = total - bodyStart;
    if (contentLength > avail) throw contentLengthTooLarge(contentLength, avail, bodyStart);
    const bodyEnd = contentLength < 0 ? total : bodyStart + contentLength;
    body = bodyEnd === bodyStart ? EMPTY : input.subarray(bodyStart, bodyEnd);
    original = start === 0 && bodyEnd === total ? input : input.subarray(start, bodyEnd);
  }

  if (isResponse) return new SipResponse(status, reason, src, startEnd, idx, body, original);
  return new SipRequest(method, uriText, src, startEnd, idx, body, original);
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

function checkVersion(v: string, offset: number): void {
  if (v === 'SIP/2.0') return;
  if (/^SIP\/\d+\.\d+$/i.test(v)) {
    if (v.toUpperCase() === 'SIP/2.0') return;
    throw new SipParseError('SIP_ERR_PARSE_VERSION', `unsupported SIP version '${v}'`, offset, 505);
  }
  throw startLineError(`malformed SIP version '${v.slice(0, 20)}'`, offset);
}

function readContentLength(src: string, vs: number, end: number): number {
  let i = vs;
  let v = 0;
  while (i < end) {
    const c = src.charCodeAt(i);
    if (c < 48 || c > 57) break;
    v = v * 10 + c - 48;
    i++;
  }
  const digits = i - vs;
  while (i < end) {
    const c = src.charCodeAt(i);
    if (c !== 32 && c !== 9) break;
    i++;
  }
  if (digits === 0 || i !== end)
    throw new SipParseError(
      'SIP_ERR_PARSE_CONTENT_LENGTH',
      `malformed Content-Length '${src.slice(vs, Math.min(end, vs + 20))}'`,
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

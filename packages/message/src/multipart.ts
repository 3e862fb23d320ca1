import { latin1 } from './chars.ts';
import { SipParseError } from './errors.ts';
import { Lexer } from './lexer.ts';
import { MediaType } from './typed.ts';

/** One part of a multipart body (RFC 2046 §5.1, RFC 5621). */
export interface BodyPart {
  /** The part's header lines, as `[name, value]`. */
  headers: [string, string][];
  contentType: MediaType | undefined;
  body: Uint8Array;
}

function find(b: Uint8Array, pat: Uint8Array, from: number): number {
  outer: for (let i = from; i <= b.length - pat.length; i++) {
    for (let j = 0; j < pat.length; j++) if (b[i + j] !== pat[j]) continue outer;
    return i;
  }
  return -1;
}

/** Split a multipart body into its parts, using the `boundary` of its Content-Type. */
export function parseMultipart(body: Uint8Array, contentType: MediaType): BodyPart[] {
  const boundary = contentType.params.get('boundary');
  if (!boundary || contentType.type.toLowerCase() !== 'multipart')
    throw new SipParseError(
      'SIP_ERR_PARSE_HEADER',
      'not a multipart Content-Type with a boundary',
      -1,
      400,
      'Content-Type',
    );
  const delim = new TextEncoder().encode(`--${boundary}`);
  const parts: BodyPart[] = [];
  let pos = find(body, delim, 0);
  if (pos < 0)
    throw new SipParseError('SIP_ERR_PARSE_HEADER', 'multipart body without its boundary', 0, 400);
  for (let guard = 0; guard < 10000; guard++) {
    let start = pos + delim.length;
    if (body[start] === 45 && body[start + 1] === 45) return parts; // close delimiter
    while (start < body.length && body[start] !== 10) start++; // transport padding, CRLF
    start++;
    const next = find(body, delim, start);
    if (next < 0)
      throw new SipParseError('SIP_ERR_PARSE_HEADER', 'multipart body is not closed', start, 400);
    let end = next;
    if (body[end - 1] === 10) end--;
    if (body[end - 1] === 13) end--;
    const part = body.subarray(start, Math.max(start, end));
    let hdrEnd = -1;
    let sep = 0;
    for (let i = 0; i + 1 < part.length; i++) {
      if (part[i] === 13 && part[i + 1] === 10 && part[i + 2] === 13 && part[i + 3] === 10) {
        hdrEnd = i;
        sep = 4;
        break;
      }
      if (i === 0 && part[0] === 13 && part[1] === 10) {
        hdrEnd = 0;
        sep = 2;
        break;
      }
    }
    const headers: [string, string][] = [];
    let contentTypeOfPart: MediaType | undefined;
    if (hdrEnd > 0) {
      for (const line of latin1(part, 0, hdrEnd).split(/\r\n(?![ \t])/)) {
        const c = line.indexOf(':');
        if (c <= 0)
          throw new SipParseError('SIP_ERR_PARSE_HEADER', 'malformed part header', start, 400);
        const name = line.slice(0, c).trim();
        const value = line.slice(c + 1).trim();
        headers.push([name, value]);
        if (name.toLowerCase() === 'content-type')
          contentTypeOfPart = MediaType.parse(new Lexer(value, 'Content-Type'));
      }
    }
    parts.push({
      headers,
      contentType: contentTypeOfPart,
      body: hdrEnd < 0 ? part : part.subarray(hdrEnd + sep),
    });
    pos = next;
  }
  throw new SipParseError('SIP_ERR_PARSE_HEADER', 'too many body parts', 0, 400);
}

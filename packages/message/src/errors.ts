/**
 * Error codes of `@sipworks/message`. Users match on `code`, never on the message text.
 *
 * | code | status | when |
 * | --- | --- | --- |
 * | `SIP_ERR_PARSE_START_LINE` | 400 | the request or status line is malformed |
 * | `SIP_ERR_PARSE_VERSION` | 505 | the SIP version is not 2.0 |
 * | `SIP_ERR_PARSE_HEADER` | 400 | a header line or value is malformed |
 * | `SIP_ERR_PARSE_URI` | 400 | a URI is malformed |
 * | `SIP_ERR_PARSE_CONTENT_LENGTH` | 400 | Content-Length is malformed, negative, or larger than the body |
 * | `SIP_ERR_PARSE_TOO_LARGE` | 513 | the header section or body exceeds its limit |
 * | `SIP_ERR_PARSE_MISSING_HEADER` | 400 | a mandatory header is missing |
 * | `SIP_ERR_PARSE_INCOMPLETE` | 400 | the input ends before the end of the header section |
 */
export type SipParseErrorCode =
  | 'SIP_ERR_PARSE_START_LINE'
  | 'SIP_ERR_PARSE_VERSION'
  | 'SIP_ERR_PARSE_HEADER'
  | 'SIP_ERR_PARSE_URI'
  | 'SIP_ERR_PARSE_CONTENT_LENGTH'
  | 'SIP_ERR_PARSE_TOO_LARGE'
  | 'SIP_ERR_PARSE_MISSING_HEADER'
  | 'SIP_ERR_PARSE_INCOMPLETE';

/** A message, header or URI could not be parsed. */
export class SipParseError extends Error {
  override name = 'SipParseError';
  /** Stable error code. */
  readonly code: SipParseErrorCode;
  /** The SIP status a request carrying this defect should be answered with. */
  readonly status: number;
  /** Offset in the input (bytes of the message, or characters of the value parsed) where the problem was found; -1 when unknown. */
  readonly offset: number;
  /** The header the defect was found in, when it was in a header. */
  readonly header: string | undefined;

  constructor(
    code: SipParseErrorCode,
    message: string,
    offset = -1,
    status = 400,
    header?: string,
  ) {
    super(message);
    this.code = code;
    this.status = status;
    this.offset = offset;
    this.header = header;
  }
}

/** Misuse of the API (as opposed to bad input from a peer). */
export class SipMessageError extends Error {
  override name = 'SipMessageError';
  readonly code: 'SIP_ERR_MESSAGE_INVALID_ARGUMENT';
  constructor(message: string) {
    super(message);
    this.code = 'SIP_ERR_MESSAGE_INVALID_ARGUMENT';
  }
}

export function headerError(text: string, header: string | undefined, offset = -1): SipParseError {
  return new SipParseError('SIP_ERR_PARSE_HEADER', text, offset, 400, header);
}

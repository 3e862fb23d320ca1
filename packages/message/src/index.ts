export {
  createRequest,
  createResponse,
  parseHeader,
  REASON_PHRASES,
  type RequestInit,
  type ResponseInit,
  reasonPhrase,
} from './build.ts';
export { SipMessageError, SipParseError, type SipParseErrorCode } from './errors.ts';
export { type FramerItem, StreamFramer, type StreamFramerOptions } from './framer.ts';
export { canonicalName, type HeaderDef, headerDef } from './headers.ts';
export { type HeaderValue, SipMessage, SipRequest, SipResponse } from './message.ts';
export { type BodyPart, parseMultipart } from './multipart.ts';
export { Contact, NameAddr } from './name-addr.ts';
export { type ParamStyle, Params, type ParamsInit, paramEntries } from './params.ts';
export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_HEADER_BYTES,
  type ParseOptions,
  parseMessage,
} from './parser.ts';
export {
  AuthHeader,
  CSeq,
  EventHeader,
  MediaType,
  RAck,
  ReasonHeader,
  Replaces,
  RetryAfter,
  SessionExpires,
  SubscriptionState,
  ValueWithParams,
} from './typed.ts';
export { parseUri, Uri, type UriParts } from './uri.ts';
export { validateMessage } from './validate.ts';
export { MAGIC_COOKIE, Via } from './via.ts';

import type { SipMessage } from './message.ts';

/** The bytes of a message (`msg.serialize()`). */
export function serialize(msg: SipMessage): Uint8Array {
  return msg.serialize();
}

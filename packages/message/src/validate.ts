import { SipParseError } from './errors.ts';
import { headerDef } from './headers.ts';
import type { SipMessage, SipRequest, SipResponse } from './message.ts';
import type { NameAddr } from './name-addr.ts';

const SINGLE = [
  'from',
  'to',
  'call-id',
  'cseq',
  'max-forwards',
  'content-length',
  'content-type',
  'expires',
].map(headerDef);

/**
 * Read every header the transaction and dialog layers depend on and throw the first
 * `SipParseError` found (its `status` is what a request should be answered with; a
 * response that fails is dropped). Returns the message when it is well-formed.
 *
 * Checks: Via (at least one), From, To, Call-ID and CSeq present, single and
 * well-formed; the CSeq method equals the request method (RFC 4475 §3.1.2.17-18);
 * Max-Forwards, Contact, Content-Type, Expires, Route, Record-Route well-formed; the
 * Request-URI and the From, To and Contact URIs well-formed.
 */
export function validateMessage<T extends SipRequest | SipResponse>(msg: T): T {
  const m = msg as SipMessage;
  const d = m.firstRepeated(SINGLE);
  // Header fields that are not lists appear once (RFC 3261 §7.3.1).
  if (d !== undefined)
    throw new SipParseError(
      'SIP_ERR_PARSE_HEADER',
      `more than one ${d.name} header`,
      -1,
      400,
      d.name,
    );
  if (m.via.length === 0)
    throw new SipParseError('SIP_ERR_PARSE_MISSING_HEADER', 'missing Via header', -1, 400, 'Via');
  m.from.checkUri();
  m.to.checkUri();
  void m.callId;
  const cseq = m.cseq;
  if (msg.isRequest) {
    void msg.uri;
    const method = msg.method;
    if (cseq.method !== method && !(method === 'CANCEL' && cseq.method === 'CANCEL'))
      throw new SipParseError(
        'SIP_ERR_PARSE_HEADER',
        `the CSeq method ${cseq.method} does not match the request method ${method}`,
        -1,
        400,
        'CSeq',
      );
  }
  void m.maxForwards;
  for (const c of m.contacts) if (!c.star) c.checkUri();
  void m.contentType;
  void m.expires;
  for (const r of m.getAll<NameAddr>('route')) r.checkUri();
  for (const r of m.getAll<NameAddr>('record-route')) r.checkUri();
  return msg;
}

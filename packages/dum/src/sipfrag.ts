/**
 * `message/sipfrag` (RFC 3420) as the `refer` event package uses it (RFC 3515 §2.4.5):
 * each NOTIFY carries at least the status line of the latest response the referenced
 * request got, e.g. `SIP/2.0 180 Ringing`.
 */

/** The status line read from a sipfrag body. */
export interface SipfragStatus {
  /** 100-699. */
  readonly status: number;
  /** The reason phrase (may be empty). */
  readonly reason: string;
  /** Whether the status is final (200-699): the referenced request has ended. */
  readonly final: boolean;
}

/** The MIME type of NOTIFY bodies of the `refer` event (RFC 3515 §2.4.5). */
export const SIPFRAG_CONTENT_TYPE = 'message/sipfrag;version=2.0';

/** Longest status line read; a sipfrag with a longer first line is refused. */
const MAX_LINE = 1024;

const STATUS_LINE = /^SIP\/2\.0 ([1-6]\d\d)(?: ([^\r\n]*))?$/i;

/**
 * Read the status line at the start of a sipfrag body (RFC 3420 §2, RFC 3515 §2.4.5).
 * Returns `undefined` for anything else (empty, a request line, garbage, a status out
 * of 100-699): a peer's bad body never throws.
 */
export function parseSipfrag(body: Uint8Array | string | undefined): SipfragStatus | undefined {
  if (body === undefined) return undefined;
  let text: string;
  try {
    const head =
      typeof body === 'string' ? body.slice(0, MAX_LINE + 2) : body.subarray(0, MAX_LINE + 2);
    text =
      typeof head === 'string' ? head : new TextDecoder('utf-8', { fatal: false }).decode(head);
  } catch {
    return undefined;
  }
  const end = text.search(/\r?\n/);
  const line = (end < 0 ? text : text.slice(0, end)).trim();
  if (line.length === 0 || line.length > MAX_LINE) return undefined;
  const m = STATUS_LINE.exec(line);
  if (!m) return undefined;
  const status = Number(m[1]);
  return { status, reason: (m[2] ?? '').trim(), final: status >= 200 };
}

/** A sipfrag body with one status line (`SIP/2.0 <status> <reason>` CRLF). */
export function sipfrag(status: number, reason: string): string {
  if (!Number.isInteger(status) || status < 100 || status > 699)
    throw new RangeError(`a sipfrag status is 100-699, not ${status}`);
  return `SIP/2.0 ${status} ${reason.replace(/[\r\n]/g, ' ')}\r\n`;
}

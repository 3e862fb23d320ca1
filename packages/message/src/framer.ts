import { findHeaderEnd, latin1 } from './chars.ts';
import { SipParseError } from './errors.ts';
import type { SipRequest, SipResponse } from './message.ts';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_HEADER_BYTES, parseMessage } from './parser.ts';

/** What a `StreamFramer` yields. */
export type FramerItem =
  | { type: 'message'; message: SipRequest | SipResponse; bytes: Uint8Array }
  /** A CRLFCRLF keep-alive ping (RFC 5626 §4.4.1): answer it with a CRLF pong. */
  | { type: 'ping' }
  /** A lone CRLF: the pong answering our ping. */
  | { type: 'pong' };

export interface StreamFramerOptions {
  maxHeaderBytes?: number;
  maxBodyBytes?: number;
}

const CL = /^(?:content-length|l)[ \t]*:[ \t]*(\d{1,10})[ \t]*$/im;

/**
 * Turns the byte chunks of a stream transport (TCP, TLS) into whole SIP messages, as
 * RFC 3261 §18.3 frames them: header section up to the empty line, then exactly
 * Content-Length bytes of body. Also reports RFC 5626 keep-alives.
 *
 * A framing error (header section or body over its limit, no Content-Length) is thrown
 * as `SipParseError`; the stream cannot be resynchronised after one and should be
 * closed. Every later `push` throws the same error.
 */
export class StreamFramer {
  private readonly maxHeader: number;
  private readonly maxBody: number;
  private buf: Uint8Array = new Uint8Array(0);
  private len = 0;
  /** Body length of the message whose header section is complete, or -1. */
  private need = -1;
  private headEnd = -1;
  private failed: SipParseError | undefined;

  constructor(options?: StreamFramerOptions) {
    this.maxHeader = options?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.maxBody = options?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  /** Bytes held, waiting for the rest of a message. */
  get buffered(): number {
    return this.len;
  }

  /** Feed a chunk; returns the items it completed, in order. */
  push(chunk: Uint8Array): FramerItem[] {
    if (this.failed) throw this.failed;
    this.append(chunk);
    const out: FramerItem[] = [];
    let off = 0;
    try {
      for (;;) {
        const b = this.buf;
        const avail = this.len - off;
        if (this.need < 0) {
          // Keep-alives between messages.
          if (avail >= 2 && b[off] === 13 && b[off + 1] === 10) {
            if (avail >= 4 && b[off + 2] === 13 && b[off + 3] === 10) {
              out.push({ type: 'ping' });
              off += 4;
            } else if (avail === 3 && b[off + 2] === 13) {
              break; // wait: a ping may be arriving
            } else {
              out.push({ type: 'pong' });
              off += 2;
            }
            continue;
          }
          if (avail === 1 && b[off] === 13) break;
          if (avail === 0) break;
          const end = findHeaderEnd(b.subarray(0, this.len), off);
          if (end < 0) {
            if (avail > this.maxHeader)
              throw new SipParseError(
                'SIP_ERR_PARSE_TOO_LARGE',
                `the header section is larger than ${this.maxHeader} bytes`,
                this.maxHeader,
                513,
              );
            break;
          }
          if (end - off > this.maxHeader)
            throw new SipParseError(
              'SIP_ERR_PARSE_TOO_LARGE',
              `the header section is larger than ${this.maxHeader} bytes`,
              this.maxHeader,
              513,
            );
          const m = CL.exec(latin1(b, off, end));
          if (m === null)
            throw new SipParseError(
              'SIP_ERR_PARSE_CONTENT_LENGTH',
              'a message on a stream must have a valid Content-Length',
              off,
              400,
              'Content-Length',
            );
          const cl = Number(m[1]);
          if (cl > this.maxBody)
            throw new SipParseError(
              'SIP_ERR_PARSE_TOO_LARGE',
              `the body is larger than ${this.maxBody} bytes`,
              end + 4,
              513,
            );
          this.need = cl;
          this.headEnd = end + 4 - off;
        }
        const total = this.headEnd + this.need;
        if (this.len - off < total) break;
        const bytes = b.slice(off, off + total);
        off += total;
        this.need = -1;
        this.headEnd = -1;
        out.push({
          type: 'message',
          message: parseMessage(bytes, {
            framing: 'stream',
            maxHeaderBytes: this.maxHeader,
            maxBodyBytes: this.maxBody,
          }),
          bytes,
        });
      }
    } catch (e) {
      if (e instanceof SipParseError) this.failed = e;
      throw e;
    } finally {
      this.consume(off);
    }
    return out;
  }

  /** Forget anything buffered (after the connection is closed). */
  reset(): void {
    this.buf = new Uint8Array(0);
    this.len = 0;
    this.need = -1;
    this.headEnd = -1;
    this.failed = undefined;
  }

  private append(chunk: Uint8Array): void {
    if (this.len === 0) {
      this.buf = chunk;
      this.len = chunk.length;
      return;
    }
    const need = this.len + chunk.length;
    if (this.buf.buffer.byteLength - this.buf.byteOffset < need || this.buf.length < need) {
      const nb = new Uint8Array(Math.max(need, this.len * 2, 4096));
      nb.set(this.buf.subarray(0, this.len), 0);
      this.buf = nb;
    }
    this.buf.set(chunk, this.len);
    this.len = need;
  }

  private consume(n: number): void {
    if (n === 0) {
      // Keep our own copy: the caller may reuse the chunk's memory.
      if (this.len > 0 && this.buf.length === this.len) this.buf = this.buf.slice(0, this.len);
      return;
    }
    const rest = this.len - n;
    this.buf = rest === 0 ? new Uint8Array(0) : this.buf.slice(n, this.len);
    this.len = rest;
  }
}

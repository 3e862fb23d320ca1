// Shared helpers for the @sipworks/message test suites.
import { readdirSync, readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { SipRequest, SipResponse } from '../src/index.ts';
import { SipParseError, serialize, validateMessage } from '../src/index.ts';

export type SipMessage = SipRequest | SipResponse;

const FIXTURES = new URL('./fixtures/', import.meta.url);

/** The bytes of a fixture file, relative to test/fixtures/. */
export function fixture(relativePath: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(relativePath, FIXTURES)));
}

/** The file names (without extension) of a fixture folder. */
export function fixtureNames(folder: string, extension: string): string[] {
  return readdirSync(new URL(`${folder}/`, FIXTURES))
    .filter((name) => name.endsWith(extension))
    .map((name) => name.slice(0, -extension.length))
    .sort();
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Joins lines with CRLF and ends the header section with an empty line. */
export function sipText(lines: string[], body = ''): string {
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

export function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A byte-for-byte readable rendering (latin1) so that failing comparisons show a useful diff. */
export function bytesView(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

export function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  expect(actual.length).toBe(expected.length);
  expect(bytesView(actual)).toBe(bytesView(expected));
}

/** Index just past the first CRLFCRLF, or -1. */
export function headerSectionEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i + 4;
    }
  }
  return -1;
}

export function asRequest(msg: SipMessage): SipRequest {
  expect(msg.isRequest).toBe(true);
  return msg as SipRequest;
}

export function asResponse(msg: SipMessage): SipResponse {
  expect(msg.isRequest).toBe(false);
  return msg as SipResponse;
}

export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Checks that a value is a well-formed SipParseError and returns it. */
export function expectParseErrorShape(error: unknown): SipParseError {
  expect(error).toBeInstanceOf(SipParseError);
  expect(error).toBeInstanceOf(Error);
  const e = error as SipParseError;
  expect(e.code).toMatch(/^SIP_ERR_PARSE_[A-Z_]+$/);
  expect(typeof e.message).toBe('string');
  // the README calls offset "the byte offset where the problem was found"; -1 stands for
  // "no position" (e.g. a missing header, or a check across headers)
  expect(Number.isInteger(e.offset)).toBe(true);
  expect(e.offset).toBeGreaterThanOrEqual(-1);
  expect(Number.isInteger(e.status)).toBe(true);
  expect(e.status).toBeGreaterThanOrEqual(400);
  expect(e.status).toBeLessThan(600);
  return e;
}

/**
 * Runs fn and expects it to throw a SipParseError, with the given status and
 * (when given) one of the given codes.
 */
export function expectSipError(
  fn: () => unknown,
  status?: number,
  codes?: string | readonly string[],
): SipParseError {
  const error = caught(fn);
  if (error === undefined) {
    expect.fail('expected a SipParseError to be thrown, but nothing was thrown');
  }
  const e = expectParseErrorShape(error);
  if (status !== undefined) expect(e.status).toBe(status);
  if (codes !== undefined) expect(typeof codes === 'string' ? [codes] : codes).toContain(e.code);
  return e;
}

/** Collapses runs of whitespace, for values whose unfolding may keep or drop a space. */
export function collapse(value: string | undefined): string | undefined {
  return value?.replace(/[ \t]+/g, ' ').trim();
}

/** Reads an embedded URI header (`?h=v`) whatever collection type the Uri exposes. */
export function uriHeader(uri: { headers: unknown }, name: string): unknown {
  const headers = uri.headers as
    | { get?: (n: string) => unknown; [key: string]: unknown }
    | undefined
    | null;
  if (headers == null) return undefined;
  if (typeof headers.get === 'function') return headers.get(name);
  return headers[name];
}

/** Calls fn; a SipParseError is accepted (and checked), anything else is rethrown. */
export function tolerate(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    if (error instanceof SipParseError) {
      expectParseErrorShape(error);
      return;
    }
    throw error;
  }
}

function readParams(params: Iterable<readonly [string, string | null]> | undefined): void {
  if (!params) return;
  for (const [name, value] of params) {
    expect(typeof name).toBe('string');
    expect(value === null || typeof value === 'string').toBe(true);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: walks whatever shape a URI value has
function readUri(uri: any): void {
  if (!uri) return;
  void uri.scheme;
  void uri.user;
  void uri.password;
  void uri.host;
  void uri.port;
  readParams(uri.params);
  void uri.headers;
  void String(uri);
}

// biome-ignore lint/suspicious/noExplicitAny: walks whatever shape a name-addr value has
function readNameAddr(value: any): void {
  if (!value) return;
  void value.displayName;
  readUri(value.uri);
  void value.tag;
  readParams(value.params);
}

/**
 * Reads every accessor of a message. Each read may throw SipParseError (the
 * anomaly is then reported to the caller of that accessor); any other thrown
 * value fails the test. validateMessage and serialize are exercised too.
 */
export function touchAll(msg: SipMessage): void {
  tolerate(() => msg.isRequest);
  if (msg.isRequest) {
    const req = msg as SipRequest;
    tolerate(() => req.method);
    tolerate(() => readUri(req.uri));
  } else {
    const res = msg as SipResponse;
    tolerate(() => res.status);
    tolerate(() => res.reason);
  }
  tolerate(() => msg.callId);
  tolerate(() => {
    const cseq = msg.cseq;
    void cseq.seq;
    void cseq.method;
  });
  tolerate(() => readNameAddr(msg.from));
  tolerate(() => readNameAddr(msg.to));
  tolerate(() => {
    for (const via of msg.via) {
      void via.protocol;
      void via.transport;
      void via.host;
      void via.port;
      void via.branch;
      void via.received;
      void via.rport;
      void via.maddr;
      void via.ttl;
      readParams(via.params);
    }
  });
  tolerate(() => {
    for (const contact of msg.contacts) {
      void contact.star;
      void contact.expires;
      void contact.q;
      readNameAddr(contact);
    }
  });
  tolerate(() => msg.maxForwards);
  tolerate(() => msg.contentLength);
  tolerate(() => {
    const ct = msg.contentType;
    if (ct) {
      void ct.type;
      void ct.subtype;
      void ct.mimeType;
      readParams(ct.params);
    }
  });
  tolerate(() => msg.body.length);
  tolerate(() => msg.bodyText);
  let names: string[] = [];
  tolerate(() => {
    names = msg.headerNames();
  });
  // each distinct name once (names repeat when a header has several lines)
  const distinct = [...new Map(names.map((n) => [n.toLowerCase(), n])).values()];
  for (const name of distinct) {
    tolerate(() => msg.has(name));
    tolerate(() => msg.header(name));
    tolerate(() => msg.headers(name));
    tolerate(() => msg.get(name));
    tolerate(() => msg.getAll(name));
  }
  for (const name of ['Expires', 'Route', 'Record-Route', 'Authorization', 'WWW-Authenticate']) {
    tolerate(() => msg.get(name));
    tolerate(() => msg.getAll(name));
  }
  tolerate(() => validateMessage(msg));
  tolerate(() => serialize(msg));
  tolerate(() => msg.toString());
}

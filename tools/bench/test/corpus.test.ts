import { createRequire } from 'node:module';
import * as message from '@sipworks/message';
import { describe, expect, it } from 'vitest';
import { averageBytes, type CorpusMessage, corpus } from '../src/corpus.ts';

const require = createRequire(import.meta.url);

/** What the `sip` package's parser returns (only the parts read here). */
interface SipParsed {
  method?: string;
  status?: number;
  headers: {
    'call-id'?: string;
    cseq?: { seq: number; method: string };
    from?: { params: Record<string, string | null> };
    via?: { params: Record<string, string | null> }[];
    'content-length'?: number;
  };
  content: string;
}
const sip = require('sip') as { parse(data: string | Buffer): SipParsed | undefined };

const CRLFCRLF = [13, 10, 13, 10];

function headerEnd(bytes: Uint8Array): number {
  outer: for (let i = 0; i + 4 <= bytes.length; i++) {
    for (let k = 0; k < 4; k++) if (bytes[i + k] !== CRLFCRLF[k]) continue outer;
    return i;
  }
  return -1;
}

function split(m: CorpusMessage): { head: string; body: Uint8Array } {
  const end = headerEnd(m.bytes);
  expect(end).toBeGreaterThan(0);
  return {
    head: new TextDecoder('latin1').decode(m.bytes.subarray(0, end)),
    body: m.bytes.subarray(end + 4),
  };
}

describe('parse corpus', () => {
  it('holds the ten kinds of message, about 600 bytes on average', () => {
    expect(corpus.map((m) => m.expect.method ?? m.expect.status)).toEqual([
      'INVITE',
      200,
      'REGISTER',
      401,
      'ACK',
      'BYE',
      'SUBSCRIBE',
      'NOTIFY',
      'MESSAGE',
      'OPTIONS',
    ]);
    expect(averageBytes()).toBeGreaterThan(550);
    expect(averageBytes()).toBeLessThan(650);
  });

  describe.each(corpus)('$name', (m) => {
    it('ends every line with CRLF', () => {
      const { head } = split(m);
      expect(m.text).not.toMatch(/[^\r]\n|\r[^\n]/);
      expect(head.length).toBeGreaterThan(0);
    });

    it('carries one Content-Length, equal to its body in bytes', () => {
      const { head, body } = split(m);
      const lengths = head
        .split('\r\n')
        .slice(1)
        .map((line) => /^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$/i.exec(line))
        .filter((match) => match !== null);
      expect(lengths).toHaveLength(1);
      expect(Number(lengths[0]?.[1])).toBe(body.length);
    });

    it('is read as written by the sip package', () => {
      // Given bytes, `sip` works on a latin1 string, so its body is one char per byte.
      const parsed = sip.parse(Buffer.from(m.bytes));
      expect(parsed).toBeDefined();
      const p = parsed as SipParsed;
      expect(p.method).toBe(m.expect.method);
      expect(p.status).toBe(m.expect.status);
      expect(p.headers['call-id']).toBe(m.expect.callId);
      expect(p.headers.cseq?.seq).toBe(m.expect.cseq);
      expect(p.headers.from?.params.tag).toBe(m.expect.fromTag);
      expect(p.headers.via?.[0]?.params.branch).toBe(m.expect.branch);
      expect(p.headers['content-length']).toBe(split(m).body.length);
      expect(Buffer.from(p.content, 'latin1').equals(Buffer.from(split(m).body))).toBe(true);
    });

    it('is read as written by @sipworks/message', () => {
      const msg = message.parseMessage(m.bytes);
      if (msg.isRequest) {
        expect(msg.method).toBe(m.expect.method);
      } else {
        expect(msg.status).toBe(m.expect.status);
      }
      expect(msg.callId).toBe(m.expect.callId);
      expect(msg.cseq.seq).toBe(m.expect.cseq);
      expect(msg.from.tag).toBe(m.expect.fromTag);
      expect(msg.via[0]?.branch).toBe(m.expect.branch);
      expect(msg.contentLength).toBe(split(m).body.length);
      expect(Buffer.from(msg.body).equals(Buffer.from(split(m).body))).toBe(true);
    });
  });
});

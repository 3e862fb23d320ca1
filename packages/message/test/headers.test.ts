import { describe, expect, it } from 'vitest';
import { parseMessage } from '../src/index.ts';

const base =
  'OPTIONS sip:b@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKh1\r\n' +
  'From: <sip:a@example.test>;tag=1\r\nTo: <sip:b@example.test>\r\nCall-ID: h1@x\r\nCSeq: 1 OPTIONS\r\n';

describe('token list headers (RFC 3261 §20)', () => {
  it('Require, Supported and Allow values are read with white space around the commas', () => {
    const m = parseMessage(
      `${base}Require: foo , bar,baz\r\nSupported:  100rel,\r\n timer\r\nAllow: INVITE, ACK ,BYE\r\nk: path\r\nContent-Length: 0\r\n\r\n`,
    );
    expect(m.getAll('Require')).toEqual(['foo', 'bar', 'baz']);
    expect(m.getAll('Supported')).toEqual(['100rel', 'timer', 'path']);
    expect(m.getAll('Allow')).toEqual(['INVITE', 'ACK', 'BYE']);
  });

  it('an empty element in a token list is a parse error from the accessor', () => {
    const m = parseMessage(`${base}Require: foo,,bar\r\nContent-Length: 0\r\n\r\n`);
    expect(() => m.getAll('Require')).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_PARSE_HEADER', status: 400 }),
    );
  });
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LINKTYPE_RAW, pcapFileHeader, pcapRecord, udpPacket } from '../src/pcap.ts';
import { externalTool, killAll, sipworks } from './support.ts';

/** One's-complement sum over 16-bit words, as a receiver checks a checksum (RFC 1071). */
function fold(data: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < data.length; i += 2)
    s += ((data[i] as number) << 8) | (data[i + 1] as number);
  if (data.length % 2) s += (data[data.length - 1] as number) << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

const SIP = new TextEncoder().encode('OPTIONS sip:127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n');

describe('pcap records (libpcap format, LINKTYPE_RAW, RFC 768 / RFC 791 / RFC 8200)', () => {
  it('writes the file header with magic, version 2.4 and link type RAW', () => {
    const h = Buffer.from(pcapFileHeader());
    expect(h.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect([h.readUInt16LE(4), h.readUInt16LE(6)]).toEqual([2, 4]);
    expect(h.readUInt32LE(20)).toBe(LINKTYPE_RAW);
  });

  it('builds an IPv4/UDP packet whose IP and UDP checksums verify', () => {
    const p = Buffer.from(
      udpPacket({ address: '127.0.0.1', port: 5070 }, { address: '10.0.0.2', port: 5060 }, SIP),
    );
    expect(p[0]).toBe(0x45);
    expect(p.readUInt16BE(2)).toBe(p.length);
    expect(fold(p.subarray(0, 20))).toBe(0xffff);
    const udp = p.subarray(20);
    expect([udp.readUInt16BE(0), udp.readUInt16BE(2), udp.readUInt16BE(4)]).toEqual([
      5070,
      5060,
      8 + SIP.length,
    ]);
    const pseudo = Buffer.concat([p.subarray(12, 20), Buffer.from([0, 17]), udp.subarray(4, 6)]);
    expect(fold(udp, fold(pseudo))).toBe(0xffff);
    expect(udp.subarray(8).toString()).toBe(Buffer.from(SIP).toString());
  });

  it('builds an IPv6/UDP packet (compressed addresses expanded) whose UDP checksum verifies', () => {
    const p = Buffer.from(
      udpPacket({ address: '::1', port: 5060 }, { address: '2001:db8::5', port: 5062 }, SIP),
    );
    expect(p[0] >> 4).toBe(6);
    expect(p.subarray(8, 24).toString('hex')).toBe('00000000000000000000000000000001');
    expect(p.subarray(24, 40).toString('hex')).toBe('20010db8000000000000000000000005');
    const udp = p.subarray(40);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(udp.length);
    const pseudo = Buffer.concat([p.subarray(8, 40), len, Buffer.from([0, 0, 0, 17])]);
    expect(fold(udp, fold(pseudo))).toBe(0xffff);
  });

  it('stamps each record with seconds and microseconds and the captured length', () => {
    const r = Buffer.from(pcapRecord(1_700_000_000_123.5, new Uint8Array(40)));
    expect(r.readUInt32LE(0)).toBe(1_700_000_000);
    expect(r.readUInt32LE(4)).toBe(123_500);
    expect([r.readUInt32LE(8), r.readUInt32LE(12)]).toEqual([40, 40]);
  });
});

/** tshark reads the capture back; CI has it (.ci/run installs it). */
const tshark = externalTool('tshark', ['--version'], 'apt-get install tshark');

describe.skipIf(tshark.skip)('--pcap read back by tshark', () => {
  afterEach(() => killAll());

  it('the demo capture decodes as SIP: REGISTER, 401, INVITE, 180, BYE... (RFC 3261 §7)', async () => {
    if (!tshark.available) throw new Error(`tshark is needed in CI: ${tshark.reason}`);
    const dir = mkdtempSync(path.join(tmpdir(), 'sipworks-pcap-'));
    try {
      const file = path.join(dir, 'demo.pcap');
      const r = await sipworks(['demo', '--pcap', file, '--json'], 20_000);
      expect(r.code, r.stderr).toBe(0);
      const summary = r.stdout
        .split('\n')
        .filter((l) => l.includes('"summary"'))
        .map((l) => JSON.parse(l))[0];
      expect(readFileSync(file).length).toBeGreaterThan(24);
      const out = execFileSync(
        'tshark',
        ['-r', file, '-Y', 'sip', '-T', 'fields', '-e', 'sip.Method', '-e', 'sip.Status-Code'],
        { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] },
      );
      const rows = out
        .trim()
        .split('\n')
        .map((l) => l.split('\t').filter(Boolean).join(''));
      // Every message the demo saw is a decoded SIP packet (each written once, by its sender).
      expect(rows.length).toBe(summary.messages);
      for (const m of [
        'REGISTER',
        '401',
        '200',
        'SUBSCRIBE',
        'NOTIFY',
        'PUBLISH',
        'MESSAGE',
        'INVITE',
        '180',
        'ACK',
        'BYE',
      ])
        expect(rows).toContain(m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

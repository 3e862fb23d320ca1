import { closeSync, openSync, writeSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * A pcap capture file (the classic libpcap format, microsecond timestamps) of SIP
 * messages, each written as an IPv4 or IPv6 packet carrying one UDP datagram from the
 * sender's address and port to the receiver's (LINKTYPE_RAW: the packet starts at the IP
 * header). IP and UDP checksums are computed, so Wireshark and tshark show no errors.
 *
 * Messages sent or received over TCP, TLS or WebSocket are written the same way, as UDP
 * datagrams between the same addresses and ports: the capture shows the SIP messages
 * (decrypted, for TLS and WSS), not the stream segments, handshakes or frames that
 * carried them.
 */

/** LINKTYPE_RAW: each packet begins with an IPv4 or IPv6 header. */
export const LINKTYPE_RAW = 101;
const MAGIC = 0xa1b2c3d4;
const SNAPLEN = 262_144;
/** The most a UDP datagram can carry over IPv4 (65,535 - 20 - 8). */
const MAX_PAYLOAD = 65_507;

export interface PcapEndpoint {
  address: string;
  port: number;
}

/** The 24-byte pcap file header. */
export function pcapFileHeader(linktype = LINKTYPE_RAW): Uint8Array {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeInt32LE(0, 8); // thiszone
  b.writeUInt32LE(0, 12); // sigfigs
  b.writeUInt32LE(SNAPLEN, 16);
  b.writeUInt32LE(linktype, 20);
  return b;
}

/** One's-complement sum of 16-bit words (RFC 1071), folded, not yet complemented. */
function sum16(data: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < data.length; i += 2)
    s += ((data[i] as number) << 8) | (data[i + 1] as number);
  if (data.length % 2 === 1) s += (data[data.length - 1] as number) << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map((x) => Number(x)));
}

function ipv6Bytes(address: string): Buffer {
  const zone = address.indexOf('%');
  let a = zone >= 0 ? address.slice(0, zone) : address;
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const b = ipv4Bytes(v4[1] as string);
    tail = [(b[0] as number) * 256 + (b[1] as number), (b[2] as number) * 256 + (b[3] as number)];
    a = a.slice(0, a.length - (v4[1] as string).length).replace(/:$/, ':0');
  }
  const [head, rest] = a.includes('::') ? (a.split('::') as [string, string]) : [a, undefined];
  const h = head ? head.split(':').map((x) => Number.parseInt(x || '0', 16)) : [];
  const r =
    rest !== undefined && rest !== '' ? rest.split(':').map((x) => Number.parseInt(x, 16)) : [];
  const words =
    rest === undefined
      ? [...h, ...tail]
      : [...h, ...Array(8 - h.length - r.length - tail.length).fill(0), ...r, ...tail];
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE((words[i] ?? 0) & 0xffff, i * 2);
  return out;
}

/** A wildcard or unparsable address is written as loopback, so the packet stays valid. */
function family(src: string, dst: string): 4 | 6 {
  return isIPv6(src) || isIPv6(dst) ? 6 : 4;
}

function addressBytes(address: string, fam: 4 | 6): Buffer {
  if (fam === 4) return isIPv4(address) ? ipv4Bytes(address) : Buffer.from([127, 0, 0, 1]);
  if (isIPv6(address)) return ipv6Bytes(address);
  if (isIPv4(address)) return ipv6Bytes(`::ffff:${address}`);
  return ipv6Bytes('::1');
}

/** An IP packet carrying `payload` in a UDP datagram from `src` to `dst`, checksums included. */
export function udpPacket(src: PcapEndpoint, dst: PcapEndpoint, payload: Uint8Array): Uint8Array {
  const data = payload.length > MAX_PAYLOAD ? payload.subarray(0, MAX_PAYLOAD) : payload;
  const fam = family(src.address, dst.address);
  const s = addressBytes(src.address, fam);
  const d = addressBytes(dst.address, fam);
  const udpLength = 8 + data.length;
  const udp = Buffer.alloc(udpLength);
  udp.writeUInt16BE(src.port & 0xffff, 0);
  udp.writeUInt16BE(dst.port & 0xffff, 2);
  udp.writeUInt16BE(udpLength, 4);
  udp.set(data, 8);
  // The UDP checksum covers a pseudo-header (RFC 768; RFC 8200 §8.1 for IPv6).
  const pseudo = Buffer.alloc(fam === 4 ? 12 : 40);
  if (fam === 4) {
    s.copy(pseudo, 0);
    d.copy(pseudo, 4);
    pseudo[9] = 17;
    pseudo.writeUInt16BE(udpLength, 10);
  } else {
    s.copy(pseudo, 0);
    d.copy(pseudo, 16);
    pseudo.writeUInt32BE(udpLength, 32);
    pseudo[39] = 17;
  }
  let ck = (~sum16(udp, sum16(pseudo)) & 0xffff) >>> 0;
  if (ck === 0) ck = 0xffff;
  udp.writeUInt16BE(ck, 6);
  if (fam === 4) {
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + udpLength, 2);
    ip.writeUInt16BE(0x4000, 6); // don't fragment
    ip[8] = 64;
    ip[9] = 17;
    s.copy(ip, 12);
    d.copy(ip, 16);
    ip.writeUInt16BE(~sum16(ip) & 0xffff, 10);
    return Buffer.concat([ip, udp]);
  }
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(udpLength, 4);
  ip[6] = 17;
  ip[7] = 64;
  s.copy(ip, 8);
  d.copy(ip, 24);
  return Buffer.concat([ip, udp]);
}

/** A pcap record: the 16-byte record header, then the packet. */
export function pcapRecord(timeMs: number, packet: Uint8Array): Uint8Array {
  const h = Buffer.alloc(16);
  const sec = Math.floor(timeMs / 1000);
  h.writeUInt32LE(sec >>> 0, 0);
  h.writeUInt32LE(Math.round((timeMs - sec * 1000) * 1000) >>> 0, 4);
  h.writeUInt32LE(packet.length, 8);
  h.writeUInt32LE(packet.length, 12);
  return Buffer.concat([h, packet]);
}

/** Writes a pcap file as messages come; each record is written at once (a crash keeps what was seen). */
export class PcapWriter {
  private fd: number | undefined;
  readonly path: string;
  /** Records written. */
  count = 0;

  constructor(path: string) {
    this.path = path;
    this.fd = openSync(path, 'w');
    writeSync(this.fd, pcapFileHeader());
  }

  /** One SIP message from `src` to `dst`. */
  write(timeMs: number, src: PcapEndpoint, dst: PcapEndpoint, bytes: Uint8Array): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, pcapRecord(timeMs, udpPacket(src, dst, bytes)));
    this.count++;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { seeded } from '@sipworks/stack/testing';
import WebSocket from 'ws';
import { ROOT } from './serve-process.ts';

const SDP =
  'v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n' +
  't=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n';

/**
 * Real SIP messages as phones and proxies send them: the seeds the mutator starts from.
 * `HOST` and `PORT` stand for the sender's own address, so that the server's answers to
 * unmutated Vias and Contacts come back to the fuzzer rather than to some other host.
 */
const SEEDS = [
  [
    'INVITE sip:echo@TARGET SIP/2.0',
    'Via: SIP/2.0/UDP HOST:PORT;branch=z9hG4bK776asdhds;rport',
    'Max-Forwards: 70',
    'To: <sip:echo@TARGET>',
    'From: "Alice" <sip:alice@HOST>;tag=1928301774',
    'Call-ID: a84b4c76e66710@HOST',
    'CSeq: 314159 INVITE',
    'Contact: <sip:alice@HOST:PORT>',
    'Supported: timer, 100rel, replaces',
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK',
    'Session-Expires: 1800;refresher=uac',
    'Content-Type: application/sdp',
    `Content-Length: ${SDP.length}`,
    '',
    SDP,
  ].join('\r\n'),
  [
    'REGISTER sip:TARGET SIP/2.0',
    'Via: SIP/2.0/UDP HOST:PORT;branch=z9hG4bKnashds7;rport',
    'Max-Forwards: 70',
    'To: Bob <sip:bob@TARGET>',
    'From: Bob <sip:bob@TARGET>;tag=456248',
    'Call-ID: 843817637684230@998sdasdh09',
    'CSeq: 1826 REGISTER',
    'Contact: <sip:bob@HOST:PORT>;expires=60;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1',
    'Supported: path, outbound, gruu',
    'Expires: 60',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
  [
    'SUBSCRIBE sip:alice@TARGET SIP/2.0',
    'Via: SIP/2.0/UDP HOST:PORT;branch=z9hG4bKsub1;rport',
    'Max-Forwards: 70',
    'To: <sip:alice@TARGET>',
    'From: <sip:bob@HOST>;tag=sub1',
    'Call-ID: sub1@HOST',
    'CSeq: 1 SUBSCRIBE',
    'Event: presence',
    'Accept: application/pidf+xml',
    'Contact: <sip:bob@HOST:PORT>',
    'Expires: 60',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
  [
    'PUBLISH sip:alice@TARGET SIP/2.0',
    'Via: SIP/2.0/UDP HOST:PORT;branch=z9hG4bKpub1;rport',
    'Max-Forwards: 70',
    'To: <sip:alice@TARGET>',
    'From: <sip:alice@TARGET>;tag=pub1',
    'Call-ID: pub1@HOST',
    'CSeq: 1 PUBLISH',
    'Event: presence',
    'Expires: 60',
    'Content-Type: application/pidf+xml',
    'Content-Length: 151',
    '',
    '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@TARGET"><tuple id="a"><status><basic>open</basic></status></tuple></presence>',
  ].join('\r\n'),
  [
    'MESSAGE sip:bob@TARGET SIP/2.0',
    'v: SIP/2.0/UDP HOST:PORT;branch=z9hG4bKmsg1',
    'Max-Forwards: 70',
    't: <sip:bob@TARGET>',
    'f: <sip:alice@HOST>;tag=msg1',
    'i: msg1@HOST',
    'CSeq: 7 MESSAGE',
    'c: text/plain;charset=utf-8',
    'l: 11',
    '',
    'hello there',
  ].join('\r\n'),
  [
    'OPTIONS sip:TARGET SIP/2.0',
    'Via: SIP/2.0/UDP HOST:PORT;branch=z9hG4bKopt1;rport',
    'Max-Forwards: 70',
    'To: <sip:TARGET>',
    'From: <sip:scanner@HOST>;tag=opt1',
    'Call-ID: opt1@HOST',
    'CSeq: 1 OPTIONS',
    'Accept: application/sdp',
    'User-Agent: friendly-scanner',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
  [
    'BYE sip:echo@TARGET SIP/2.0',
    'Via: SIP/2.0/UDP HOST:PORT;branch=z9hG4bKbye1;rport',
    'Max-Forwards: 70',
    'Route: <sip:TARGET;lr>',
    'To: <sip:echo@TARGET>;tag=abc',
    'From: <sip:alice@HOST>;tag=1928301774',
    'Call-ID: a84b4c76e66710@HOST',
    'CSeq: 314160 BYE',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
  [
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP TARGET;branch=z9hG4bKnotours',
    'To: <sip:bob@HOST>;tag=8321234356',
    'From: <sip:alice@TARGET>;tag=9fxced76sl',
    'Call-ID: 3848276298220188511@TARGET',
    'CSeq: 1 INVITE',
    'Contact: <sip:bob@HOST:PORT>',
    'Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
];

/** The seeds, plus the RFC 4475 torture messages when the repository has them. */
export function corpus(): string[] {
  const out = [...SEEDS];
  const dir = path.join(ROOT, 'packages', 'message', 'test', 'fixtures', 'torture');
  for (const sub of ['valid', 'invalid']) {
    const d = path.join(dir, sub);
    if (!fs.existsSync(d)) continue;
    for (const f of fs.readdirSync(d).sort())
      if (f.endsWith('.dat')) out.push(fs.readFileSync(path.join(d, f), 'latin1'));
  }
  return out;
}

const ODD_VALUES = [
  '',
  ' ',
  '-1',
  '0',
  '4294967296',
  '99999999999999999999999999',
  '<',
  '<<sip:',
  'sip:',
  '"',
  '\\',
  ';;;;;;',
  '%00%ff',
  'a'.repeat(300),
  ',,,,,,,,',
  'SIP/2.0/UDP',
  '*',
  '\u00ff\u00fe',
  'z9hG4bK',
  ';branch=',
  'sip:[::1',
  'sip:@:0',
  '\t\t',
];
const ODD_BYTES = [0, 9, 10, 13, 32, 34, 44, 58, 59, 60, 62, 64, 92, 127, 128, 255];

/**
 * Mutates real SIP messages: bit flips, odd bytes, ranges cut, doubled or spliced from
 * another message, header values replaced by edge cases or by long runs, headers
 * repeated, lines swapped, Content-Length lied about. Every mutation is drawn from the
 * seeded generator, so a failing iteration is reproduced from (seed, index).
 */
export class Mutator {
  private readonly random: () => number;
  private readonly seeds: string[];

  constructor(seed: number, seeds = corpus()) {
    // A seeded PRNG: a fuzz run is repeated exactly from its seed.
    this.random = seeded(seed);
    this.seeds = seeds;
  }

  /** One mutated message, with the sender's address filled in. */
  next(sender: { host: string; port: number }, target: { host: string; port: number }): Buffer {
    const base = this.pick(this.seeds)
      .replaceAll('HOST', sender.host)
      .replaceAll('PORT', String(sender.port))
      .replaceAll('TARGET', `${target.host}:${target.port}`);
    let bytes: Buffer = Buffer.from(base, 'latin1');
    const rounds = 1 + this.int(3);
    for (let i = 0; i < rounds; i++) bytes = this.mutate(bytes);
    return bytes.subarray(0, 60_000);
  }

  private mutate(b: Buffer): Buffer {
    const r = this.random;
    switch (this.int(11)) {
      case 0: {
        const c = Buffer.from(b);
        for (let i = 0, n = 1 + this.int(8); i < n && c.length > 0; i++)
          c[this.int(c.length)] ^= 1 << this.int(8);
        return c;
      }
      case 1: {
        const at = this.int(b.length + 1);
        const ins = Buffer.from(
          Array.from({ length: 1 + this.int(6) }, () =>
            r() < 0.7 ? this.pick(ODD_BYTES) : this.int(256),
          ),
        );
        return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
      }
      case 2: {
        const at = this.int(b.length + 1);
        return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + this.int(40))]);
      }
      case 3: {
        const at = this.int(b.length + 1);
        const len = 1 + this.int(80);
        const part = b.subarray(at, at + len);
        return Buffer.concat([b.subarray(0, at), part, part, b.subarray(at)]);
      }
      case 4:
        return b.subarray(0, this.int(b.length + 1));
      case 5:
        return this.onLines(b, (lines) => {
          const i = 1 + this.int(Math.max(1, lines.length - 3));
          const times = this.pick([2, 3, 10, 200]);
          lines.splice(i, 0, ...Array<string>(times).fill(lines[i] ?? 'X: y'));
        });
      case 6:
        return this.onLines(b, (lines) => {
          const i = this.int(lines.length);
          const line = lines[i] ?? '';
          const colon = line.indexOf(':');
          const value =
            r() < 0.2
              ? this.pick(['x', ',', ';a=', '<sip:a>']).repeat(1 + this.int(3000))
              : this.pick(ODD_VALUES);
          lines[i] = colon > 0 ? `${line.slice(0, colon + 1)} ${value}` : value;
        });
      case 7:
        return this.onLines(b, (lines) => {
          const i = this.int(lines.length);
          const j = this.int(lines.length);
          [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
        });
      case 8:
        return this.onLines(b, (lines) => {
          const i = lines.findIndex((l) => /^(content-length|l)\s*:/i.test(l));
          const v = this.pick(['0', '-5', '1', '9999999', '65536', String(this.int(400)), 'abc']);
          if (i >= 0) lines[i] = `Content-Length: ${v}`;
          else lines.splice(1, 0, `Content-Length: ${v}`);
        });
      case 9:
        return this.onLines(b, (lines) => {
          const other = this.pick(this.seeds).split('\r\n');
          lines.splice(
            1 + this.int(Math.max(1, lines.length - 1)),
            0,
            ...other.slice(1, 1 + this.int(6)),
          );
        });
      default:
        return this.onLines(b, (lines) => {
          const first = (lines[0] ?? '').split(' ');
          const i = this.int(first.length);
          first[i] = this.pick([
            'INVITE',
            'ACK',
            'CANCEL',
            'PRACK',
            'REFER',
            'NOTIFY',
            'SIP/2.0',
            'SIP/3.0',
            '999',
            '100',
            'sip:',
            'x'.repeat(2000),
            '',
          ]);
          lines[0] = first.join(' ');
        });
    }
  }

  private onLines(b: Buffer, f: (lines: string[]) => void): Buffer {
    const text = b.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    const head = end >= 0 ? text.slice(0, end) : text;
    const body = end >= 0 ? text.slice(end) : '';
    const lines = head.split('\r\n');
    f(lines);
    return Buffer.from(lines.join('\r\n') + body, 'latin1');
  }

  private int(n: number): number {
    return Math.floor(this.random() * n);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
}

/** Where a sender sends, over one transport. */
export interface FuzzTarget {
  protocol: 'udp' | 'tcp' | 'ws';
  address: string;
  port: number;
}

/**
 * Sends mutated messages to one listener of the server. UDP sends datagrams; TCP writes
 * them into a connection that is replaced every few messages (a mutated Content-Length
 * can leave the server waiting for a body that never comes) or when the server closes
 * it; WebSocket sends one message per frame (RFC 7118 §5) and reconnects the same way.
 */
export class FuzzSender {
  readonly target: FuzzTarget;
  sent = 0;
  /** Connections the server closed or refused (expected: it drops what it cannot frame). */
  closedByServer = 0;
  private udp: dgram.Socket | undefined;
  private tcp: net.Socket | undefined;
  private ws: WebSocket | undefined;
  private sinceConnect = 0;
  private readonly all = new Set<net.Socket | WebSocket>();

  constructor(target: FuzzTarget) {
    this.target = target;
  }

  /** Send one message; resolves once it is handed to the socket. */
  async send(mutator: Mutator): Promise<void> {
    const t = this.target;
    if (t.protocol === 'udp') {
      if (!this.udp) {
        const s = dgram.createSocket('udp4');
        s.on('message', () => {});
        s.on('error', () => {});
        await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
        this.udp = s;
      }
      const port = this.udp.address().port;
      const data = mutator.next({ host: '127.0.0.1', port }, { host: t.address, port: t.port });
      await new Promise<void>((r) => this.udp?.send(data, t.port, t.address, () => r()));
    } else if (t.protocol === 'tcp') {
      if (!this.tcp || this.tcp.destroyed || this.sinceConnect >= 20) await this.connectTcp();
      const s = this.tcp as net.Socket;
      const data = mutator.next(
        { host: '127.0.0.1', port: s.localPort ?? 0 },
        { host: t.address, port: t.port },
      );
      await new Promise<void>((r) => s.write(data, () => r()));
    } else {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.sinceConnect >= 50)
        await this.connectWs();
      const data = mutator.next(
        { host: 'fuzz.invalid', port: 0 },
        { host: t.address, port: t.port },
      );
      await new Promise<void>((r) => this.ws?.send(data, { binary: false }, () => r()));
    }
    this.sent++;
    this.sinceConnect++;
  }

  private async connectTcp(): Promise<void> {
    this.tcp?.destroy();
    const s = net.connect(this.target.port, this.target.address);
    this.all.add(s);
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => {
      this.all.delete(s);
      if (this.tcp === s) this.closedByServer++;
    });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    });
    this.tcp = s;
    this.sinceConnect = 0;
  }

  private async connectWs(): Promise<void> {
    this.ws?.terminate();
    const ws = new WebSocket(`ws://${this.target.address}:${this.target.port}`, 'sip');
    this.all.add(ws);
    ws.on('message', () => {});
    ws.on('error', () => {});
    ws.on('close', () => {
      this.all.delete(ws);
      if (this.ws === ws) this.closedByServer++;
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.ws = ws;
    this.sinceConnect = 0;
  }

  /** Close every socket this sender opened. */
  async close(): Promise<void> {
    for (const s of this.all) {
      if (s instanceof WebSocket) s.terminate();
      else s.destroy();
    }
    this.all.clear();
    const udp = this.udp;
    this.udp = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
  }
}

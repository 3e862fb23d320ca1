import { DialogUsageManager, type UserProfile } from '@sipworks/dum';
import type { SipResponse } from '@sipworks/message';
import { SipStack } from '@sipworks/stack';
import {
  MemoryNetwork,
  MemoryTransport,
  ScriptedPeer,
  VirtualClock,
} from '@sipworks/stack/testing';
import { type PeerRequirement, RedisServerProcess } from '@sipworks/test-support';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

/**
 * A memory network whose virtual clock follows real time: a 5 ms interval advances it by
 * the real time elapsed. Redis answers in real time and expires keys in real time, so
 * the DUMs' clocks (`dum.now()`) must not run ahead of it or lag behind.
 */
export class RealTimeNet {
  readonly clock = new VirtualClock();
  readonly network: MemoryNetwork;
  private last = Date.now();
  private readonly timer: NodeJS.Timeout;
  private readonly stops: Array<() => Promise<void>> = [];

  constructor(seed = 7) {
    this.network = new MemoryNetwork({ clock: this.clock, seed });
    this.timer = setInterval(() => {
      const now = Date.now();
      this.clock.advance(now - this.last);
      this.last = now;
    }, 5);
  }

  /** A DUM on its own stack at `port`, with a profile for `user` (AOR `sip:user@127.0.0.1:aorPort`). */
  async node(
    port: number,
    user: string,
    options: { aorPort?: number; outboundProxy?: string } = {},
  ): Promise<{ dum: DialogUsageManager; profile: UserProfile; stack: SipStack }> {
    const stack = new SipStack({ clock: this.clock });
    await stack.addTransport(new MemoryTransport({ network: this.network, port }));
    await stack.start();
    const dum = new DialogUsageManager({ stack });
    const profile = dum.makeUserProfile({
      aor: `<sip:${user}@127.0.0.1:${options.aorPort ?? port}>`,
      ...(options.outboundProxy ? { outboundProxy: options.outboundProxy } : {}),
    });
    this.stops.push(async () => {
      await dum.shutdown({ timeoutMs: 200 });
      await stack.stop();
    });
    return { dum, profile, stack };
  }

  /** A scripted UA at `port` that sends raw requests and logs what it receives. */
  async peer(port: number): Promise<ScriptedPeer> {
    const peer = await new ScriptedPeer(this.network, this.clock, { port }).start();
    this.stops.push(() => peer.stop());
    return peer;
  }

  /** Stop every DUM, stack and peer made here, then the clock driver. */
  async close(): Promise<void> {
    for (const stop of this.stops.splice(0).reverse()) await stop();
    clearInterval(this.timer);
  }
}

/** Wait in real time (polling every 5 ms, at most `ms`) until `cond` holds. */
export async function until(cond: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const consumed = new WeakMap<ScriptedPeer, number>();

/** The next final response the peer received (bounded real-time wait). */
export async function nextFinal(peer: ScriptedPeer, ms = 5_000): Promise<SipResponse> {
  let found: SipResponse | undefined;
  await until(
    () => {
      const from = consumed.get(peer) ?? 0;
      for (let j = from; j < peer.log.length; j++) {
        const m = peer.log[j]?.message;
        if (m && !m.isRequest && m.status >= 200) {
          consumed.set(peer, j + 1);
          found = m;
          return true;
        }
      }
      return false;
    },
    ms,
    'a final response',
  );
  return found as SipResponse;
}

/** A REGISTER from a scripted UA at 127.0.0.1:`from` to the registrar at `to`. */
export function registerText(o: {
  to: number;
  from?: number;
  callId: string;
  cseq: number;
  contact?: string;
  expires?: number;
  branch: string;
  user?: string;
  extra?: string;
}): string {
  const user = o.user ?? 'carol';
  return (
    `REGISTER sip:127.0.0.1:${o.to} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:${o.from ?? 5090};branch=z9hG4bK${o.branch}\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:${user}@example.test>;tag=f${o.branch}\r\n` +
    `To: <sip:${user}@example.test>\r\n` +
    `Call-ID: ${o.callId}\r\n` +
    `CSeq: ${o.cseq} REGISTER\r\n` +
    (o.contact !== undefined ? `Contact: ${o.contact}\r\n` : '') +
    (o.expires !== undefined ? `Expires: ${o.expires}\r\n` : '') +
    (o.extra ?? '') +
    'Content-Length: 0\r\n\r\n'
  );
}

/** A PUBLISH of presence for alice from a scripted UA at 127.0.0.1:5090 to the agent at `to`. */
export function publishText(o: {
  to: number;
  branch: string;
  cseq: number;
  expires: number;
  ifMatch?: string;
  body?: string;
}): string {
  const body = o.body ?? '';
  return (
    `PUBLISH sip:alice@example.test SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK${o.branch}\r\n` +
    'Max-Forwards: 70\r\nFrom: <sip:alice@example.test>;tag=p1\r\nTo: <sip:alice@example.test>\r\n' +
    `Call-ID: pub-1\r\nCSeq: ${o.cseq} PUBLISH\r\nEvent: presence\r\nExpires: ${o.expires}\r\n` +
    (o.ifMatch ? `SIP-If-Match: ${o.ifMatch}\r\n` : '') +
    (body ? 'Content-Type: application/pidf+xml\r\n' : '') +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** A PIDF document with one tuple and `note`. */
export function pidf(note: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:alice@example.test">\n' +
    `  <tuple id="a1"><status><basic>open</basic></status><note>${note}</note></tuple>\n` +
    '</presence>\n'
  );
}

/**
 * One redis-server for a test file: started before its tests, emptied (and started again
 * when a test stopped it) before each, stopped after them all; and the networks and
 * stores a test made, closed after it. Call it inside the `describe`.
 */
export function redisFixture<S extends { close(): Promise<void> }>(
  requirement: PeerRequirement,
): { server: RedisServerProcess; admin: Redis; stores: S[]; nets: RealTimeNet[] } {
  const fx = {
    server: undefined as unknown as RedisServerProcess,
    admin: undefined as unknown as Redis,
    stores: [] as S[],
    nets: [] as RealTimeNet[],
  };
  beforeAll(async () => {
    requirement.assertAvailable();
    fx.server = await RedisServerProcess.start(requirement.binary);
    fx.admin = new Redis(fx.server.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    // The admin connection fails while a test has stopped Redis; that is expected.
    fx.admin.on('error', () => {});
    await fx.admin.connect();
  });
  beforeEach(async () => {
    if (!fx.server.isRunning) await fx.server.start();
    await fx.admin.flushdb();
  });
  afterEach(async () => {
    for (const n of fx.nets.splice(0)) await n.close();
    for (const s of fx.stores.splice(0)) await s.close();
  });
  afterAll(async () => {
    fx.admin?.disconnect();
    await fx.server?.stop();
  });
  return fx;
}

import diagnosticsChannel from 'node:diagnostics_channel';
import { DialogUsageManager, type UserProfile } from '@sipworks/dum';
import type { SipRequest, SipResponse } from '@sipworks/message';
import { CHANNELS, SipStack, type Transport, type TransportMessageEvent } from '@sipworks/stack';
import { TcpTransport } from '@sipworks/transport-tcp';
import { UdpTransport } from '@sipworks/transport-udp';

/** One DUM on its own started stack, with one transport on 127.0.0.1 at a free port. */
export interface TestDum {
  dum: DialogUsageManager;
  stack: SipStack;
  transport: Transport;
  port: number;
  /** `sip:user@127.0.0.1:port`, this DUM's own address. */
  uri(user: string): string;
  /** A user profile whose AOR is `aor` (default: `uri(user)`). */
  profile(user: string, aor?: string): UserProfile;
}

export interface TestDumOptions {
  proto?: 'UDP' | 'TCP';
  /** Methods added to the master profile's supportedMethods (REGISTER, PUBLISH...). */
  methods?: string[];
  /** Event packages served (the master profile's supportedEvents). */
  events?: string[];
}

/**
 * Starts DUMs for a test file and stops every one of them: call `stopAll()` in
 * `afterEach` so that no socket outlives its test.
 */
export class DumPool {
  private readonly running: TestDum[] = [];

  async start(options: TestDumOptions = {}): Promise<TestDum> {
    const stack = new SipStack();
    await stack.start();
    const transport =
      options.proto === 'TCP'
        ? new TcpTransport({ address: '127.0.0.1', port: 0 })
        : new UdpTransport({ address: '127.0.0.1', port: 0 });
    const dum = new DialogUsageManager({ stack });
    await stack.addTransport(transport);
    const master = dum.masterProfile;
    if (options.methods)
      master.set('supportedMethods', [
        ...new Set([...master.get('supportedMethods'), ...options.methods]),
      ]);
    if (options.events) master.set('supportedEvents', options.events);
    const port = transport.local.port;
    const uri = (user: string): string => `sip:${user}@127.0.0.1:${port}`;
    const d: TestDum = {
      dum,
      stack,
      transport,
      port,
      uri,
      profile: (user, aor) => dum.makeUserProfile({ aor: `<${aor ?? uri(user)}>` }),
    };
    this.running.push(d);
    return d;
  }

  /** Stop every DUM's stack (its transports close with it). */
  async stopAll(): Promise<void> {
    await Promise.all(this.running.splice(0).map((d) => d.stack.stop()));
  }
}

/** Poll `cond` every 20 ms until it holds; reject after `ms` with `what` in the message. */
export async function waitUntil(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A short SDP offer or answer for one PCMU audio stream at `port` (RFC 4566, RFC 3264). */
export function sdp(user: string, port = 4000): string {
  return [
    'v=0',
    `o=${user} 1 1 IN IP4 127.0.0.1`,
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 0`,
    'a=rtpmap:0 PCMU/8000',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

/** A PIDF document (RFC 3863) with one tuple whose basic status is `basic`. */
export function pidf(entity: string, basic: 'open' | 'closed', note: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">`,
    `  <tuple id="t1"><status><basic>${basic}</basic></status><note>${note}</note></tuple>`,
    '</presence>',
    '',
  ].join('\r\n');
}

/** One message a DUM's transport sent or received. */
export interface WireEntry {
  direction: 'send' | 'receive';
  /** The local port of the transport (which DUM). */
  localPort: number;
  remotePort: number;
  message: SipRequest | SipResponse;
}

/**
 * Every message sent and received by the stacks of a test, from the stack's diagnostics
 * channels: what a DUM put on the wire and to whom, for assertions on routing.
 */
export class WireLog {
  readonly entries: WireEntry[] = [];
  private readonly listener = (event: unknown): void => {
    const e = event as TransportMessageEvent;
    this.entries.push({
      direction: e.direction,
      localPort: e.local.port,
      remotePort: e.remote.port,
      message: e.message,
    });
  };

  start(): this {
    diagnosticsChannel.subscribe(CHANNELS.send, this.listener);
    diagnosticsChannel.subscribe(CHANNELS.receive, this.listener);
    return this;
  }

  stop(): void {
    diagnosticsChannel.unsubscribe(CHANNELS.send, this.listener);
    diagnosticsChannel.unsubscribe(CHANNELS.receive, this.listener);
    this.entries.length = 0;
  }

  /** Requests of `method` that the DUM on `port` sent or received. */
  requests(
    port: number,
    direction: 'send' | 'receive',
    method: string,
  ): Array<WireEntry & { message: SipRequest }> {
    return this.entries.filter(
      (e): e is WireEntry & { message: SipRequest } =>
        e.localPort === port &&
        e.direction === direction &&
        e.message.isRequest &&
        (e.message as SipRequest).method === method,
    );
  }

  /** Statuses of the responses to `method` that the DUM on `port` received, in order. */
  statuses(port: number, method: string): number[] {
    return this.entries
      .filter(
        (e) =>
          e.localPort === port &&
          e.direction === 'receive' &&
          !e.message.isRequest &&
          e.message.cseq.method === method,
      )
      .map((e) => (e.message as SipResponse).status);
  }
}

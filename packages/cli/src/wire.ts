import dc from 'node:diagnostics_channel';
import type { SipRequest, SipResponse } from '@sipworks/message';
import { CHANNELS, type TransportMessageEvent } from '@sipworks/stack';
import { Ladder, type LadderMessage, labelOf } from './ladder.ts';
import { PcapWriter } from './pcap.ts';

export type TraceMode = 'off' | 'ladder' | 'full';

export interface WireOptions {
  trace: TraceMode;
  /** Write a pcap file of every message. */
  pcap?: string | undefined;
  /** Where trace lines go. */
  print: (line: string) => void;
  colour: boolean;
  /** Each received request (the server's one-line log). */
  onRequest?: ((event: TransportMessageEvent) => void) | undefined;
  /**
   * Subscribe to the stack's channels only when something is drawn, written or logged
   * (trace, pcap, `onRequest`): with none, `start()` does nothing and the stack builds no
   * event per message. For `serve`, which never asks `fromNetwork` and has no watchers.
   */
  onlyWhenObserved?: boolean | undefined;
}

/** `127.0.0.1:5060`, `[::1]:5060`. */
export function hostPort(a: { address: string; port: number }): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** The ladder arrow of one message seen by a stack. */
export function ladderMessage(e: TransportMessageEvent): LadderMessage {
  const local = hostPort(e.local);
  const remote = hostPort(e.remote);
  const m = e.message;
  const res = m.isRequest ? undefined : (m as SipResponse);
  return {
    time: e.time,
    from: e.direction === 'send' ? local : remote,
    to: e.direction === 'send' ? remote : local,
    label: labelOf(
      res ? { status: res.status, reason: res.reason } : { method: (m as SipRequest).method },
    ),
    status: res?.status,
    note: e.protocol,
  };
}

/**
 * Everything the CLI takes from the stack's diagnostics channels (`sip:transport:send`,
 * `sip:transport:receive`): the live ladder, the full messages, the pcap file, the
 * server's request log, and which responses came from the network (a response that did
 * not is one the DUM made for a timeout or a transport error).
 */
export class Wire {
  private readonly options: WireOptions;
  private readonly ladder: Ladder;
  private readonly pcap: PcapWriter | undefined;
  private readonly received = new WeakSet<SipRequest | SipResponse>();
  private readonly onSend = (m: unknown) => this.seen(m as TransportMessageEvent);
  private readonly onReceive = (m: unknown) => this.seen(m as TransportMessageEvent);
  private subscribed = false;
  private readonly watchers: ((e: TransportMessageEvent) => void)[] = [];

  constructor(options: WireOptions) {
    this.options = options;
    this.ladder = new Ladder({ colour: options.colour });
    this.pcap = options.pcap ? new PcapWriter(options.pcap) : undefined;
  }

  start(): void {
    if (this.subscribed) return;
    const o = this.options;
    if (o.onlyWhenObserved && o.trace === 'off' && !this.pcap && !o.onRequest) return;
    dc.subscribe(CHANNELS.send, this.onSend);
    dc.subscribe(CHANNELS.receive, this.onReceive);
    this.subscribed = true;
  }

  stop(): void {
    if (this.subscribed) {
      dc.unsubscribe(CHANNELS.send, this.onSend);
      dc.unsubscribe(CHANNELS.receive, this.onReceive);
      this.subscribed = false;
    }
    this.pcap?.close();
  }

  /** Call `fn` with every message sent and received. */
  watch(fn: (e: TransportMessageEvent) => void): void {
    this.watchers.push(fn);
  }

  /** Whether this message came from the network (not made locally for a timeout). */
  fromNetwork(message: SipRequest | SipResponse): boolean {
    return this.received.has(message);
  }

  /** Messages written to the pcap file. */
  get pcapCount(): number {
    return this.pcap?.count ?? 0;
  }

  private seen(e: TransportMessageEvent): void {
    try {
      if (e.direction === 'receive') {
        this.received.add(e.message);
        if (e.message.isRequest) this.options.onRequest?.(e);
      }
      for (const w of this.watchers) w(e);
      if (this.pcap) {
        const [src, dst] = e.direction === 'send' ? [e.local, e.remote] : [e.remote, e.local];
        this.pcap.write(e.time, src, dst, e.bytes);
      }
      if (this.options.trace === 'off') return;
      for (const line of this.ladder.push(ladderMessage(e))) this.options.print(line);
      if (this.options.trace === 'full') {
        const text = new TextDecoder().decode(e.bytes).replace(/\r\n/g, '\n').trimEnd();
        for (const l of text.split('\n')) this.options.print(`    ${l}`);
        this.options.print('');
      }
    } catch (err) {
      // A trace must never break the stack that published the message.
      this.options.print(`trace: ${(err as Error).message}`);
    }
  }
}

import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import { TransportError } from './errors.ts';
import type { Destination, Transport, TransportAddress, TransportSink } from './transport.ts';

/** Faults a `MemoryNetwork` can inject into unreliable (datagram) delivery. */
export interface NetworkConditions {
  /** Probability that a datagram is lost (0..1). */
  drop?: number;
  /** Probability that a datagram is delivered twice. */
  duplicate?: number;
  /** Delivery delay in ms: fixed, or a [min, max] range (which reorders datagrams). */
  delay?: number | [number, number];
}

/**
 * An in-process network for tests and examples: transports attached to it reach each
 * other by address and port. Datagram delivery can drop, duplicate, delay and
 * reorder, driven by a clock (a `VirtualClock` makes it deterministic) and a seeded
 * random source.
 */
export class MemoryNetwork {
  readonly clock: Clock;
  conditions: NetworkConditions;
  private readonly random: () => number;
  private readonly nodes = new Map<string, MemoryTransport>();
  /** Datagrams sent, delivered and dropped so far. */
  readonly stats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };

  constructor(options?: {
    clock?: Clock;
    conditions?: NetworkConditions;
    seed?: number;
    random?: () => number;
  }) {
    this.clock = options?.clock ?? systemClock;
    this.conditions = options?.conditions ?? {};
    this.random = options?.random ?? seeded(options?.seed ?? 1);
  }

  /** @internal */
  attach(t: MemoryTransport): void {
    const key = `${t.protocol}|${t.local.address}|${t.local.port}`;
    if (this.nodes.has(key)) throw new TransportError(`address in use: ${key}`);
    this.nodes.set(key, t);
  }

  /** @internal */
  detach(t: MemoryTransport): void {
    this.nodes.delete(`${t.protocol}|${t.local.address}|${t.local.port}`);
  }

  /** A free port on an address. */
  freePort(protocol: string, address: string): number {
    for (let p = 20000; p < 65535; p++)
      if (!this.nodes.has(`${protocol}|${address}|${p}`)) return p;
    throw new TransportError('no free port');
  }

  /** @internal */
  deliver(from: MemoryTransport, data: Uint8Array, to: Destination): void {
    const target = this.nodes.get(`${from.protocol}|${to.address}|${to.port}`);
    if (!target) {
      if (from.reliable) throw new TransportError(`connection refused: ${to.address}:${to.port}`);
      this.stats.dropped++;
      return; // a datagram to nowhere is lost
    }
    this.stats.sent++;
    const copy = data.slice();
    const source = {
      address: from.local.address,
      port: from.local.port,
      ...(from.reliable ? { connectionId: `${from.local.address}:${from.local.port}` } : {}),
    };
    if (from.reliable) {
      // Reliable: in order, after the smallest delay.
      this.clock.setTimeout(() => {
        this.stats.delivered++;
        target.inbound(copy, source);
      }, 0);
      return;
    }
    const c = this.conditions;
    if (c.drop !== undefined && this.random() < c.drop) {
      this.stats.dropped++;
      return;
    }
    const copies = c.duplicate !== undefined && this.random() < c.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const d =
        c.delay === undefined
          ? 0
          : typeof c.delay === 'number'
            ? c.delay
            : c.delay[0] + this.random() * (c.delay[1] - c.delay[0]);
      this.clock.setTimeout(() => {
        this.stats.delivered++;
        target.inbound(copy, source);
      }, d);
    }
  }
}

/**
 * A transport on a `MemoryNetwork`. Unreliable by default (datagram semantics, like
 * UDP); `reliable: true` gives in-order, lossless delivery, like a stream transport.
 */
export class MemoryTransport implements Transport {
  readonly protocol: string;
  readonly reliable: boolean;
  readonly secure = false;
  readonly local: TransportAddress;
  private readonly network: MemoryNetwork;
  private sink: TransportSink | undefined;

  constructor(options: {
    network: MemoryNetwork;
    address?: string;
    port?: number;
    protocol?: string;
    reliable?: boolean;
  }) {
    this.network = options.network;
    this.protocol = options.protocol ?? (options.reliable ? 'TCP' : 'UDP');
    this.reliable = options.reliable ?? false;
    const address = options.address ?? '127.0.0.1';
    const port = options.port || this.network.freePort(this.protocol, address);
    this.local = { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' };
  }

  async start(sink: TransportSink): Promise<void> {
    this.sink = sink;
    this.network.attach(this);
  }

  async stop(): Promise<void> {
    this.network.detach(this);
    this.sink = undefined;
  }

  async send(data: Uint8Array, destination: Destination): Promise<string | undefined> {
    if (!this.sink) throw new TransportError('transport not started');
    this.network.deliver(this, data, destination);
    return this.reliable ? `${destination.address}:${destination.port}` : undefined;
  }

  /** @internal */
  inbound(
    data: Uint8Array,
    source: { address: string; port: number; connectionId?: string },
  ): void {
    this.sink?.receive(data, source);
  }
}

/** A small deterministic random source (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

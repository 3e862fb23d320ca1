import dgram from 'node:dgram';
import {
  boundAddress,
  type Destination,
  type Transport,
  type TransportAddress,
  TransportError,
  type TransportSink,
} from '@sipworks/stack';

export interface UdpTransportOptions {
  /** Address to bind (default `0.0.0.0`; an IPv6 address such as `::1` makes an IPv6 socket). */
  address?: string;
  /** Port to bind (default 5060; 0 picks a free one). */
  port?: number;
  /** What Via sent-by says, when not the bound address (behind NAT, or a host name). */
  advertised?: { host: string; port: number };
  /** Receive buffer size in bytes (default 4 MiB; the OS may cap it). */
  receiveBufferSize?: number;
  /** Send buffer size in bytes (default 4 MiB). */
  sendBufferSize?: number;
}

/**
 * SIP over UDP (RFC 3261 §18): one datagram per message, IPv4 or IPv6. The stack parses
 * each datagram; octets past Content-Length are ignored there (RFC 4475 §3.1.1.8).
 */
export class UdpTransport implements Transport {
  readonly protocol = 'UDP';
  readonly reliable = false;
  readonly secure = false;
  readonly advertised: { host: string; port: number } | undefined;
  private readonly options: UdpTransportOptions;
  private socket: dgram.Socket | undefined;
  private bound: TransportAddress | undefined;

  constructor(options: UdpTransportOptions = {}) {
    this.options = options;
    this.advertised = options.advertised;
  }

  get local(): TransportAddress {
    if (!this.bound) throw new TransportError('the UDP transport is not started');
    return this.bound;
  }

  async start(sink: TransportSink): Promise<void> {
    if (this.socket) return;
    const address = this.options.address ?? '0.0.0.0';
    const family = address.includes(':') ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type: family, reuseAddr: false });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.options.port ?? 5060, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setRecvBufferSize(this.options.receiveBufferSize ?? 4 << 20);
      socket.setSendBufferSize(this.options.sendBufferSize ?? 4 << 20);
    } catch {
      // The OS caps the sizes; the defaults still work.
    }
    const a = socket.address();
    this.bound = boundAddress(a);
    socket.on('message', (msg, rinfo) => {
      sink.receive(msg, { address: rinfo.address, port: rinfo.port });
    });
    socket.on('error', (err) => sink.error(err));
  }

  async stop(): Promise<void> {
    const s = this.socket;
    if (!s) return;
    this.socket = undefined;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  send(data: Uint8Array, destination: Destination): Promise<string | undefined> {
    const s = this.socket;
    if (!s) return Promise.reject(new TransportError('the UDP transport is not started'));
    return new Promise((resolve, reject) => {
      s.send(data, destination.port, destination.address, (err) => {
        if (err)
          reject(
            new TransportError(
              `UDP send to ${destination.address}:${destination.port} failed: ${err.message}`,
              { cause: err },
            ),
          );
        else resolve(undefined);
      });
    });
  }
}

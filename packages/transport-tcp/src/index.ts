import net from 'node:net';
import {
  boundAddress,
  type Destination,
  StreamConnections,
  type StreamConnectionsOptions,
  type Transport,
  type TransportAddress,
  TransportError,
  type TransportSink,
} from '@sipworks/stack';

export interface TcpTransportOptions
  extends Omit<StreamConnectionsOptions, 'protocol' | 'framing'> {
  /** Address to listen on (default `0.0.0.0`; `::1` or another IPv6 address for IPv6). */
  address?: string;
  /** Port to listen on (default 5060; 0 picks a free one). */
  port?: number;
  /** What Via sent-by says, when not the bound address. */
  advertised?: { host: string; port: number };
  /** How long a connect may take (ms, default 10,000). */
  connectTimeoutMs?: number;
}

/**
 * SIP over TCP (RFC 3261 §18): connections opened on demand and reused in both
 * directions, messages framed by Content-Length with limits, CRLF keep-alives
 * (RFC 5626 §4.4.1), idle connections closed, lost connections reported to the stack.
 */
export class TcpTransport implements Transport {
  readonly protocol = 'TCP';
  readonly reliable = true;
  readonly secure = false;
  readonly advertised: { host: string; port: number } | undefined;
  private readonly options: TcpTransportOptions;
  private readonly connections: StreamConnections;
  private server: net.Server | undefined;
  private bound: TransportAddress | undefined;

  constructor(options: TcpTransportOptions = {}) {
    this.options = options;
    this.advertised = options.advertised;
    this.connections = new StreamConnections({ ...options, protocol: 'TCP', framing: 'stream' });
  }

  get local(): TransportAddress {
    if (!this.bound) throw new TransportError('the TCP transport is not started');
    return this.bound;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  async start(sink: TransportSink): Promise<void> {
    if (this.server) return;
    this.connections.start(sink);
    const server = net.createServer((socket) => {
      socket.setNoDelay(true);
      this.connections.add(
        socket,
        { address: normalize(socket.remoteAddress), port: socket.remotePort ?? 0 },
        false,
      );
    });
    this.server = server;
    server.on('error', (err) => sink.error(err));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 5060, this.options.address ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address() as net.AddressInfo;
    this.bound = boundAddress(a);
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.connections.closeAll();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Close one connection (a flow the stack found dead); `connectionClosed` reports it. */
  closeConnection(connectionId: string): void {
    this.connections.close(connectionId, new TransportError(`${connectionId} closed as failed`));
  }

  send(data: Uint8Array, destination: Destination): Promise<string | undefined> {
    if (!this.server) return Promise.reject(new TransportError('the TCP transport is not started'));
    return this.connections.send(data, destination, (d) => this.connect(d));
  }

  private connect(
    d: Destination,
  ): Promise<{ socket: net.Socket; remote: { address: string; port: number } }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: d.address, port: d.port, noDelay: true });
      const timer = setTimeout(
        () => socket.destroy(new Error('connect timeout')),
        this.options.connectTimeoutMs ?? 10_000,
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve({
          socket,
          remote: {
            address: normalize(socket.remoteAddress ?? d.address),
            port: socket.remotePort ?? d.port,
          },
        });
      });
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('error', onError);
    });
  }
}

/** `::ffff:127.0.0.1` -> `127.0.0.1`. */
function normalize(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

import net from 'node:net';
import tls from 'node:tls';
import {
  boundAddress,
  type Destination,
  type StreamConnection,
  StreamConnections,
  type StreamConnectionsOptions,
  type StreamSocket,
  type Transport,
  type TransportAddress,
  TransportError,
  type TransportSink,
} from '@sipworks/stack';
import { checkSipServerIdentity, describeTlsError } from './identity.ts';

/** PEM text or bytes; a list for a chain or several trust anchors. */
export type Pem = string | Uint8Array | Array<string | Uint8Array>;

export interface TlsTransportOptions
  extends Omit<StreamConnectionsOptions, 'protocol' | 'framing'> {
  /** Address to listen on (default `0.0.0.0`; `::1` or another IPv6 address for IPv6). */
  address?: string;
  /** Port to listen on (default 5061; 0 picks a free one). */
  port?: number;
  /** What Via sent-by says, when not the bound address. */
  advertised?: { host: string; port: number };
  /** How long connecting, and a TLS handshake in either direction, may take (ms, default 10,000). */
  connectTimeoutMs?: number;
  /** This server's certificate (PEM, leaf first). With `key`, the transport accepts connections. */
  cert?: Pem;
  /** The private key of `cert` (PEM). */
  key?: string | Uint8Array;
  /** Trust anchors added to Node's default CA list, for server and client certificates. */
  ca?: Pem;
  /** Verify server certificates: chain and identity (RFC 5922 §7). Default true. */
  rejectUnauthorized?: boolean;
  /** Ask connecting clients for a certificate, accepting them without one. Default false. */
  requestCert?: boolean;
  /** Accept only clients that present a certificate the trust anchors verify (mutual TLS). Default false. */
  requireClientCert?: boolean;
  /** The certificate presented on connections this transport opens (PEM; mutual TLS). */
  clientCert?: Pem;
  /** The private key of `clientCert` (PEM). */
  clientKey?: string | Uint8Array;
  /** The oldest TLS version accepted, both directions. Default `TLSv1.2`. */
  minVersion?: tls.SecureVersion;
  /**
   * The name sent as SNI and checked against server certificates on every outbound
   * connection, instead of the SIP domain the stack resolved (`destination.serverName`).
   */
  servername?: string;
}

/** What is known of one TLS connection. */
export interface TlsConnectionInfo {
  id: string;
  remote: { address: string; port: number };
  /** Whether this transport opened it. */
  outbound: boolean;
  /** The SNI name: the one sent (outbound) or received (inbound); `undefined` when none. */
  servername: string | undefined;
  /** Outbound: the domain or address the server certificate was checked against. */
  identity: string | undefined;
  /** The negotiated version, such as `TLSv1.3`. */
  version: string | undefined;
  /** Whether the peer's certificate was verified (for inbound: a verified client certificate). */
  authorized: boolean;
  authorizationError: string | undefined;
  /** The peer's certificate, when it presented one. */
  peerCertificate: tls.PeerCertificate | undefined;
}

/**
 * A TLS socket as `StreamConnections` sees it: errors leave it as `TransportError`s that
 * say in words what failed (a rejected client certificate, a reset...).
 */
class TlsStreamSocket implements StreamSocket {
  readonly tls: tls.TLSSocket;
  readonly servername: string | undefined;
  readonly identity: string | undefined;
  private readonly peer: string;

  constructor(
    socket: tls.TLSSocket,
    peer: string,
    servername: string | undefined,
    identity: string | undefined,
    outbound?: { clientCert: boolean },
  ) {
    this.tls = socket;
    this.peer = peer;
    this.servername = servername;
    this.identity = identity;
    if (outbound) {
      // A server that verifies client certificates after the handshake (Node does, with
      // TLS 1.3) refuses one by closing the connection without an alert: say so.
      let received = false;
      socket.on('data', () => {
        received = true;
      });
      socket.once('end', () => {
        if (received) return;
        const hint = outbound.clientCert ? '; it may have refused our client certificate' : '';
        socket.destroy(new Error(`the peer closed the connection without sending anything${hint}`));
      });
    }
  }

  write(data: Uint8Array | string, callback?: (err?: Error | null) => void): boolean {
    return this.tls.write(data, callback);
  }

  end(): void {
    this.tls.end();
  }

  destroy(error?: Error): void {
    this.tls.destroy(error);
  }

  on(event: 'data', listener: (chunk: Uint8Array | string) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(
    event: 'data' | 'close' | 'error',
    listener: ((chunk: Uint8Array | string) => void) | (() => void) | ((error: Error) => void),
  ): this {
    if (event === 'error') {
      const onError = listener as (error: Error) => void;
      this.tls.on('error', (e: Error) =>
        onError(
          e instanceof TransportError
            ? e
            : new TransportError(`TLS with ${this.peer} failed: ${describeTlsError(e)}`, {
                cause: e,
              }),
        ),
      );
    } else this.tls.on(event, listener as (...args: unknown[]) => void);
    return this;
  }
}

/**
 * SIP over TLS (RFC 3261 §26.2, RFC 5922, TLS 1.2 / 1.3 through `node:tls`): the TCP
 * transport's connection handling (reuse in both directions, Content-Length framing
 * with limits, CRLF keep-alives, idle timeouts, lost connections reported) over TLS.
 * Outbound connections send the SIP domain as SNI and check the server certificate
 * against it (RFC 5922 §7.2: a subjectAltName `DNS` name or `URI:sip:<domain>`).
 */
export class TlsTransport implements Transport {
  readonly protocol = 'TLS';
  readonly reliable = true;
  readonly secure = true;
  readonly advertised: { host: string; port: number } | undefined;
  private readonly options: TlsTransportOptions;
  private readonly streams: StreamConnections;
  private readonly trust: Array<string | Uint8Array> | undefined;
  /** Sockets not yet handed to `streams`: connecting, or in their handshake. */
  private readonly opening = new Set<net.Socket>();
  private server: tls.Server | undefined;
  private bound: TransportAddress | undefined;
  private running = false;

  constructor(options: TlsTransportOptions = {}) {
    if ((options.cert === undefined) !== (options.key === undefined))
      throw new TypeError('TlsTransport: cert and key go together');
    if ((options.clientCert === undefined) !== (options.clientKey === undefined))
      throw new TypeError('TlsTransport: clientCert and clientKey go together');
    if (options.requireClientCert && options.cert === undefined)
      throw new TypeError('TlsTransport: requireClientCert needs cert and key to listen');
    this.options = options;
    this.advertised = options.advertised;
    this.trust =
      options.ca === undefined ? undefined : [...tls.rootCertificates, ...list(options.ca)];
    this.streams = new StreamConnections({ ...options, protocol: 'TLS', framing: 'stream' });
  }

  /** Whether the transport accepts connections (it has a certificate and key). */
  get listening(): boolean {
    return this.options.cert !== undefined;
  }

  get local(): TransportAddress {
    if (!this.bound) throw new TransportError('the TLS transport is not started');
    return this.bound;
  }

  /** Connections open now (handshakes complete). */
  get connectionCount(): number {
    return this.streams.size;
  }

  /** What is known of an open connection: SNI, TLS version, the peer's certificate. */
  connectionInfo(id: string): TlsConnectionInfo | undefined {
    for (const c of this.streams.connections) if (c.id === id) return info(c);
    return undefined;
  }

  /** Every open connection. */
  connectionInfos(): TlsConnectionInfo[] {
    return [...this.streams.connections].map(info);
  }

  async start(sink: TransportSink): Promise<void> {
    if (this.running) return;
    const address = this.options.address ?? '0.0.0.0';
    const port = this.options.port ?? 5061;
    if (!this.listening) {
      // A client only: nothing is bound; Via sent-by says what `advertised` or the options say.
      this.streams.start(sink);
      this.running = true;
      this.bound = { address, port, family: net.isIPv6(address) ? 'IPv6' : 'IPv4' };
      return;
    }
    const requireCert = this.options.requireClientCert === true;
    const serverOptions: tls.TlsOptions = {
      cert: pem(this.options.cert),
      key: pem(this.options.key),
      minVersion: this.options.minVersion ?? 'TLSv1.2',
      requestCert: requireCert || this.options.requestCert === true,
      rejectUnauthorized: requireCert,
      handshakeTimeout: this.options.connectTimeoutMs ?? 10_000,
    };
    if (this.trust) serverOptions.ca = pem(this.trust);
    const server = tls.createServer(serverOptions);
    server.on('connection', (raw: net.Socket) => {
      this.opening.add(raw);
      raw.once('close', () => this.opening.delete(raw));
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      socket.setNoDelay(true);
      const remote = { address: normalize(socket.remoteAddress), port: socket.remotePort ?? 0 };
      const sni = typeof socket.servername === 'string' ? socket.servername : undefined;
      this.streams.add(
        new TlsStreamSocket(socket, `${remote.address}:${remote.port}`, sni, undefined),
        remote,
        false,
      );
    });
    server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      const from = `${normalize(socket.remoteAddress)}:${socket.remotePort ?? 0}`;
      sink.error(
        new TransportError(`TLS handshake from ${from} failed: ${describeTlsError(err)}`, {
          cause: err,
        }),
      );
    });
    server.on('error', (err) => sink.error(err));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.streams.start(sink);
    this.running = true;
    const a = server.address() as net.AddressInfo;
    this.bound = boundAddress(a);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    const server = this.server;
    this.server = undefined;
    this.streams.closeAll();
    for (const s of [...this.opening]) s.destroy();
    this.opening.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Close one connection (a flow the stack found dead); `connectionClosed` reports it. */
  closeConnection(connectionId: string): void {
    this.streams.close(connectionId, new TransportError(`${connectionId} closed as failed`));
  }

  send(data: Uint8Array, destination: Destination): Promise<string | undefined> {
    if (!this.running)
      return Promise.reject(new TransportError('the TLS transport is not started'));
    const existing = this.streams.find(destination);
    if (existing?.outbound && destination.serverName !== undefined) {
      // A connection is reused for another domain only if its certificate names that
      // domain too (RFC 5922 §7.2); the connection table is keyed by address alone.
      const s = existing.socket as TlsStreamSocket;
      const identity = this.identityFor(destination);
      if (this.options.rejectUnauthorized !== false && s.identity !== identity) {
        const err = checkSipServerIdentity(identity, s.tls.getPeerCertificate());
        if (err)
          return Promise.reject(
            new TransportError(
              `${existing.id} to ${destination.address}:${destination.port} is authenticated for ${s.identity}, not ${identity}: ${describeTlsError(err)}`,
              { cause: err },
            ),
          );
      }
    }
    return this.streams.send(data, destination, (d) => this.connect(d));
  }

  /** The name a server certificate must carry: the override, else the SIP domain resolved. */
  private identityFor(d: Destination): string {
    const name = this.options.servername ?? d.serverName ?? d.address;
    return unbracket(name).toLowerCase();
  }

  private connect(
    d: Destination,
  ): Promise<{ socket: StreamSocket; remote: { address: string; port: number } }> {
    const identity = this.identityFor(d);
    // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName."
    const servername = net.isIP(identity) ? undefined : identity;
    const peer = `${identity === d.address ? '' : `${identity} at `}${d.address}:${d.port}`;
    const connectOptions: tls.ConnectionOptions = {
      host: d.address,
      port: d.port,
      minVersion: this.options.minVersion ?? 'TLSv1.2',
      rejectUnauthorized: this.options.rejectUnauthorized !== false,
      checkServerIdentity: (_host, cert) => checkSipServerIdentity(identity, cert),
    };
    if (servername !== undefined) connectOptions.servername = servername;
    if (this.trust) connectOptions.ca = pem(this.trust);
    if (this.options.clientCert !== undefined) {
      connectOptions.cert = pem(this.options.clientCert);
      connectOptions.key = pem(this.options.clientKey);
    }
    return new Promise((resolve, reject) => {
      const socket = tls.connect(connectOptions);
      this.opening.add(socket);
      const timer = setTimeout(
        () => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
        this.options.connectTimeoutMs ?? 10_000,
      );
      const onError = (err: Error) => {
        clearTimeout(timer);
        this.opening.delete(socket);
        reject(
          new TransportError(`TLS handshake with ${peer} failed: ${describeTlsError(err)}`, {
            cause: err,
          }),
        );
      };
      const onClose = () => onError(new Error('connection closed during the handshake'));
      socket.once('error', onError);
      socket.once('close', onClose);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        this.opening.delete(socket);
        socket.off('error', onError);
        socket.off('close', onClose);
        if (!this.running) {
          socket.destroy();
          reject(new TransportError('the TLS transport is stopped'));
          return;
        }
        socket.setNoDelay(true);
        resolve({
          socket: new TlsStreamSocket(socket, peer, servername, identity, {
            clientCert: this.options.clientCert !== undefined,
          }),
          remote: {
            address: normalize(socket.remoteAddress ?? d.address),
            port: socket.remotePort ?? d.port,
          },
        });
      });
    });
  }
}

function info(c: StreamConnection): TlsConnectionInfo {
  const s = c.socket as TlsStreamSocket;
  const cert = s.tls.getPeerCertificate();
  const error = s.tls.authorizationError as Error | string | null | undefined;
  return {
    id: c.id,
    remote: { ...c.remote },
    outbound: c.outbound,
    servername: s.servername,
    identity: s.identity,
    version: s.tls.getProtocol() ?? undefined,
    authorized: s.tls.authorized,
    authorizationError: error ? String(error) : undefined,
    peerCertificate: cert && Object.keys(cert).length > 0 ? cert : undefined,
  };
}

function list(p: Pem): Array<string | Uint8Array> {
  return Array.isArray(p) ? p : [p];
}

/** Node's TLS options take strings and Buffers. */
function pem(p: Pem | undefined): string | Buffer | Array<string | Buffer> {
  if (p === undefined) return [];
  if (Array.isArray(p)) return p.map((x) => (typeof x === 'string' ? x : Buffer.from(x)));
  return typeof p === 'string' ? p : Buffer.from(p);
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** `::ffff:127.0.0.1` -> `127.0.0.1`. */
function normalize(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

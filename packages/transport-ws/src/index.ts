import { isUtf8 } from 'node:buffer';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type tls from 'node:tls';
import {
  boundAddress,
  type Destination,
  StreamConnections,
  type StreamConnectionsOptions,
  type StreamSocket,
  type Transport,
  type TransportAddress,
  TransportError,
  type TransportSink,
} from '@sipworks/stack';
import { type ClientOptions, type RawData, WebSocket, WebSocketServer } from 'ws';

import { SIP_SUBPROTOCOL } from './subprotocol.ts';

export {
  type WebSocketConstructor,
  type WebSocketLike,
  type WebSocketLikeEventMap,
  WsClientTransport,
  type WsClientTransportOptions,
} from './client.ts';
export { SIP_SUBPROTOCOL } from './subprotocol.ts';

/** TLS material: `cert` and `key` make the listener secure; `ca` and `rejectUnauthorized` apply to outbound connections. */
export interface WsTlsOptions {
  cert?: string | Buffer | Array<string | Buffer>;
  key?: string | Buffer | Array<string | Buffer>;
  ca?: string | Buffer | Array<string | Buffer>;
  /** Check the peer's certificate on outbound connections (default true). */
  rejectUnauthorized?: boolean;
}

export interface WsTransportOptions
  extends Omit<StreamConnectionsOptions, 'protocol' | 'framing' | 'keepAliveIntervalMs'> {
  /** Address to listen on (default `0.0.0.0`; `::1` or another IPv6 address for IPv6). */
  address?: string;
  /** Port to listen on (default 80 for WS, 443 for WSS; 0 picks a free one). */
  port?: number;
  /** The HTTP path of the WebSocket endpoint, served and requested (default `/`). */
  path?: string;
  /**
   * Accept WebSocket handshakes on this HTTP(S) server instead of listening: it must be
   * listening (or about to). Secure when it is an `https.Server`. Not closed by `stop()`.
   */
  server?: http.Server | https.Server;
  /** Certificate and key (WSS listener), CA and checking (outbound WSS). */
  tls?: WsTlsOptions;
  /** Force the protocol: true for WSS, false for WS (default: from `tls` or `server`). */
  secure?: boolean;
  /** Only open outbound connections; accept none (a WebSocket client, RFC 7118 §5.2). */
  listen?: boolean;
  /**
   * Origins accepted at the handshake (RFC 6455 §10.2): a list, or a predicate given the
   * Origin header (undefined when absent). Others get 403. Default: any.
   */
  allowedOrigins?: readonly string[] | ((origin: string | undefined) => boolean);
  /** The Origin header sent on outbound connections. */
  origin?: string;
  /** What Via sent-by says, when not the bound address. */
  advertised?: { host: string; port: number };
  /** Ping each connection this often (ms; default 30,000; 0 never); a connection that misses a pong is closed. */
  pingIntervalMs?: number;
  /** How long an outbound connection and its handshake may take (ms, default 10,000). */
  connectTimeoutMs?: number;
}

type WsConnectResult = { socket: StreamSocket; remote: { address: string; port: number } };

/**
 * SIP over WebSocket and secure WebSocket (RFC 7118): each WebSocket message carries
 * one SIP message, the `sip` subprotocol is required both ways, connections are opened
 * on demand and reused in both directions, WebSocket pings find dead peers, and lost
 * connections are reported to the stack.
 */
export class WsTransport implements Transport {
  readonly protocol: 'WS' | 'WSS';
  readonly reliable = true;
  readonly secure: boolean;
  readonly advertised: { host: string; port: number } | undefined;
  private readonly options: WsTransportOptions;
  private readonly path: string;
  private readonly connections: StreamConnections;
  private readonly alive = new WeakSet<WebSocket>();
  private readonly pending = new Set<WebSocket>();
  private wss: WebSocketServer | undefined;
  private server: http.Server | https.Server | undefined;
  private ownsServer = false;
  private onUpgrade:
    | ((req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void)
    | undefined;
  private pinger: ReturnType<typeof setInterval> | undefined;
  private bound: TransportAddress | undefined;
  private started = false;

  constructor(options: WsTransportOptions = {}) {
    this.options = options;
    this.secure =
      options.secure ??
      (options.server
        ? options.server instanceof https.Server
        : options.tls?.cert !== undefined && options.tls.key !== undefined);
    this.protocol = this.secure ? 'WSS' : 'WS';
    this.advertised = options.advertised;
    this.path = options.path ?? '/';
    if (!this.path.startsWith('/')) throw new TypeError(`path must start with '/': ${this.path}`);
    this.connections = new StreamConnections({
      idleTimeoutMs: 0,
      ...options,
      protocol: this.protocol,
      framing: 'message',
    });
  }

  get local(): TransportAddress {
    if (!this.bound) throw new TransportError(`the ${this.protocol} transport is not started`);
    return this.bound;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  async start(sink: TransportSink): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.connections.start(sink);
    this.startPings();
    try {
      await this.listen(sink);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private async listen(sink: TransportSink): Promise<void> {
    if (this.options.listen === false) {
      const address = this.options.address ?? '0.0.0.0';
      this.bound = { address, port: 0, family: address.includes(':') ? 'IPv6' : 'IPv4' };
      return;
    }
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.maxPayload(),
      handleProtocols: (protocols) => (protocols.has(SIP_SUBPROTOCOL) ? SIP_SUBPROTOCOL : false),
    });
    this.wss = wss;
    wss.on('error', (err) => sink.error(err));
    const server = this.options.server ?? this.createServer();
    this.server = server;
    this.onUpgrade = (req, socket, head) => this.upgrade(req, socket, head);
    server.on('upgrade', this.onUpgrade);
    if (this.ownsServer) {
      server.on('error', (err) => sink.error(err));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(
          this.options.port ?? (this.secure ? 443 : 80),
          this.options.address ?? '0.0.0.0',
          () => {
            server.off('error', reject);
            resolve();
          },
        );
      });
    } else if (!server.listening) {
      await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    }
    const a = server.address() as net.AddressInfo;
    this.bound = boundAddress(a);
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = undefined;
    for (const ws of this.pending) ws.terminate();
    this.pending.clear();
    this.connections.closeAll();
    const server = this.server;
    const wss = this.wss;
    this.server = undefined;
    this.wss = undefined;
    if (server && this.onUpgrade) server.off('upgrade', this.onUpgrade);
    this.onUpgrade = undefined;
    if (wss) {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
    if (server && this.ownsServer) {
      this.ownsServer = false;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Close one connection (a flow the stack found dead); `connectionClosed` reports it. */
  closeConnection(connectionId: string): void {
    this.connections.close(connectionId, new TransportError(`${connectionId} closed as failed`));
  }

  send(data: Uint8Array, destination: Destination): Promise<string | undefined> {
    if (!this.started)
      return Promise.reject(new TransportError(`the ${this.protocol} transport is not started`));
    return this.connections.send(data, destination, (d) => this.connect(d));
  }

  private maxPayload(): number {
    return (this.options.maxHeaderBytes ?? 65536) + (this.options.maxBodyBytes ?? 1 << 20);
  }

  private createServer(): http.Server {
    this.ownsServer = true;
    const reply = (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(426, { Upgrade: 'websocket', 'Content-Type': 'text/plain' });
      res.end('SIP over WebSocket (RFC 7118): upgrade required\n');
    };
    if (!this.secure) return http.createServer(reply);
    const t = this.options.tls;
    if (t?.cert === undefined || t.key === undefined)
      throw new TypeError('a WSS listener needs tls.cert and tls.key');
    return https.createServer({ cert: t.cert, key: t.key, ...(t.ca ? { ca: t.ca } : {}) }, reply);
  }

  /** Check one handshake (path, Origin, subprotocol), then accept it. */
  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const wss = this.wss;
    if (!wss) {
      refuseHandshake(socket, 503, 'Service Unavailable');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path !== this.path) {
      // Another upgrade listener on a shared server may serve this path.
      if (!this.ownsServer && (this.server?.listenerCount('upgrade') ?? 0) > 1) return;
      refuseHandshake(socket, 404, 'Not Found');
      return;
    }
    if (!this.originAllowed(req.headers.origin)) {
      refuseHandshake(socket, 403, 'Forbidden');
      return;
    }
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(SIP_SUBPROTOCOL)) {
      // RFC 7118 §4: the client MUST offer "sip"; without it there is no SIP session.
      refuseHandshake(socket, 400, 'Bad Request', 'the "sip" WebSocket subprotocol is required');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (!this.started) {
        ws.terminate();
        return;
      }
      this.accept(
        ws,
        { address: normalize(req.socket.remoteAddress), port: req.socket.remotePort ?? 0 },
        false,
      );
    });
  }

  private originAllowed(origin: string | undefined): boolean {
    const allowed = this.options.allowedOrigins;
    if (allowed === undefined) return true;
    if (typeof allowed === 'function') return allowed(origin);
    return origin !== undefined && allowed.includes(origin);
  }

  private accept(
    ws: WebSocket,
    remote: { address: string; port: number },
    outbound: boolean,
  ): void {
    this.connections.add(this.wrap(ws), remote, outbound);
  }

  /** The adapter for a socket, with its liveness followed for the pings. */
  private wrap(ws: WebSocket): WsSocket {
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    ws.on('message', () => this.alive.add(ws));
    return new WsSocket(ws);
  }

  private startPings(): void {
    const every = this.options.pingIntervalMs ?? 30_000;
    if (every <= 0) return;
    this.pinger = setInterval(() => {
      for (const conn of [...this.connections.connections]) {
        if (!(conn.socket instanceof WsSocket)) continue;
        const ws = conn.socket.ws;
        if (!this.alive.has(ws)) {
          this.connections.drop(conn, new TransportError(`${conn.id}: no pong within ${every} ms`));
          continue;
        }
        this.alive.delete(ws);
        if (ws.readyState === WebSocket.OPEN) ws.ping();
      }
    }, every);
    this.pinger.unref();
  }

  private connect(d: Destination): Promise<WsConnectResult> {
    const scheme = this.secure ? 'wss' : 'ws';
    const host = d.address.includes(':') ? `[${d.address}]` : d.address;
    const url = `${scheme}://${host}:${d.port}${this.path}`;
    const t = this.options.tls;
    const options: ClientOptions = {
      handshakeTimeout: this.options.connectTimeoutMs ?? 10_000,
      maxPayload: this.maxPayload(),
      perMessageDeflate: false,
    };
    if (this.options.origin !== undefined) options.origin = this.options.origin;
    const serverName = d.serverName !== d.address ? d.serverName : undefined;
    // The Host header names the domain the request was for, not the address it resolved to.
    if (serverName !== undefined) options.headers = { Host: `${serverName}:${d.port}` };
    if (this.secure) {
      const tlsOptions: tls.ConnectionOptions = {};
      if (t?.ca !== undefined) tlsOptions.ca = t.ca;
      if (t?.cert !== undefined) tlsOptions.cert = t.cert;
      if (t?.key !== undefined) tlsOptions.key = t.key;
      if (t?.rejectUnauthorized !== undefined) tlsOptions.rejectUnauthorized = t.rejectUnauthorized;
      if (serverName !== undefined) tlsOptions.servername = serverName;
      Object.assign(options, tlsOptions);
    }
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, [SIP_SUBPROTOCOL], options);
      this.pending.add(ws);
      const fail = (err: Error) => {
        this.pending.delete(ws);
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(err);
      };
      ws.once('error', fail);
      ws.once('unexpected-response', (_req, res) =>
        fail(new Error(`handshake refused: ${res.statusCode} ${res.statusMessage ?? ''}`.trim())),
      );
      ws.once('open', () => {
        this.pending.delete(ws);
        ws.on('error', () => {});
        ws.off('error', fail);
        if (ws.protocol !== SIP_SUBPROTOCOL) {
          ws.terminate();
          reject(new Error(`server chose subprotocol "${ws.protocol}", not "sip"`));
          return;
        }
        if (!this.started) {
          ws.terminate();
          reject(new Error(`the ${this.protocol} transport stopped`));
          return;
        }
        resolve({ socket: this.wrap(ws), remote: { address: d.address, port: d.port } });
      });
    });
  }
}

/** A `ws` WebSocket seen as the `StreamSocket` that `StreamConnections` drives. */
export class WsSocket implements StreamSocket {
  readonly ws: WebSocket;

  constructor(ws: WebSocket) {
    this.ws = ws;
  }

  /** RFC 7118 §5.1: one message per WebSocket message; text when it is valid UTF-8, binary otherwise. */
  write(data: Uint8Array | string, callback?: (err?: Error | null) => void): boolean {
    const binary = typeof data !== 'string' && !isUtf8(data);
    try {
      this.ws.send(data, { binary }, (err) => callback?.(err ?? null));
    } catch (e) {
      callback?.(e instanceof Error ? e : new Error(String(e)));
      return false;
    }
    return true;
  }

  end(): void {
    this.ws.close(1000);
  }

  destroy(_error?: Error): void {
    this.ws.terminate();
  }

  on(event: 'data', listener: (chunk: Uint8Array | string) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(
    event: 'data' | 'close' | 'error',
    listener: ((chunk: Uint8Array | string) => void) | (() => void) | ((error: Error) => void),
  ): this {
    switch (event) {
      case 'data': {
        const l = listener as (chunk: Uint8Array | string) => void;
        this.ws.on('message', (data: RawData) => l(toBytes(data)));
        break;
      }
      case 'close':
        this.ws.on('close', listener as () => void);
        break;
      case 'error':
        this.ws.on('error', listener as (error: Error) => void);
        break;
      default:
        throw new TypeError(`unknown event ${event satisfies never}`);
    }
    return this;
  }
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

function refuseHandshake(
  socket: net.Socket,
  status: number,
  reason: string,
  detail = reason,
): void {
  const body = `${detail}\n`;
  socket.once('finish', () => socket.destroy());
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** `::ffff:127.0.0.1` -> `127.0.0.1`. */
function normalize(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

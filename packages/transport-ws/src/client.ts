/**
 * The browser side of SIP over WebSocket (RFC 7118): a transport on the host's own
 * `WebSocket` (a page's, or any constructor with the same shape), with no Node module, so
 * that a page bundles it with `@sipworks/dum`. `import { WsClientTransport } from
 * '@sipworks/transport-ws'` picks this file in a browser build (package.json `exports`,
 * condition `browser`); in Node.js it is exported beside `WsTransport`.
 */
import {
  type Destination,
  StreamConnections,
  type StreamSocket,
  type Transport,
  type TransportAddress,
  TransportError,
  type TransportSink,
} from '@sipworks/stack';
import { SIP_SUBPROTOCOL } from './subprotocol.ts';

/** The events of a WebSocket this transport listens to, as WHATWG's `WebSocket` has them. */
export interface WebSocketLikeEventMap {
  open: unknown;
  close: { code?: number; reason?: string };
  error: unknown;
  message: { data: unknown };
}

/** The part of the WHATWG `WebSocket` the client uses (the `ws` package's client has it too). */
export interface WebSocketLike {
  readonly protocol: string;
  readonly readyState: number;
  binaryType: string;
  send(data: string | ArrayBuffer | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener<K extends keyof WebSocketLikeEventMap>(
    type: K,
    listener: (event: WebSocketLikeEventMap[K]) => void,
  ): void;
}

/** `new WebSocket(url, protocols)`: the page's `WebSocket`, or another with its shape. */
export type WebSocketConstructor = new (url: string, protocols: string | string[]) => WebSocketLike;

export interface WsClientTransportOptions {
  /**
   * The SIP WebSocket server, `ws://` or `wss://` with its path: every request and
   * response goes there, whatever address the stack resolved (it is the outbound proxy,
   * RFC 7118 §5.2), so a page needs no DNS.
   */
  url: string;
  /** The WebSocket constructor (default: `globalThis.WebSocket`). */
  WebSocket?: WebSocketConstructor;
  /** How long opening the connection may take (ms, default 10,000). */
  connectTimeoutMs?: number;
  /**
   * The host written in Via sent-by and Contact (default: a random name under
   * `.invalid`, as RFC 7118 §5.2 has a client that cannot be reached otherwise do).
   */
  viaHost?: string;
  /** The largest header section accepted (default 65,536 bytes). */
  maxHeaderBytes?: number;
  /** The largest body accepted (default 1 MiB). */
  maxBodyBytes?: number;
  /**
   * Reopen a lost connection by itself, after `minDelayMs` doubling up to `maxDelayMs`
   * between failed attempts (default 1,000 and 30,000), as RFC 5626 §4.5 has a UA
   * recover a flow; `false`: only on the next send.
   */
  reconnect?: { minDelayMs?: number; maxDelayMs?: number } | false;
  /**
   * The connection opened (true) or was lost (false). A registered UA registers again
   * when it reopens (its registrar reaches it over the new connection only).
   */
  onConnectionChange?: (connected: boolean) => void;
}

const OPEN = 1;

/**
 * A SIP over WebSocket client (RFC 7118 §5): one connection to one server, opened with
 * the `sip` subprotocol at `start()` and again on the next send after it closes; each SIP
 * message is one WebSocket message, text when it is UTF-8 (§5.1). It accepts no
 * connections: requests reach it over the connection it opened (the server routes to the
 * `.invalid` Contact over that flow, RFC 5626 §5.3).
 */
export class WsClientTransport implements Transport {
  readonly protocol: 'WS' | 'WSS';
  readonly reliable = true;
  readonly secure: boolean;
  readonly advertised: { host: string; port: number };
  /** The server as the stack sees it (host and port of the URL). */
  readonly server: { address: string; port: number };
  private readonly url: string;
  private readonly options: WsClientTransportOptions;
  private readonly Ctor: WebSocketConstructor;
  private readonly connections: StreamConnections;
  private readonly sockets = new Set<WebSocketLike>();
  private started = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelayMs = 0;

  constructor(options: WsClientTransportOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new TypeError(`not a WebSocket URL: ${options.url}`);
    }
    if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')
      throw new TypeError(`a SIP WebSocket URL is ws:// or wss://, not ${options.url}`);
    const Ctor =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor)
      throw new TypeError('no WebSocket here: pass options.WebSocket (the ws package has one)');
    this.Ctor = Ctor;
    this.options = options;
    this.url = parsed.toString();
    this.secure = parsed.protocol === 'wss:';
    this.protocol = this.secure ? 'WSS' : 'WS';
    this.server = {
      address: parsed.hostname.replace(/^\[|\]$/g, ''),
      port: parsed.port ? Number(parsed.port) : this.secure ? 443 : 80,
    };
    this.advertised = { host: options.viaHost ?? `${randomLabel()}.invalid`, port: 0 };
    this.connections = new StreamConnections({
      protocol: this.protocol,
      framing: 'message',
      idleTimeoutMs: 0,
      firstMessageTimeoutMs: 0,
      ...(options.maxHeaderBytes !== undefined ? { maxHeaderBytes: options.maxHeaderBytes } : {}),
      ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
    });
  }

  /** No bound address of its own: the advertised `.invalid` host, port 0. */
  get local(): TransportAddress {
    return { address: this.advertised.host, port: 0, family: 'IPv4' };
  }

  /** Whether the connection to the server is open now. */
  get connected(): boolean {
    return this.connections.size > 0;
  }

  /** Open the connection to the server; rejects with a `TransportError` when it cannot. */
  async start(sink: TransportSink): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.connections.start(sink);
    try {
      const { socket, remote } = await this.connect();
      this.connections.add(socket, remote, true);
      this.changed(true);
    } catch (e) {
      await this.stop();
      throw new TransportError(`cannot connect to ${this.url}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.connections.closeAll();
    for (const ws of this.sockets) ws.close(1000);
    this.sockets.clear();
  }

  closeConnection(connectionId: string): void {
    this.connections.close(connectionId, new TransportError(`${connectionId} closed as failed`));
  }

  /** Send to the server, whatever the destination (the URL is the outbound proxy). */
  send(data: Uint8Array, destination: Destination): Promise<string | undefined> {
    if (!this.started)
      return Promise.reject(new TransportError(`the ${this.protocol} client is not started`));
    const open = destination.connectionId
      ? { ...this.server, connectionId: destination.connectionId }
      : this.server;
    const had = this.connections.size > 0;
    return this.connections
      .send(data, open, () => this.connect())
      .then((id) => {
        if (!had) this.changed(true);
        return id;
      });
  }

  private changed(connected: boolean): void {
    if (connected) this.retryDelayMs = 0;
    try {
      this.options.onConnectionChange?.(connected);
    } catch {
      // The application's callback must not break the transport.
    }
  }

  /** The connection closed: report it, and reopen it later unless told not to. */
  private lost(): void {
    if (!this.started) return;
    this.changed(false);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const r = this.options.reconnect;
    if (r === false || this.retryTimer || !this.started) return;
    const min = r?.minDelayMs ?? 1000;
    const max = r?.maxDelayMs ?? 30_000;
    this.retryDelayMs = this.retryDelayMs === 0 ? min : Math.min(max, this.retryDelayMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.started || this.connections.size > 0) return;
      this.connect().then(
        ({ socket, remote }) => {
          if (!this.started || this.connections.size > 0) {
            socket.destroy();
            return;
          }
          this.connections.add(socket, remote, true);
          this.changed(true);
        },
        () => this.scheduleReconnect(),
      );
    }, this.retryDelayMs);
  }

  private connect(): Promise<{ socket: StreamSocket; remote: { address: string; port: number } }> {
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new this.Ctor(this.url, [SIP_SUBPROTOCOL]);
      } catch (e) {
        reject(e);
        return;
      }
      ws.binaryType = 'arraybuffer';
      this.sockets.add(ws);
      let settled = false;
      let opened = false;
      const timer = setTimeout(
        () => fail(new Error('the WebSocket handshake timed out')),
        this.options.connectTimeoutMs ?? 10_000,
      );
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.sockets.delete(ws);
        ws.close();
        reject(err);
      };
      const socket = new BrowserWsSocket(ws, () => {
        this.sockets.delete(ws);
        // Only an open connection is lost; a failed handshake is reported by fail().
        if (settled && opened) this.lost();
      });
      ws.addEventListener('error', () => fail(new Error(`cannot open ${this.url}`)));
      ws.addEventListener('close', (ev) =>
        fail(new Error(`${this.url} closed during the handshake (${ev.code ?? ''})`)),
      );
      ws.addEventListener('open', () => {
        if (settled) return;
        // RFC 7118 §4: without the "sip" subprotocol there is no SIP session.
        if (ws.protocol !== SIP_SUBPROTOCOL) {
          fail(new Error(`the server chose subprotocol "${ws.protocol}", not "sip"`));
          return;
        }
        if (!this.started) {
          fail(new Error(`the ${this.protocol} client stopped`));
          return;
        }
        settled = true;
        opened = true;
        clearTimeout(timer);
        resolve({ socket, remote: this.server });
      });
    });
  }
}

/** A WHATWG WebSocket seen as the `StreamSocket` that `StreamConnections` drives. */
class BrowserWsSocket implements StreamSocket {
  private readonly ws: WebSocketLike;
  private readonly listeners: {
    data: ((chunk: Uint8Array | string) => void)[];
    close: (() => void)[];
    error: ((error: Error) => void)[];
  } = { data: [], close: [], error: [] };

  constructor(ws: WebSocketLike, onClosed: () => void) {
    this.ws = ws;
    ws.addEventListener('message', (ev) => {
      const d = ev.data;
      const chunk =
        typeof d === 'string'
          ? d
          : d instanceof ArrayBuffer
            ? new Uint8Array(d)
            : ArrayBuffer.isView(d)
              ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
              : undefined;
      if (chunk === undefined) return;
      for (const l of this.listeners.data) l(chunk);
    });
    ws.addEventListener('error', () => {
      for (const l of this.listeners.error) l(new Error('the WebSocket failed'));
    });
    ws.addEventListener('close', () => {
      onClosed();
      for (const l of this.listeners.close) l();
    });
  }

  /** RFC 7118 §5.1: one message per WebSocket message; text when it is valid UTF-8. */
  write(data: Uint8Array | string, callback?: (err?: Error | null) => void): boolean {
    if (this.ws.readyState !== OPEN) {
      callback?.(new Error('the WebSocket is not open'));
      return false;
    }
    try {
      this.ws.send(typeof data === 'string' ? data : (utf8Text(data) ?? data));
    } catch (e) {
      callback?.(e instanceof Error ? e : new Error(String(e)));
      return false;
    }
    callback?.(null);
    return true;
  }

  end(): void {
    this.ws.close(1000);
  }

  destroy(_error?: Error): void {
    this.ws.close(1000);
  }

  on(event: 'data', listener: (chunk: Uint8Array | string) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(
    event: 'data' | 'close' | 'error',
    listener: ((chunk: Uint8Array | string) => void) | (() => void) | ((error: Error) => void),
  ): this {
    switch (event) {
      case 'data':
        this.listeners.data.push(listener as (chunk: Uint8Array | string) => void);
        break;
      case 'close':
        this.listeners.close.push(listener as () => void);
        break;
      case 'error':
        this.listeners.error.push(listener as (error: Error) => void);
        break;
      default:
        throw new TypeError(`unknown event ${event satisfies never}`);
    }
    return this;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as a string when they are valid UTF-8, else undefined (sent as binary). */
function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A random DNS label for the `.invalid` Via host (RFC 7118 §5.2). */
function randomLabel(): string {
  const b = new Uint8Array(6);
  globalThis.crypto.getRandomValues(b);
  let s = '';
  for (const x of b) s += x.toString(36).padStart(2, '0');
  return s;
}

import {
  parseMessage,
  SipParseError,
  type SipRequest,
  type SipResponse,
  StreamFramer,
} from '@sipworks/message';
import { TransportError } from './errors.ts';
import type { Destination, Source, TransportSink } from './transport.ts';

/**
 * The socket of one connection, as `StreamConnections` needs it: a Node.js
 * `net.Socket` or `tls.TLSSocket` fits, and so does a small adapter over a WebSocket.
 */
export interface StreamSocket {
  write(data: Uint8Array | string, callback?: (err?: Error | null) => void): unknown;
  end(): unknown;
  destroy(error?: Error): unknown;
  on(event: 'data', listener: (chunk: Uint8Array | string) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export interface StreamConnectionsOptions {
  /** The transport's protocol name (`TCP`, `TLS`, `WS`...), used in connection ids. */
  protocol: string;
  /**
   * `stream` (TCP, TLS): bytes are framed by Content-Length (RFC 3261 §18.3).
   * `message` (WebSocket, RFC 7118 §5): each chunk is one whole message.
   */
  framing?: 'stream' | 'message';
  /** The largest header section accepted (default 65,536 bytes). */
  maxHeaderBytes?: number;
  /** The largest body accepted (default 1 MiB). */
  maxBodyBytes?: number;
  /** Close a connection idle for this long (ms; default 300,000; 0 never). */
  idleTimeoutMs?: number;
  /** Send a CRLFCRLF ping (RFC 5626 §4.4.1) on connections we opened, this often (ms; default 0: never). */
  keepAliveIntervalMs?: number;
  /**
   * Close a connection that sent no whole message this long after it was accepted (ms;
   * default 30,000; 0 never): one that sends nothing, and one that trickles bytes.
   */
  firstMessageTimeoutMs?: number;
  /**
   * Close a connection holding part of a message this long after its first byte came (ms;
   * default 30,000; 0 never): a peer that trickles a message, or sends headers without
   * end, cannot hold the connection open by sending a byte now and then.
   */
  messageTimeoutMs?: number;
  /** The port a Via sent-by without a port means (RFC 5923 aliases; default 5060, 5061 for TLS). */
  defaultPort?: number;
}

/** One connection: its id, remote address, and socket. */
export interface StreamConnection {
  readonly id: string;
  readonly remote: { address: string; port: number };
  readonly outbound: boolean;
  readonly socket: StreamSocket;
  lastActivity: number;
  /** When the connection was accepted or opened (ms since the epoch). */
  readonly openedAt?: number;
  /** Since when part of a message is buffered (stream framing), if any. */
  partialSince?: number | undefined;
  messages: number;
  /** Other addresses this connection serves (RFC 5923 aliases). */
  aliases?: string[];
}

const CRLF = '\r\n';
const CRLFCRLF = '\r\n\r\n';

/**
 * What every connection-oriented transport needs, written once: a table of connections
 * reused in both directions (looked up by id or by remote address), framing with
 * limits, CRLF keep-alives (RFC 5626 §4.4.1), idle and first-message timeouts, and
 * reporting received messages and lost connections to the stack's sink. A TCP, TLS or
 * WebSocket transport only opens and accepts sockets.
 */
export class StreamConnections {
  private readonly defaultPort: number;
  private readonly opts: Required<
    Omit<StreamConnectionsOptions, 'protocol' | 'framing' | 'defaultPort'>
  > & {
    protocol: string;
    framing: 'stream' | 'message';
  };
  private readonly byId = new Map<string, StreamConnection>();
  private readonly byRemote = new Map<string, StreamConnection>();
  private readonly pending = new Map<string, Promise<StreamConnection>>();
  private sink: TransportSink | undefined;
  private sweep: ReturnType<typeof setInterval> | undefined;
  private pings: ReturnType<typeof setInterval> | undefined;
  private counter = 0;
  private closed = false;

  constructor(options: StreamConnectionsOptions) {
    this.defaultPort = options.defaultPort ?? (options.protocol === 'TLS' ? 5061 : 5060);
    this.opts = {
      protocol: options.protocol,
      framing: options.framing ?? 'stream',
      maxHeaderBytes: options.maxHeaderBytes ?? 65536,
      maxBodyBytes: options.maxBodyBytes ?? 1 << 20,
      idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
      keepAliveIntervalMs: options.keepAliveIntervalMs ?? 0,
      firstMessageTimeoutMs: options.firstMessageTimeoutMs ?? 30_000,
      messageTimeoutMs: options.messageTimeoutMs ?? 30_000,
    };
  }

  /** Start reporting to `sink`, and start the idle sweep and keep-alive timers. */
  start(sink: TransportSink): void {
    this.sink = sink;
    this.closed = false;
    const { idleTimeoutMs, firstMessageTimeoutMs, messageTimeoutMs, keepAliveIntervalMs } =
      this.opts;
    const every = Math.min(
      ...[idleTimeoutMs, firstMessageTimeoutMs, messageTimeoutMs].filter((x) => x > 0),
      60_000,
    );
    this.sweep = setInterval(() => this.sweepIdle(), Math.max(50, Math.floor(every / 4)));
    unref(this.sweep);
    if (keepAliveIntervalMs > 0) {
      this.pings = setInterval(() => {
        for (const c of this.byId.values()) if (c.outbound) c.socket.write(CRLFCRLF);
      }, keepAliveIntervalMs);
      unref(this.pings);
    }
  }

  /** Connections open now. */
  get size(): number {
    return this.byId.size;
  }

  get connections(): IterableIterator<StreamConnection> {
    return this.byId.values();
  }

  /** Register a socket (accepted or opened) and wire its events. */
  add(
    socket: StreamSocket,
    remote: { address: string; port: number },
    outbound: boolean,
  ): StreamConnection {
    const id = `${this.opts.protocol}-${++this.counter}`;
    const now = Date.now();
    const conn: StreamConnection = {
      id,
      remote,
      outbound,
      socket,
      lastActivity: now,
      openedAt: now,
      messages: 0,
    };
    this.byId.set(id, conn);
    this.byRemote.set(key(remote.address, remote.port), conn);
    const framer =
      this.opts.framing === 'stream'
        ? new StreamFramer({
            maxHeaderBytes: this.opts.maxHeaderBytes,
            maxBodyBytes: this.opts.maxBodyBytes,
          })
        : undefined;
    const source: Source = { address: remote.address, port: remote.port, connectionId: id };
    socket.on('data', (chunk) => {
      conn.lastActivity = Date.now();
      try {
        if (framer)
          this.onBytes(
            conn,
            framer,
            typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk,
            source,
          );
        else this.onMessage(conn, chunk, source);
      } catch (e) {
        // A framing error: the stream cannot be resynchronised (RFC 3261 §18.3).
        this.drop(conn, e instanceof Error ? e : new Error(String(e)));
      }
    });
    socket.on('error', (err) => this.drop(conn, err));
    socket.on('close', () => this.forget(conn));
    return conn;
  }

  private onBytes(
    conn: StreamConnection,
    framer: StreamFramer,
    chunk: Uint8Array,
    source: Source,
  ): void {
    let completed = false;
    for (const item of framer.push(chunk)) {
      if (item.type === 'ping') conn.socket.write(CRLF);
      else if (item.type === 'pong') this.sink?.pong?.(conn.id);
      else if (item.type === 'message') {
        completed = true;
        conn.messages++;
        this.alias(conn, item.message);
        this.sink?.receive(item.message, source, item.bytes);
      }
    }
    // The clock of messageTimeoutMs runs from the first byte of the message now buffered.
    if (framer.buffered === 0) conn.partialSince = undefined;
    else if (completed || conn.partialSince === undefined) conn.partialSince = Date.now();
  }

  private onMessage(conn: StreamConnection, chunk: Uint8Array | string, source: Source): void {
    const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
    if (bytes.length === 0) return;
    if (bytes.length <= 4 && bytes.every((b) => b === 13 || b === 10)) {
      if (bytes.length === 4) conn.socket.write(CRLF);
      else if (bytes.length === 2) this.sink?.pong?.(conn.id);
      return;
    }
    if (bytes.length > this.opts.maxHeaderBytes + this.opts.maxBodyBytes)
      throw new SipParseError('SIP_ERR_PARSE_TOO_LARGE', 'message too large', 0, 513);
    try {
      const message = parseMessage(bytes, {
        maxHeaderBytes: this.opts.maxHeaderBytes,
        maxBodyBytes: this.opts.maxBodyBytes,
      });
      conn.messages++;
      this.alias(conn, message);
      this.sink?.receive(message, source, bytes);
    } catch (e) {
      // One bad message on a message-framed connection does not break the next ones:
      // hand the bytes to the stack, which answers or drops them.
      if (e instanceof SipParseError) this.sink?.receive(bytes, source);
      else throw e;
    }
  }

  /**
   * RFC 5923 §5: a request whose top Via carries `;alias` lets requests to its sent-by
   * reuse this connection (the peer listens there, but connected from another port).
   */
  private alias(conn: StreamConnection, message: SipRequest | SipResponse): void {
    if (!message.isRequest) return;
    try {
      const via = message.via[0];
      if (!via?.params.has('alias')) return;
      const host = via.host.startsWith('[') ? via.host.slice(1, -1) : via.host;
      // Only an alias for the address the connection really comes from.
      if (host !== conn.remote.address) return;
      const k = key(host, via.port ?? this.defaultPort);
      if (this.byRemote.has(k)) return;
      this.byRemote.set(k, conn);
      (conn.aliases ??= []).push(k);
    } catch {
      // A bad Via is the stack's to answer.
    }
  }

  /** The connection for a destination: the one named, else one open to its address. */
  find(destination: Destination): StreamConnection | undefined {
    if (destination.connectionId !== undefined) {
      const c = this.byId.get(destination.connectionId);
      if (c) return c;
    }
    return this.byRemote.get(key(destination.address, destination.port));
  }

  /**
   * Send on the destination's connection, opening one with `connect` when there is
   * none (concurrent sends to one destination share the connect). Resolves with the
   * connection id.
   */
  async send(
    data: Uint8Array,
    destination: Destination,
    connect: (
      destination: Destination,
    ) => Promise<{ socket: StreamSocket; remote: { address: string; port: number } }>,
  ): Promise<string> {
    if (this.closed) throw new TransportError(`${this.opts.protocol} transport is stopped`);
    let conn = this.find(destination);
    if (!conn) {
      const k = key(destination.address, destination.port);
      let p = this.pending.get(k);
      if (!p) {
        p = connect(destination).then(
          ({ socket, remote }) => this.add(socket, remote, true),
          (e: unknown) => {
            throw new TransportError(
              `cannot connect to ${destination.address}:${destination.port} (${this.opts.protocol}): ${(e as Error)?.message ?? e}`,
              { cause: e },
            );
          },
        );
        this.pending.set(k, p);
        p.finally(() => this.pending.delete(k)).catch(() => {});
      }
      conn = await p;
    }
    const c = conn;
    await new Promise<void>((resolve, reject) => {
      c.socket.write(data, (err) => {
        if (err)
          reject(new TransportError(`write to ${c.id} failed: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
    c.lastActivity = Date.now();
    return c.id;
  }

  /** Close the connection with this id, reporting it as lost; false when there is none. */
  close(connectionId: string, error?: Error): boolean {
    const c = this.byId.get(connectionId);
    if (!c) return false;
    this.drop(c, error);
    return true;
  }

  /** Close one connection, reporting it as lost. */
  drop(conn: StreamConnection, error?: Error): void {
    if (!this.byId.has(conn.id)) return;
    conn.socket.destroy();
    this.forget(conn, error);
  }

  private forget(conn: StreamConnection, error?: Error): void {
    if (this.byId.get(conn.id) !== conn) return;
    this.byId.delete(conn.id);
    const k = key(conn.remote.address, conn.remote.port);
    if (this.byRemote.get(k) === conn) this.byRemote.delete(k);
    for (const a of conn.aliases ?? []) if (this.byRemote.get(a) === conn) this.byRemote.delete(a);
    this.sink?.connectionClosed(conn.id, error);
  }

  private sweepIdle(): void {
    const now = Date.now();
    const { idleTimeoutMs, firstMessageTimeoutMs, messageTimeoutMs } = this.opts;
    for (const c of [...this.byId.values()]) {
      if (idleTimeoutMs > 0 && now - c.lastActivity > idleTimeoutMs)
        this.drop(c, new TransportError(`${c.id} idle`));
      else if (
        !c.outbound &&
        c.messages === 0 &&
        firstMessageTimeoutMs > 0 &&
        // From the accept, not the last byte: a peer trickling bytes must not hold it open.
        now - (c.openedAt ?? c.lastActivity) > firstMessageTimeoutMs
      )
        this.drop(c, new TransportError(`${c.id} sent no message in time`));
      else if (
        messageTimeoutMs > 0 &&
        c.partialSince !== undefined &&
        now - c.partialSince > messageTimeoutMs
      )
        this.drop(c, new TransportError(`${c.id} did not finish a message in time`));
    }
  }

  /** Close every connection and stop the timers. */
  closeAll(): void {
    this.closed = true;
    if (this.sweep) clearInterval(this.sweep);
    if (this.pings) clearInterval(this.pings);
    this.sweep = undefined;
    this.pings = undefined;
    for (const c of [...this.byId.values()]) {
      c.socket.destroy();
      this.forget(c);
    }
  }
}

function key(address: string, port: number): string {
  return `${address.toLowerCase()}|${port}`;
}

function unref(t: unknown): void {
  (t as { unref?: () => void }).unref?.();
}

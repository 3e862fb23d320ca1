import fs from 'node:fs';
import net from 'node:net';
import { StreamFramer } from '@sipworks/message';
import {
  type Destination,
  type Source,
  type Transport,
  type TransportAddress,
  TransportError,
  type TransportSink,
} from '@sipworks/stack';

export interface UnixSocketTransportOptions {
  /** The path of the socket this transport listens on. */
  path: string;
  /**
   * What Via sent-by says (default `localhost`). A socket path cannot be a Via host, and
   * a peer on a UNIX-domain socket is always on this host.
   */
  host?: string;
  /** The largest header section accepted on a connection (default 65,536 bytes). */
  maxHeaderBytes?: number;
  /** The largest body accepted on a connection (default 1 MiB). */
  maxBodyBytes?: number;
}

/** One connection: accepted on our socket, or opened to a peer's socket path. */
interface Connection {
  readonly id: string;
  readonly socket: net.Socket;
  /** The peer's socket path, for connections we opened (the key they are reused by). */
  readonly path: string | undefined;
}

/** Where every message received on a UNIX-domain socket comes from: this host. */
const PEER_HOST = 'localhost';
const CRLF = '\r\n';

/**
 * SIP over UNIX-domain stream sockets, for processes on one host (a SIP front end and
 * its application servers...). A complete transport written against the `Transport`
 * contract of `@sipworks/stack` and the `StreamFramer` of `@sipworks/message`, and
 * nothing else.
 *
 * Addressing: a destination's `address` is the peer's socket path (its `port` is
 * ignored, use 0); `stack.sendRequest(req, handler, { destination: { address: path,
 * port: 0, protocol: 'UNIX' } })`. Messages received are reported as coming from
 * `localhost`, port 0, on the connection they arrived on; responses go back on it.
 */
export class UnixSocketTransport implements Transport {
  readonly protocol = 'UNIX';
  readonly reliable = true;
  readonly secure = false;
  readonly advertised: { host: string; port: number };
  readonly path: string;
  private readonly maxHeaderBytes: number;
  private readonly maxBodyBytes: number;
  private server: net.Server | undefined;
  private sink: TransportSink | undefined;
  private readonly byId = new Map<string, Connection>();
  private readonly byPath = new Map<string, Connection>();
  private readonly connecting = new Map<string, Promise<Connection>>();
  private counter = 0;

  constructor(options: UnixSocketTransportOptions) {
    this.path = options.path;
    this.advertised = { host: options.host ?? PEER_HOST, port: 0 };
    this.maxHeaderBytes = options.maxHeaderBytes ?? 65536;
    this.maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  }

  /** The socket path, as the stack's `local` address (there is no port: 0). */
  get local(): TransportAddress {
    return { address: this.path, port: 0, family: 'IPv4' };
  }

  /** Connections open now, in both directions. */
  get connectionCount(): number {
    return this.byId.size;
  }

  async start(sink: TransportSink): Promise<void> {
    if (this.server) return;
    this.sink = sink;
    await removeStaleSocket(this.path);
    const server = net.createServer((socket) => this.attach(socket, undefined));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => sink.error(err));
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const c of [...this.byId.values()]) this.close(c);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(this.path, { force: true });
  }

  /**
   * Send on the connection named in the destination, else on one open to its socket
   * path, else on a new one (concurrent sends to one path share the connect).
   */
  async send(data: Uint8Array, destination: Destination): Promise<string | undefined> {
    if (!this.server) throw new TransportError('the UNIX transport is not started');
    const conn =
      (destination.connectionId !== undefined
        ? this.byId.get(destination.connectionId)
        : undefined) ??
      this.byPath.get(destination.address) ??
      (await this.connect(destination.address));
    await new Promise<void>((resolve, reject) => {
      conn.socket.write(data, (err) => {
        if (err)
          reject(new TransportError(`write to ${conn.id} failed: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
    return conn.id;
  }

  private connect(path: string): Promise<Connection> {
    const pending = this.connecting.get(path);
    if (pending) return pending;
    const p = new Promise<Connection>((resolve, reject) => {
      const socket = net.connect({ path });
      const onError = (err: Error): void =>
        reject(
          new TransportError(`cannot connect to ${path} (UNIX): ${err.message}`, { cause: err }),
        );
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(this.attach(socket, path));
      });
    });
    this.connecting.set(path, p);
    p.finally(() => this.connecting.delete(path)).catch(() => {});
    return p;
  }

  /**
   * Register a connection and frame its bytes (RFC 3261 §18.3): each whole message goes
   * to the stack with its bytes; a CRLFCRLF ping is answered with CRLF (RFC 5626 §4.4.1);
   * a framing error closes the connection, whose stream can no longer be trusted.
   */
  private attach(socket: net.Socket, path: string | undefined): Connection {
    const conn: Connection = { id: `UNIX-${++this.counter}`, socket, path };
    this.byId.set(conn.id, conn);
    if (path !== undefined) this.byPath.set(path, conn);
    const framer = new StreamFramer({
      maxHeaderBytes: this.maxHeaderBytes,
      maxBodyBytes: this.maxBodyBytes,
    });
    const source: Source = { address: PEER_HOST, port: 0, connectionId: conn.id };
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const item of framer.push(chunk)) {
          if (item.type === 'ping') socket.write(CRLF);
          else if (item.type === 'message') this.sink?.receive(item.message, source, item.bytes);
        }
      } catch (e) {
        this.close(conn, e instanceof Error ? e : new Error(String(e)));
      }
    });
    socket.on('error', (err) => this.close(conn, err));
    socket.on('close', () => this.close(conn));
    return conn;
  }

  /** Forget a connection, destroy its socket, and tell the stack (once). */
  private close(conn: Connection, error?: Error): void {
    if (this.byId.get(conn.id) !== conn) return;
    this.byId.delete(conn.id);
    if (conn.path !== undefined && this.byPath.get(conn.path) === conn)
      this.byPath.delete(conn.path);
    conn.socket.destroy();
    this.sink?.connectionClosed(conn.id, error);
  }
}

/**
 * A socket file left by a process that died keeps `listen` from binding. Remove it when
 * nothing accepts on it; refuse when something does, or when the path is not a socket.
 */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = fs.lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isSocket()) throw new TransportError(`${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new TransportError(`${path} is in use by another process`);
  fs.rmSync(path, { force: true });
}

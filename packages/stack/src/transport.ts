import type { SipRequest, SipResponse } from '@sipworks/message';

/** An address and port as a transport binds or sees them. */
export interface TransportAddress {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** The address a bound socket or server reports (`socket.address()`), as a `TransportAddress`. */
export function boundAddress(a: {
  address: string;
  port: number;
  family: string;
}): TransportAddress {
  return { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
}

/** Where a received message came from. */
export interface Source {
  address: string;
  port: number;
  /**
   * For connection-oriented transports: the connection the message arrived on, as the
   * transport names it. Responses go back on it (RFC 3261 §18.2.2).
   */
  connectionId?: string | undefined;
}

/** Where to send a message. */
export interface Destination {
  address: string;
  port: number;
  /** Use this connection (connection-oriented transports), if it is still open. */
  connectionId?: string | undefined;
  /** The domain the certificate must match, and the SNI name (TLS, RFC 5922). */
  serverName?: string | undefined;
}

/**
 * What a transport hands received data and events to. The stack implements it; a
 * transport gets one in `start()`.
 */
export interface TransportSink {
  /**
   * Data arrived. A datagram transport passes each datagram's bytes; a stream transport
   * frames the stream (with `StreamFramer` from `@sipworks/message`) and passes each
   * message, parsed, with its bytes.
   */
  receive(data: Uint8Array | SipRequest | SipResponse, source: Source, bytes?: Uint8Array): void;
  /** A connection closed or failed; transactions using it fail at once. */
  connectionClosed(connectionId: string, error?: Error): void;
  /**
   * A lone CRLF arrived on a connection: the pong answering a CRLFCRLF keep-alive ping
   * (RFC 5626 §4.4.1). Stream transports that frame with `StreamFramer` report it, so
   * that `SipStack.sendKeepAlive` can tell a live flow from a dead one.
   */
  pong?(connectionId: string): void;
  /** An error not tied to one send (the socket failed...). */
  error(error: Error): void;
}

/**
 * The contract a transport implements — the one thing a transport author needs. The
 * stack owns transports once they are added (`SipStack.addTransport`): it starts them
 * (`start`) with a sink, sends through them, and stops them.
 */
export interface Transport {
  /** `UDP`, `TCP`, `TLS`, `WS`, `WSS`, or a name of your own (upper case); written in Via. */
  readonly protocol: string;
  /** Whether delivery is reliable (no retransmission timers). */
  readonly reliable: boolean;
  /** Whether it protects messages (TLS, WSS): used for `sips` URIs. */
  readonly secure: boolean;
  /** The bound address, once started. */
  readonly local: TransportAddress;
  /** What this transport puts in Via sent-by and Contact (defaults to `local`); port 0 writes none. */
  readonly advertised?: { host: string; port: number } | undefined;
  /** Bind or listen, and report received data to `sink`. */
  start(sink: TransportSink): Promise<void>;
  /** Close every socket and connection; after it resolves nothing is left open. */
  stop(): Promise<void>;
  /**
   * Send one message. Rejects with a `TransportError` when it cannot be sent (no route,
   * connection refused or reset). Connection-oriented transports open a connection when
   * there is none to the destination, and reuse it for both directions. Resolves with
   * the id of the connection used, if any.
   */
  send(data: Uint8Array, destination: Destination): Promise<string | undefined>;
  /**
   * Optional, for connection-oriented transports: close one connection now and report it
   * through `sink.connectionClosed`. The stack calls it (`SipStack.closeFlow`) when a flow
   * is known to be dead (no pong to a keep-alive, RFC 5626 §4.4.1), so that the next
   * request opens a new connection instead of writing into the dead one.
   */
  closeConnection?(connectionId: string): void;
}

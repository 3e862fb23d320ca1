import { createRequest, parseMessage, type SipRequest, type SipResponse } from '@sipworks/message';
import type { ClientTransactionHandler, ClientTransactionLike } from '../src/index.ts';
import {
  type ReceivedInfo,
  type ServerTransactionLike,
  SipStack,
  type SipStackError,
  type SipStackOptions,
  type TransactionUser,
  type TransportSink,
} from '../src/index.ts';
import { MemoryNetwork, MemoryTransport, VirtualClock } from '../src/testing/index.ts';

/** A TU that records what it is given and answers with a scripted function. */
export class RecordingTU implements TransactionUser {
  readonly requests: {
    request: SipRequest;
    tx: ServerTransactionLike | undefined;
    received: ReceivedInfo;
  }[] = [];
  readonly cancels: SipRequest[] = [];
  readonly stray: SipResponse[] = [];
  answer: ((request: SipRequest, tx: ServerTransactionLike | undefined) => void) | undefined;
  onRequest(
    request: SipRequest,
    tx: ServerTransactionLike | undefined,
    received: ReceivedInfo,
  ): void {
    this.requests.push({ request, tx, received });
    this.answer?.(request, tx);
  }
  onStrayResponse(response: SipResponse): void {
    this.stray.push(response);
  }
}

/** A handler that records each callback of a client transaction. */
export class RecordingHandler implements ClientTransactionHandler {
  readonly responses: SipResponse[] = [];
  readonly errors: SipStackError[] = [];
  terminated = 0;
  onResponse(response: SipResponse, _tx: ClientTransactionLike): void {
    this.responses.push(response);
  }
  onError(error: SipStackError): void {
    this.errors.push(error);
  }
  onTerminated(): void {
    this.terminated++;
  }
  /** Final responses and errors: a transaction must end with exactly one. */
  get outcomes(): number {
    return this.responses.filter((r) => r.status >= 200).length + this.errors.length;
  }
}

/**
 * A raw peer on the memory network: records every datagram it receives (with the
 * virtual time) and sends whatever a test scripts, like a wire transcript.
 */
export class RawPeer {
  readonly received: {
    at: number;
    message: SipRequest | SipResponse;
    source: { address: string; port: number };
  }[] = [];
  readonly transport: MemoryTransport;
  readonly clock: VirtualClock;
  constructor(
    network: MemoryNetwork,
    clock: VirtualClock,
    port: number,
    protocol = 'UDP',
    reliable = false,
    address = '127.0.0.1',
  ) {
    this.clock = clock;
    this.transport = new MemoryTransport({ network, port, protocol, reliable, address });
  }
  async start(): Promise<void> {
    const sink: TransportSink = {
      receive: (data, source) => {
        const message = data instanceof Uint8Array ? parseMessage(data) : data;
        this.received.push({ at: this.clock.now(), message, source });
      },
      connectionClosed() {},
      error() {},
    };
    await this.transport.start(sink);
  }
  /** Send text (CRLF line ends added) or a message to an address. */
  send(msg: string | SipRequest | SipResponse, to: { address: string; port: number }): void {
    const bytes = typeof msg === 'string' ? new TextEncoder().encode(msg) : msg.serialize();
    void this.transport.send(bytes, to);
  }
  requests(method?: string): SipRequest[] {
    return this.received
      .map((r) => r.message)
      .filter((m): m is SipRequest => m.isRequest && (method === undefined || m.method === method));
  }
  responses(status?: number): SipResponse[] {
    return this.received
      .map((r) => r.message)
      .filter(
        (m): m is SipResponse => !m.isRequest && (status === undefined || m.status === status),
      );
  }
  times(method: string): number[] {
    return this.received
      .filter((r) => r.message.isRequest && (r.message as SipRequest).method === method)
      .map((r) => r.at);
  }
}

export interface World {
  clock: VirtualClock;
  network: MemoryNetwork;
  stack: SipStack;
  transport: MemoryTransport;
  tu: RecordingTU;
  peer: RawPeer;
  /** The stack's address. */
  address: { address: string; port: number };
}

/** One stack and one raw peer on a virtual network. */
export async function world(options?: {
  reliable?: boolean;
  stack?: SipStackOptions;
}): Promise<World> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed: 7 });
  const reliable = options?.reliable ?? false;
  const protocol = reliable ? 'TCP' : 'UDP';
  const stack = new SipStack({ clock, random: () => 0.5, ...options?.stack });
  const transport = new MemoryTransport({ network, port: 5060, protocol, reliable });
  await stack.addTransport(transport);
  await stack.start();
  const tu = new RecordingTU();
  stack.setTransactionUser(tu);
  const peer = new RawPeer(network, clock, 5070, protocol, reliable);
  await peer.start();
  return {
    clock,
    network,
    stack,
    transport,
    tu,
    peer,
    address: { address: '127.0.0.1', port: 5060 },
  };
}

let seq = 1;

/** A request to the raw peer (the stack fills in the Via). */
export function requestToPeer(
  method: string,
  extra?: { headers?: Record<string, string>; body?: string; transport?: string },
): SipRequest {
  return createRequest({
    method,
    uri: `sip:peer@127.0.0.1:5070${extra?.transport ? `;transport=${extra.transport}` : ''}`,
    from: `<sip:stack@127.0.0.1>;tag=ft${seq}`,
    to: '<sip:peer@127.0.0.1>',
    callId: `call-${seq++}@test`,
    cseq: 1,
    ...(extra?.headers ? { headers: extra.headers } : {}),
    ...(extra?.body ? { body: extra.body, contentType: 'text/plain' } : {}),
  });
}

/** The text of a response to `req`, from the raw peer. */
export function responseText(
  req: SipRequest,
  status: number,
  reason: string,
  toTag = 'peer1',
): string {
  const vias = req
    .headers('Via')
    .map((v) => `Via: ${v}\r\n`)
    .join('');
  const to = req.header('To') as string;
  return (
    `SIP/2.0 ${status} ${reason}\r\n${vias}` +
    `From: ${req.header('From')}\r\nTo: ${to.includes('tag=') || status === 100 ? to : `${to};tag=${toTag}`}\r\n` +
    `Call-ID: ${req.callId}\r\nCSeq: ${req.cseq.seq} ${req.cseq.method}\r\nContent-Length: 0\r\n\r\n`
  );
}

/** The text of a request from the raw peer to the stack. */
export function requestText(
  method: string,
  opts: {
    branch: string;
    callId: string;
    cseq?: number;
    toTag?: string;
    cseqMethod?: string;
    fromTag?: string;
    port?: number;
  },
): string {
  return (
    `${method} sip:stack@127.0.0.1:5060 SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:${opts.port ?? 5070};branch=${opts.branch}\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:peer@127.0.0.1>;tag=${opts.fromTag ?? 'pf1'}\r\n` +
    `To: <sip:stack@127.0.0.1>${opts.toTag ? `;tag=${opts.toTag}` : ''}\r\n` +
    `Call-ID: ${opts.callId}\r\n` +
    `CSeq: ${opts.cseq ?? 1} ${opts.cseqMethod ?? method}\r\n` +
    'Content-Length: 0\r\n\r\n'
  );
}

/** A `MemoryTransport` whose sink a test can reach, to report a connection's loss. */
export class ClosableMemoryTransport extends MemoryTransport {
  captured: TransportSink | undefined;
  override async start(sink: TransportSink): Promise<void> {
    this.captured = sink;
    await super.start(sink);
  }
  /** What a stream transport does when a connection closes (the Transport contract, rule 3). */
  closeConnection(id: string, error?: Error): void {
    this.captured?.connectionClosed(id, error);
  }
}

/** Let pending promise callbacks (resolution, send results) run, then run due timers. */
export async function settle(clock: VirtualClock, rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise<void>((r) => setImmediate(r));
    clock.advance(0);
  }
}

import {
  createResponse,
  MAGIC_COOKIE,
  parseMessage,
  reasonPhrase,
  SipParseError,
  type SipRequest,
  type SipResponse,
  type Uri,
  Via,
  validateMessage,
} from '@sipworks/message';
import { type Clock, systemClock, type TimerHandle } from './clock.ts';
import { SipStackError, TransportError } from './errors.ts';
import { diagnostics, type Logger, silentLogger } from './events.ts';
import { sentByHost } from './host.ts';
import { InviteClientTransaction } from './invite-client.ts';
import { InviteServerTransaction } from './invite-server.ts';
import { NonInviteClientTransaction } from './non-invite-client.ts';
import { NonInviteServerTransaction } from './non-invite-server.ts';
import {
  type DnsResolver,
  nodeDnsResolver,
  type ResolvedTarget,
  resolveTargets,
} from './resolver.ts';
import type { ServerTransactionLike } from './server-transaction.ts';
import {
  bindingRequest,
  bindingSuccess,
  isStun,
  newTransactionId,
  parseStun,
  type StunMessage,
} from './stun.ts';
import { DEFAULT_TIMERS, type TimerConfig } from './timers.ts';
import {
  type ClientTransactionHandler,
  type ClientTransactionLike,
  clientKey,
  type Flow,
  serverKey,
  type Transaction,
  type TransactionContext,
} from './transaction.ts';
import type { Destination, Source, Transport, TransportSink } from './transport.ts';

/** Where a received message came from: the transport and the remote address. */
export interface ReceivedInfo {
  transport: Transport;
  source: Source;
}

/**
 * The transaction user: the layer above the transactions (the DUM, a proxy core).
 * The stack hands it requests and stray responses; it sends through the stack.
 */
export interface TransactionUser {
  /**
   * A new request. `tx` is its server transaction; it is undefined for an ACK that
   * matched no transaction (the ACK for a 2xx, RFC 3261 §17.2.3).
   */
  onRequest(
    request: SipRequest,
    tx: ServerTransactionLike | undefined,
    received: ReceivedInfo,
  ): void;
  /**
   * A CANCEL matched an INVITE server transaction in Proceeding (§9.2). The stack has
   * answered the CANCEL with 200; the TU answers the INVITE (487). Without this
   * callback the stack sends the 487 itself.
   */
  onCancel?(invite: ServerTransactionLike, cancel: SipRequest): void;
  /** A response that matched no client transaction (a 2xx retransmitted after the transaction ended...). */
  onStrayResponse?(response: SipResponse, received: ReceivedInfo): void;
  /**
   * A connection of a stream transport closed or failed (after the transactions using it
   * were failed). A TU that keeps flows (RFC 5626 outbound registrations) recovers here.
   */
  onConnectionClosed?(transport: Transport, connectionId: string, error?: Error): void;
}

export interface SipStackOptions {
  clock?: Clock;
  timers?: Partial<TimerConfig>;
  /** DNS for RFC 3263; defaults to `node:dns`. */
  resolver?: DnsResolver;
  logger?: Logger;
  /** The most live transactions; past it, new requests get 503 with Retry-After (default 100,000). */
  maxTransactions?: number;
  /**
   * The most live server transactions one source address may hold (a flood from one
   * scanner or broken phone); past it, its new requests get 503 with Retry-After while
   * other sources are still served. Default: no per-source limit.
   */
  maxTransactionsPerSource?: number;
  /** Retry-After seconds on overload (default 5). */
  retryAfter?: number;
  /** Add `;rport` to the Via of requests sent over unreliable transports (RFC 3581; default true). */
  rport?: boolean;
  /** Random numbers in [0,1), for SRV weights and branch prefixes. */
  random?: () => number;
  /** Add `;alias` to the Via of requests sent over TCP and TLS, so the peer reuses the connection (RFC 5923; default true). */
  alias?: boolean;
  /**
   * Answer STUN Binding requests arriving on datagram transports, as a SIP server that
   * supports outbound does on its SIP port (RFC 5626 §8; default true). STUN responses
   * are always taken, for `sendKeepAlive`.
   */
  stunServer?: boolean;
}

export interface SendOptions {
  /** Send to this address instead of resolving the Request-URI or Route (an outbound proxy already resolved). */
  destination?: { address: string; port: number; protocol?: string; connectionId?: string };
  /** Resolve this URI instead of the Route or Request-URI (an outbound proxy). */
  nextHop?: Uri;
}

/** What `sendRequest` returns: the current client transaction, across RFC 3263 failover. */
export interface ClientRequest {
  /** The transaction now carrying the request; changes when the stack fails over. */
  readonly transaction: ClientTransactionLike | undefined;
  /** The request as sent (with its Via). */
  readonly request: SipRequest;
}

const DEFAULT_PORT: Record<string, number> = {
  UDP: 5060,
  TCP: 5060,
  SCTP: 5060,
  TLS: 5061,
  WS: 80,
  WSS: 443,
};
const MTU_LIMIT = 1300;

function isIPv4(h: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h);
}

/**
 * The SIP stack: transports, transaction layer (RFC 3261 §17, RFC 6026) and transport
 * selection (RFC 3263). Transports are added and removed at runtime; a transaction user
 * (the DUM, or a proxy) receives requests and sends through it.
 */
export class SipStack {
  readonly clock: Clock;
  readonly timers: TimerConfig;
  readonly logger: Logger;
  private tu: TransactionUser | undefined;
  private readonly list: Transport[] = [];
  private readonly clients = new Map<
    string,
    InviteClientTransaction | NonInviteClientTransaction
  >();
  private readonly servers = new Map<
    string,
    InviteServerTransaction | NonInviteServerTransaction
  >();
  /** Requests without To tag in progress, for merged-request detection (§8.2.2.2). */
  private readonly merged = new Map<string, string>();
  private readonly maxTransactions: number;
  private readonly maxPerSource: number;
  /** Live server transactions per source address, for `maxTransactionsPerSource`. */
  private readonly perSource = new Map<string, number>();
  private readonly retryAfter: number;
  private readonly rport: boolean;
  private readonly alias: boolean;
  private readonly stunServer: boolean;
  private readonly random: () => number;
  private resolverValue: DnsResolver | undefined;
  private started = false;
  private stopped = false;
  private branchPrefix: string;
  private branchCounter = 0;
  private readonly ctx: TransactionContext;
  /** `sendKeepAlive` calls waiting for the pong of a connection. */
  private readonly pongWaiters = new Map<string, Set<(ok: boolean) => void>>();
  /** `sendKeepAlive` calls on datagram flows waiting for a STUN response, by transaction id. */
  private readonly stunWaiters = new Map<string, (mapped: StunMessage['mapped']) => void>();
  /** The reflexive address each datagram flow's last STUN response reported (RFC 5626 §4.4.2). */
  private readonly stunMapped = new Map<string, string>();
  /** The state last published per transaction, for the `from` of `sip:transaction:state`. */
  private readonly lastStates = new WeakMap<Transaction, string>();
  /** Next hops (`host:port` of a URI) reached over an existing connection: see `routeOverFlow`. */
  private readonly flowRoutes = new Map<string, Flow>();

  constructor(options: SipStackOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.timers = { ...DEFAULT_TIMERS, ...options.timers };
    this.logger = options.logger ?? silentLogger;
    this.maxTransactions = options.maxTransactions ?? 100_000;
    this.maxPerSource = options.maxTransactionsPerSource ?? Number.POSITIVE_INFINITY;
    this.retryAfter = options.retryAfter ?? 5;
    this.rport = options.rport ?? true;
    this.alias = options.alias ?? true;
    this.stunServer = options.stunServer ?? true;
    this.random = options.random ?? Math.random;
    this.resolverValue = options.resolver;
    this.branchPrefix = Math.floor(this.random() * 2 ** 40).toString(36);
    this.ctx = {
      clock: this.clock,
      timers: this.timers,
      logger: this.logger,
      send: (flow, message, bytes) => this.sendOn(flow, message, bytes),
      stateChanged: (tx, event) => this.published(tx, event),
      terminated: (tx) => this.forget(tx),
    };
  }

  // ---- setup ----

  /** Set the transaction user that receives requests. */
  setTransactionUser(tu: TransactionUser | undefined): void {
    this.tu = tu;
  }

  get transports(): readonly Transport[] {
    return this.list;
  }

  /** Add a transport; it is started now if the stack is running. */
  async addTransport(transport: Transport): Promise<void> {
    if (this.list.includes(transport)) return;
    this.list.push(transport);
    if (this.started && !this.stopped) {
      try {
        await transport.start(this.sinkFor(transport));
      } catch (e) {
        // A transport that could not start (its port is taken...) is not kept.
        this.list.splice(this.list.indexOf(transport), 1);
        throw e;
      }
    }
  }

  /** Remove a transport and stop it; transactions using it fail with a transport error. */
  async removeTransport(transport: Transport): Promise<void> {
    const i = this.list.indexOf(transport);
    if (i < 0) return;
    this.list.splice(i, 1);
    for (const tx of [...this.clients.values()]) {
      if (tx.flow.transport === transport)
        tx.transportError(new TransportError(`transport ${transport.protocol} was removed`));
    }
    await transport.stop();
  }

  /** Start every transport added so far. */
  async start(): Promise<void> {
    if (this.stopped)
      throw new SipStackError(
        'SIP_ERR_STACK_STATE',
        'a stopped stack cannot be started again',
        'user',
      );
    if (this.started) return;
    this.started = true;
    const results = await Promise.allSettled(this.list.map((t) => t.start(this.sinkFor(t))));
    const failed = results.flatMap((r, i) =>
      r.status === 'rejected' ? [[this.list[i] as Transport, r.reason] as const] : [],
    );
    if (failed.length > 0) {
      for (const [t] of failed) this.list.splice(this.list.indexOf(t), 1);
      throw (failed[0] as readonly [Transport, unknown])[1];
    }
  }

  /** End every transaction and timer, stop every transport. The process can exit afterwards. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A client transaction still waiting gets its one outcome: the stack stopped.
    for (const tx of [...this.clients.values()]) tx.shutdown();
    for (const tx of [...this.servers.values()]) tx.abort();
    this.clients.clear();
    this.servers.clear();
    this.merged.clear();
    this.perSource.clear();
    if (this.started) await Promise.allSettled(this.list.map((t) => t.stop()));
  }

  get running(): boolean {
    return this.started && !this.stopped;
  }

  /** Live transactions (client, server). */
  get transactionCount(): { client: number; server: number } {
    return { client: this.clients.size, server: this.servers.size };
  }

  private get resolver(): DnsResolver {
    return (this.resolverValue ??= nodeDnsResolver());
  }

  /** A new RFC 3261 branch (with the magic cookie), unique in this stack. */
  newBranch(): string {
    return `${MAGIC_COOKIE}${this.branchPrefix}.${(this.branchCounter++).toString(36)}`;
  }

  // ---- sending ----

  /**
   * Send a request in a new client transaction (an ACK is sent without one). The stack
   * picks the transport and destination (RFC 3263, with failover to the next target
   * on transport error, timeout or 503), fills in the top Via, and reports responses
   * and failures to `handler`.
   */
  sendRequest(
    request: SipRequest,
    handler: ClientTransactionHandler,
    options?: SendOptions,
  ): ClientRequest {
    this.assertRunning();
    const state: { transaction: ClientTransactionLike | undefined; request: SipRequest } = {
      transaction: undefined,
      request,
    };
    if (request.method === 'ACK') {
      this.sendStateless(request, options).catch((e: unknown) =>
        this.logger.warn({ err: e }, 'ACK could not be sent'),
      );
      return state;
    }
    const attempt = (targets: ResolvedTarget[], index: number): void => {
      const target = targets[index] as ResolvedTarget;
      // Each target gets its own copy of the request, so an earlier transaction keeps its own.
      const req = index === 0 ? request : request.clone();
      let flow: Flow;
      try {
        flow = this.flowFor(target, req);
      } catch (e) {
        if (index + 1 < targets.length) attempt(targets, index + 1);
        else handler.onError?.(e as SipStackError, placeholder(req));
        return;
      }
      this.prepareVia(req, flow, index > 0);
      state.request = req;
      const retryable = index + 1 < targets.length;
      // The handler hears the end only of the transaction whose outcome it got.
      let delivered = false;
      const wrapped: ClientTransactionHandler = retryable
        ? {
            onResponse: (res, tx) => {
              if (res.status === 503 && !delivered) {
                // RFC 3263 §4.3: a 503 means try the next target; this transaction ends on its own.
                attempt(targets, index + 1);
                return;
              }
              if (res.status >= 200) delivered = true;
              handler.onResponse(res, tx);
            },
            onError: (err) => {
              this.logger.debug({ target, err: err.message }, 'failing over to the next target');
              attempt(targets, index + 1);
            },
            onTerminated: (tx) => {
              if (delivered) handler.onTerminated?.(tx);
            },
          }
        : handler;
      state.transaction = this.startClient(req, flow, wrapped);
    };
    const direct = this.directTargets(request, options);
    if (direct !== undefined) {
      if (direct.length === 0)
        throw new SipStackError('SIP_ERR_NO_TRANSPORT', `no transport for ${request.uri}`, 'user');
      attempt(direct, 0);
      return state;
    }
    const uri = options?.nextHop ?? this.nextHopUri(request);
    resolveTargets(uri, {
      resolver: this.resolver,
      available: this.list.map((t) => t.protocol),
      random: this.random,
    }).then(
      (targets) => {
        if (this.stopped) return;
        // Reported through the handler: a throw here would be an unhandled rejection.
        if (targets.length === 0)
          handler.onError?.(
            new SipStackError('SIP_ERR_RESOLVE', `no target for ${uri}`),
            placeholder(request),
          );
        else attempt(targets, 0);
      },
      (e: unknown) => {
        const err =
          e instanceof SipStackError
            ? e
            : new SipStackError('SIP_ERR_RESOLVE', String((e as Error)?.message ?? e), 'local', {
                cause: e,
              });
        handler.onError?.(err, placeholder(request));
      },
    );
    return state;
  }

  /**
   * Send requests whose next hop is `uri`'s host and port over `flow` (a connection that
   * came to us) for as long as its connection is open: RFC 5626 §5.3, where a registrar
   * reaches a UA that registered with outbound through the flow its REGISTER came on. A
   * WebSocket client (RFC 7118 §5) names itself with an unresolvable `.invalid` host and
   * can be reached no other way. Returns the function that removes the route.
   */
  routeOverFlow(uri: Uri, flow: Flow): () => void {
    const key = flowRouteKey(uri);
    const copy: Flow = { transport: flow.transport, destination: { ...flow.destination } };
    this.flowRoutes.set(key, copy);
    return () => {
      if (this.flowRoutes.get(key) === copy) this.flowRoutes.delete(key);
    };
  }

  /**
   * CANCEL a pending INVITE (§9.1): a CANCEL with the INVITE's Request-URI, Call-ID,
   * From, To, CSeq number and top Via, sent to the same destination.
   */
  cancel(
    invite: ClientTransactionLike,
    handler: ClientTransactionHandler,
    reason?: string,
  ): ClientTransactionLike {
    const inv = invite.request;
    const top = inv.via[0];
    if (!top) throw new SipStackError('SIP_ERR_TX_STATE', 'the INVITE has no Via', 'user');
    const headers: [string, string][] = [];
    for (const r of inv.headers('Route')) headers.push(['Route', r]);
    if (reason) headers.push(['Reason', reason]);
    const cancel = createCancel(inv, headers);
    cancel.setHeader('Via', top.clone());
    // §9.1: an INVITE that gets no final response within 64*T1 of its CANCEL is over.
    const tx = this.clients.get(invite.id);
    if (tx instanceof InviteClientTransaction) tx.cancelled();
    return this.startClient(cancel, invite.flow, handler);
  }

  /** Send a request without a transaction (the ACK for a 2xx): resolved like any request, no retransmission. */
  async sendStateless(request: SipRequest, options?: SendOptions): Promise<void> {
    this.assertRunning();
    const direct = this.directTargets(request, options);
    const targets =
      direct ??
      (await resolveTargets(options?.nextHop ?? this.nextHopUri(request), {
        resolver: this.resolver,
        available: this.list.map((t) => t.protocol),
        random: this.random,
      }));
    const target = targets[0];
    if (!target) throw new SipStackError('SIP_ERR_NO_TRANSPORT', `no target for ${request.uri}`);
    const flow = this.flowFor(target, request);
    if (request.via.length === 0 || request.method !== 'ACK' || !request.via[0]?.branch)
      this.prepareVia(request, flow, true);
    else this.prepareVia(request, flow, false);
    await this.sendOn(flow, request);
  }

  /**
   * Send a CRLFCRLF keep-alive ping on a flow of a connection-oriented transport and wait
   * for its CRLF pong (RFC 5626 §4.4.1). Resolves true when the pong arrives within
   * `timeoutMs` (default 10,000, the RFC's limit), false when it does not, the connection
   * closes first, or the ping cannot be sent. The flow is the one a transaction used
   * (`tx.flow`): its connection id names the connection.
   *
   * On a datagram flow (UDP) the keep-alive is a STUN Binding request (RFC 5626 §4.4.2),
   * sent again at 500 ms, 1 s, 2 s... until `timeoutMs`: true when its response arrives,
   * false when none does, or when the response reports another reflexive address than
   * the flow's previous one (a NAT binding that changed: the flow has failed).
   */
  sendKeepAlive(flow: Flow, timeoutMs = 10_000): Promise<boolean> {
    const t = flow.transport;
    if (!t.reliable) return this.sendStunKeepAlive(flow, timeoutMs);
    const id = flow.destination.connectionId;
    if (!t.reliable || id === undefined || !this.list.includes(t) || !this.running)
      return Promise.resolve(false);
    const k = pongKey(t, id);
    return new Promise<boolean>((resolve) => {
      let waiters = this.pongWaiters.get(k);
      if (!waiters) this.pongWaiters.set(k, (waiters = new Set()));
      const waiter = (ok: boolean): void => {
        this.clock.clearTimeout(timer);
        const set = this.pongWaiters.get(k);
        set?.delete(waiter);
        if (set?.size === 0) this.pongWaiters.delete(k);
        resolve(ok);
      };
      waiters.add(waiter);
      const timer = this.clock.setTimeout(() => waiter(false), timeoutMs);
      t.send(CRLFCRLF, { ...flow.destination }).then(
        (used) => {
          // Sent on another connection (the old one is gone): this flow has failed.
          if (used !== undefined && used !== id) waiter(false);
        },
        () => waiter(false),
      );
    });
  }

  /**
   * Close the connection of a flow that is known to have failed (RFC 5626 §4.4.1, §4.5),
   * when its transport can (`Transport.closeConnection`): the transactions on it fail,
   * the TU hears of it, and the next request to that destination opens a new connection.
   * Returns whether a connection was closed.
   */
  closeFlow(flow: Flow): boolean {
    const id = flow.destination.connectionId;
    const t = flow.transport;
    if (id === undefined || !t.closeConnection || !this.list.includes(t)) return false;
    t.closeConnection(id);
    return true;
  }

  /** Send a response without a server transaction, routed as §18.2.2 says. */
  respondStateless(response: SipResponse, received: ReceivedInfo): void {
    const flow = this.responseFlow(response, received);
    this.sendOn(flow, response).catch((e: unknown) =>
      this.logger.warn({ err: e }, 'stateless response not sent'),
    );
  }

  private assertRunning(): void {
    if (!this.running)
      throw new SipStackError(
        'SIP_ERR_STACK_STATE',
        'the stack is not running (call start())',
        'user',
      );
  }

  private startClient(
    request: SipRequest,
    flow: Flow,
    handler: ClientTransactionHandler,
  ): ClientTransactionLike {
    const branch = request.via[0]?.branch as string;
    const key = clientKey(branch, request.method);
    const tx =
      request.method === 'INVITE'
        ? new InviteClientTransaction(key, request, flow, handler, this.ctx)
        : new NonInviteClientTransaction(key, request, flow, handler, this.ctx);
    this.clients.set(key, tx);
    tx.start();
    return tx;
  }

  /** The URI that decides the next hop: the first Route (loose routing, §16.12) or the Request-URI. */
  private nextHopUri(request: SipRequest): Uri {
    const route = request.getAll<{ uri: Uri }>('route')[0];
    return route ? route.uri : request.uri;
  }

  /** Targets known without DNS: an explicit destination, or a numeric host. */
  private directTargets(request: SipRequest, options?: SendOptions): ResolvedTarget[] | undefined {
    const d = options?.destination;
    if (d) {
      const protocol = d.protocol ?? this.list[0]?.protocol ?? 'UDP';
      return [
        {
          protocol,
          address: d.address,
          port: d.port,
          family: d.address.includes(':') ? 'IPv6' : 'IPv4',
          serverName: d.address,
        },
      ];
    }
    const uri = options?.nextHop ?? this.nextHopUri(request);
    const routed = this.flowRoutes.get(flowRouteKey(uri));
    if (routed) {
      const d = routed.destination;
      return [
        {
          protocol: routed.transport.protocol,
          address: d.address,
          port: d.port,
          family: d.address.includes(':') ? 'IPv6' : 'IPv4',
          serverName: d.address,
        },
      ];
    }
    const host = uri.params.get('maddr') ?? uri.host;
    const v6 = host.startsWith('[');
    if (!v6 && !isIPv4(host)) return undefined;
    const address = v6 ? host.slice(1, -1) : host;
    const tp = uri.params.get('transport')?.toUpperCase();
    let protocol = tp ?? (uri.isSecure ? 'TLS' : 'UDP');
    if (uri.isSecure && protocol === 'TCP') protocol = 'TLS';
    if (tp === undefined && protocol === 'UDP') {
      // §18.1.1: a request larger than 1300 bytes goes over a congestion-controlled
      // transport (whether or not the URI names a port: the rule is about the path MTU).
      if (request.serialize().length > MTU_LIMIT && this.list.some((t) => t.protocol === 'TCP'))
        protocol = 'TCP';
    }
    const port = uri.port ?? DEFAULT_PORT[protocol] ?? 5060;
    return [{ protocol, address, port, family: v6 ? 'IPv6' : 'IPv4', serverName: address }];
  }

  /** The transport for a target: same protocol and address family. */
  private flowFor(target: ResolvedTarget, _request: SipRequest): Flow {
    const t =
      this.list.find((x) => x.protocol === target.protocol && x.local.family === target.family) ??
      this.list.find((x) => x.protocol === target.protocol);
    if (!t)
      throw new SipStackError(
        'SIP_ERR_NO_TRANSPORT',
        `no ${target.protocol} transport for ${target.address}:${target.port}`,
      );
    return {
      transport: t,
      destination: { address: target.address, port: target.port, serverName: target.serverName },
    };
  }

  /** Fill in the top Via for the chosen transport (§18.1.1): sent-by, transport, branch, rport. */
  private prepareVia(request: SipRequest, flow: Flow, newBranch: boolean): void {
    const t = flow.transport;
    const sentBy = t.advertised ?? {
      host: sentByHost(t.local.address, t.local.family),
      port: t.local.port,
    };
    const old = request.via[0];
    const branch = !newBranch && old?.branch ? old.branch : this.newBranch();
    const params: [string, string | null][] = [['branch', branch]];
    if (this.rport && !t.reliable) params.push(['rport', null]);
    // RFC 5923: ask the peer to reuse this connection for requests to our sent-by.
    if (this.alias && (t.protocol === 'TCP' || t.protocol === 'TLS')) params.push(['alias', null]);
    if (old)
      for (const [k, v] of old.params) {
        const lk = k.toLowerCase();
        if (lk !== 'branch' && lk !== 'rport' && lk !== 'alias') params.push([k, v]);
      }
    // Port 0: a transport with no port of its own (a WebSocket client, RFC 7118 §5.2).
    const via = new Via(t.protocol, sentBy.host, sentBy.port || undefined, params);
    const rest = request.via.slice(1);
    request.setHeader('Via', [via, ...rest]);
  }

  /** Send bytes on a flow, publishing the message; remembers the connection used. */
  private async sendOn(
    flow: Flow,
    message: SipRequest | SipResponse | undefined,
    bytes?: Uint8Array,
  ): Promise<string | undefined> {
    const data = bytes ?? (message as SipRequest | SipResponse).serialize();
    const t = flow.transport;
    if (diagnostics.send.hasSubscribers) {
      diagnostics.send.publish({
        direction: 'send',
        // A retransmission keeps only bytes: parse them for the subscribers.
        message: message ?? parseMessage(data),
        bytes: data,
        protocol: t.protocol,
        local: { address: t.local.address, port: t.local.port },
        remote: { address: flow.destination.address, port: flow.destination.port },
        time: Date.now(),
      });
    }
    if (!this.list.includes(t))
      throw new TransportError(`transport ${t.protocol} is not part of the stack`);
    const id = await t.send(data, flow.destination);
    if (id !== undefined) flow.destination.connectionId = id;
    return id;
  }

  /** RFC 5626 §4.4.2: a STUN Binding request on a datagram flow, retransmitted as RFC 5389 §7.2.1 says. */
  private sendStunKeepAlive(flow: Flow, timeoutMs: number): Promise<boolean> {
    const t = flow.transport;
    if (!this.list.includes(t) || !this.running) return Promise.resolve(false);
    const tid = newTransactionId((b) => {
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(this.random() * 256);
    });
    const request = bindingRequest(tid);
    const flowKey = `${t.protocol}|${t.local.address}|${t.local.port}|${flow.destination.address}|${flow.destination.port}`;
    return new Promise<boolean>((resolve) => {
      let rto = 500;
      let retransmit: TimerHandle | undefined;
      const finish = (ok: boolean): void => {
        this.clock.clearTimeout(deadline);
        if (retransmit !== undefined) this.clock.clearTimeout(retransmit);
        this.stunWaiters.delete(tid);
        resolve(ok);
      };
      const send = (): void => {
        t.send(request, { ...flow.destination }).catch(() => finish(false));
        retransmit = this.clock.setTimeout(() => {
          rto *= 2;
          send();
        }, rto);
      };
      const deadline = this.clock.setTimeout(() => finish(false), timeoutMs);
      this.stunWaiters.set(tid, (mapped) => {
        const now = mapped ? `${mapped.address}:${mapped.port}` : undefined;
        const before = this.stunMapped.get(flowKey);
        if (now !== undefined) this.stunMapped.set(flowKey, now);
        finish(before === undefined || now === undefined || before === now);
      });
      send();
    });
  }

  /** A STUN message on a datagram transport: a Binding request is answered, a response goes to its keep-alive. */
  private receiveStun(transport: Transport, data: Uint8Array, source: Source): void {
    const m = parseStun(data);
    if (!m) return;
    if (m.kind === 'request') {
      if (!this.stunServer) return;
      transport
        .send(bindingSuccess(m.transactionId, source), {
          address: source.address,
          port: source.port,
        })
        .catch((e: unknown) => this.logger.debug({ err: e, source }, 'STUN response not sent'));
      return;
    }
    if (m.kind === 'success') this.stunWaiters.get(m.transactionId)?.(m.mapped);
  }

  // ---- receiving ----

  private sinkFor(transport: Transport): TransportSink {
    return {
      receive: (data, source, bytes) => {
        try {
          this.receive(transport, data, source, bytes);
        } catch (e) {
          // Nothing a peer sends may throw into the event loop.
          this.logger.error({ err: e, source }, 'error while handling a received message');
        }
      },
      connectionClosed: (id, error) => this.connectionClosed(transport, id, error),
      pong: (id) => {
        for (const w of [...(this.pongWaiters.get(pongKey(transport, id)) ?? [])]) w(true);
      },
      error: (error) =>
        this.logger.warn({ err: error, transport: transport.protocol }, 'transport error'),
    };
  }

  /** Data from a transport: parse, check, then hand to the transaction layer. */
  receive(
    transport: Transport,
    data: Uint8Array | SipRequest | SipResponse,
    source: Source,
    raw?: Uint8Array,
  ): void {
    let msg: SipRequest | SipResponse;
    let bytes: Uint8Array;
    if (data instanceof Uint8Array) {
      bytes = data;
      if (isKeepAlive(data)) return;
      if (!transport.reliable && isStun(data)) {
        this.receiveStun(transport, data, source);
        return;
      }
      try {
        msg = parseMessage(data);
      } catch (e) {
        this.rejectUnparsable(transport, data, source, e);
        return;
      }
    } else {
      msg = data;
      bytes = raw ?? data.serialize();
    }
    try {
      validateMessage(msg);
    } catch (e) {
      this.rejectInvalid(transport, msg, bytes, source, e);
      return;
    }
    if (diagnostics.receive.hasSubscribers) {
      diagnostics.receive.publish({
        direction: 'receive',
        message: msg,
        bytes,
        protocol: transport.protocol,
        local: { address: transport.local.address, port: transport.local.port },
        remote: { address: source.address, port: source.port },
        time: Date.now(),
      });
    }
    if (msg.isRequest) this.receiveRequest(msg, { transport, source });
    else this.receiveResponse(msg, { transport, source });
  }

  private drop(
    reason: string,
    transport: Transport,
    bytes: Uint8Array,
    source: Source,
    status?: number,
  ): void {
    this.logger.info({ reason, source, protocol: transport.protocol }, 'message dropped');
    if (diagnostics.drop.hasSubscribers) {
      diagnostics.drop.publish({
        reason,
        ...(status !== undefined ? { status } : {}),
        bytes,
        protocol: transport.protocol,
        remote: { address: source.address, port: source.port },
        time: Date.now(),
      });
    }
  }

  /**
   * A datagram that does not parse. A request is answered with the status its error
   * names (400, 505, 513...) when enough of it can be read; anything else is dropped.
   */
  private rejectUnparsable(
    transport: Transport,
    data: Uint8Array,
    source: Source,
    e: unknown,
  ): void {
    const err = e instanceof SipParseError ? e : undefined;
    const reason = err?.message ?? String(e);
    const isResponse = data[0] === 83 && data[1] === 73 && data[2] === 80 && data[3] === 47;
    if (err && !isResponse) {
      const salvaged = salvage(data);
      if (salvaged) {
        this.answerBad(salvaged, err.status, reason, { transport, source });
        this.drop(reason, transport, data, source, err.status);
        return;
      }
    }
    this.drop(reason, transport, data, source);
  }

  private rejectInvalid(
    transport: Transport,
    msg: SipRequest | SipResponse,
    bytes: Uint8Array,
    source: Source,
    e: unknown,
  ): void {
    const err = e instanceof SipParseError ? e : undefined;
    const reason = err?.message ?? String(e);
    if (err && msg.isRequest && msg.method !== 'ACK') {
      this.answerBad(msg, err.status, reason, { transport, source });
      this.drop(reason, transport, bytes, source, err.status);
      return;
    }
    this.drop(reason, transport, bytes, source);
  }

  /** Answer a bad request statelessly, if its Via, From, To, Call-ID and CSeq can be read. */
  private answerBad(req: SipRequest, status: number, why: string, received: ReceivedInfo): void {
    const phrase = `${reasonPhrase(status)} (${why.replace(/[\r\n]+/g, ' ').slice(0, 120)})`;
    let res: SipResponse | undefined;
    try {
      res = createResponse(req, status, phrase, { toTag: this.newBranch().slice(7) });
    } catch {
      // Some of From, To, Call-ID and CSeq are missing or broken (RFC 4475 §3.3.1): answer
      // with what can be read, as long as there is a Via to answer to.
      res = partialResponse(req, status, phrase);
    }
    if (!res) {
      // No Via can be read (RFC 4475 §3.1.2.1): answer the address the request came from,
      // echoing its Via lines as they are.
      this.answerRaw(req, status, phrase, received);
      return;
    }
    // §18.2.1: the request was never stamped with where it came from; the response's top
    // Via gets `received` (and `rport`), so it goes back to the source, not to the Via host.
    this.stampVia(res, received.source);
    this.respondStateless(res, received);
  }

  /** A response written from the request's raw header lines, sent straight back to where the request came from. */
  private answerRaw(req: SipRequest, status: number, phrase: string, received: ReceivedInfo): void {
    let text = `SIP/2.0 ${status} ${phrase}\r\n`;
    const names = req.headerNames();
    const entries = req.entries();
    for (let i = 0; i < names.length; i++) {
      const k = (names[i] as string).toLowerCase();
      if (['via', 'v', 'from', 'f', 'to', 't', 'call-id', 'i', 'cseq'].includes(k)) {
        const [name, value] = entries[i] as [string, string];
        text += `${name}: ${value}\r\n`;
      }
    }
    text += 'Content-Length: 0\r\n\r\n';
    const bytes = new TextEncoder().encode(text);
    const flow: Flow = { transport: received.transport, destination: { ...received.source } };
    let msg: SipRequest | SipResponse;
    try {
      msg = parseMessage(bytes);
    } catch {
      return;
    }
    this.sendOn(flow, msg, bytes).catch((e: unknown) =>
      this.logger.debug({ err: e }, 'raw answer not sent'),
    );
  }

  /** §18.2.1 and RFC 3581: note where the request really came from in its top Via. */
  private stampVia(msg: SipRequest | SipResponse, source: Source): void {
    const via = msg.via[0];
    if (!via) return;
    const rport = via.params.get('rport');
    const host = via.host.startsWith('[') ? via.host.slice(1, -1) : via.host;
    if (rport === null) {
      via.params.set('received', source.address);
      via.params.set('rport', String(source.port));
    } else if (host !== source.address) {
      via.params.set('received', source.address);
    }
  }

  private receiveRequest(req: SipRequest, received: ReceivedInfo): void {
    this.stampVia(req, received.source);
    const key = serverKey(req);
    const existing = this.servers.get(key);
    if (existing) {
      if (req.method === 'ACK') {
        // RFC 6026 §7.1: an ACK matching an INVITE transaction in Accepted (a peer that
        // reused the INVITE's branch for the ACK of a 2xx) is the TU's.
        if (existing.kind === 'invite-server' && existing.state === 'accepted')
          this.tu?.onRequest(req, undefined, received);
        else if (existing.kind === 'invite-server') existing.receiveAck();
      } else existing.receiveRetransmission();
      return;
    }
    if (req.method === 'ACK') {
      // The ACK for a 2xx is its own transaction: straight to the TU (§17.2.3).
      this.tu?.onRequest(req, undefined, received);
      return;
    }
    if (req.method === 'CANCEL') {
      this.receiveCancel(req, key, received);
      return;
    }
    if (this.overloaded(req, received)) return;
    // §8.2.2.2: the same request arriving by two paths (no To tag, same From tag,
    // Call-ID and CSeq, another branch) is a merged request: 482.
    let mergedKey: string | undefined;
    if (req.to.tag === undefined) {
      mergedKey = `${req.callId}|${req.from.tag ?? ''}|${req.cseq.seq}|${req.method}`;
      const other = this.merged.get(mergedKey);
      if (other !== undefined && other !== key && this.servers.has(other)) {
        this.respondStateless(
          createResponse(req, 482, undefined, { toTag: this.newBranch().slice(7) }),
          received,
        );
        return;
      }
      this.merged.set(mergedKey, key);
    }
    const flow = this.responseFlow(req, received);
    const tx =
      req.method === 'INVITE'
        ? new InviteServerTransaction(key, req, flow, this.ctx)
        : new NonInviteServerTransaction(key, req, flow, this.ctx);
    tx.mergedKey = mergedKey;
    this.holdSource(tx, received);
    this.servers.set(key, tx);
    tx.start();
    if (!this.tu) {
      tx.respond(
        createResponse(req, 503, 'No Transaction User', { toTag: this.newBranch().slice(7) }),
      );
      return;
    }
    this.tu.onRequest(req, tx, received);
  }

  /**
   * Refuse a new server transaction with 503 and Retry-After (RFC 3261 §21.5.4) when the
   * stack holds `maxTransactions`, or its source holds `maxTransactionsPerSource`: an
   * overloaded server says when to come back instead of running out of memory.
   */
  private overloaded(req: SipRequest, received: ReceivedInfo): boolean {
    let reason: string;
    if (this.clients.size + this.servers.size >= this.maxTransactions) reason = 'overload';
    else if ((this.perSource.get(received.source.address) ?? 0) >= this.maxPerSource)
      reason = `overload from ${received.source.address}`;
    else return false;
    const res = createResponse(req, 503, undefined, { toTag: this.newBranch().slice(7) });
    res.setHeader('Retry-After', this.retryAfter);
    this.respondStateless(res, received);
    this.drop(reason, received.transport, new Uint8Array(0), received.source, 503);
    return true;
  }

  /** Count a new server transaction against its source address, until it is forgotten. */
  private holdSource(tx: Transaction, received: ReceivedInfo): void {
    if (this.maxPerSource === Number.POSITIVE_INFINITY) return;
    const address = received.source.address;
    tx.sourceKey = address;
    this.perSource.set(address, (this.perSource.get(address) ?? 0) + 1);
  }

  private receiveCancel(cancel: SipRequest, key: string, received: ReceivedInfo): void {
    const invKey = `${key.slice(0, key.lastIndexOf('|') + 1)}INVITE`;
    const inv = this.servers.get(invKey);
    // A CANCEL that ends a pending INVITE lightens the load: only one matching nothing is refused.
    if (!(inv instanceof InviteServerTransaction) && this.overloaded(cancel, received)) return;
    const flow = this.responseFlow(cancel, received);
    const tx = new NonInviteServerTransaction(key, cancel, flow, this.ctx);
    this.holdSource(tx, received);
    this.servers.set(key, tx);
    tx.start();
    if (!(inv instanceof InviteServerTransaction) || inv.state !== 'proceeding') {
      // §9.2: no matching INVITE transaction (or it already has a final response).
      tx.respond(
        createResponse(cancel, inv ? 200 : 481, undefined, { toTag: this.newBranch().slice(7) }),
      );
      return;
    }
    const toTag = inv.lastToTag ?? this.newBranch().slice(7);
    tx.respond(createResponse(cancel, 200, undefined, { toTag }));
    inv.cancelled = true;
    if (this.tu?.onCancel) this.tu.onCancel(inv, cancel);
    else inv.respond(createResponse(inv.request, 487, undefined, { toTag }));
  }

  /** Where responses to a request go (§18.2.2, RFC 3581 §4). */
  private responseFlow(msg: SipRequest | SipResponse, received: ReceivedInfo): Flow {
    const via = msg.via[0];
    const t = received.transport;
    if (t.reliable || !via) {
      return {
        transport: t,
        destination: {
          address: received.source.address,
          port: received.source.port,
          connectionId: received.source.connectionId,
        },
      };
    }
    const maddr = via.maddr;
    const host = maddr ?? via.received ?? via.host;
    const rport = via.params.get('rport');
    const port = maddr
      ? (via.port ?? 5060)
      : rport
        ? Number(rport)
        : (via.port ?? DEFAULT_PORT[t.protocol] ?? 5060);
    return {
      transport: t,
      destination: { address: host.startsWith('[') ? host.slice(1, -1) : host, port },
    };
  }

  private receiveResponse(res: SipResponse, received: ReceivedInfo): void {
    const via = res.via[0];
    const branch = via?.branch;
    const tx =
      branch === undefined ? undefined : this.clients.get(clientKey(branch, res.cseq.method));
    if (tx) {
      tx.receiveResponse(res);
      return;
    }
    if (this.tu?.onStrayResponse) this.tu.onStrayResponse(res, received);
    else
      this.drop(
        'response matches no transaction',
        received.transport,
        new Uint8Array(0),
        received.source,
      );
  }

  private connectionClosed(transport: Transport, id: string, error?: Error): void {
    for (const [key, f] of [...this.flowRoutes]) {
      if (f.transport === transport && f.destination.connectionId === id)
        this.flowRoutes.delete(key);
    }
    for (const tx of [...this.clients.values()]) {
      if (tx.flow.transport === transport && tx.flow.destination.connectionId === id) {
        tx.transportError(
          new TransportError(`connection ${id} closed${error ? `: ${error.message}` : ''}`, {
            cause: error,
          }),
        );
      }
    }
    for (const tx of [...this.servers.values()]) {
      if (tx.flow.transport === transport && tx.flow.destination.connectionId === id) {
        // The response can still go over a new connection (§18.2.2); forget the old one.
        tx.flow.destination.connectionId = undefined;
      }
    }
    for (const w of [...(this.pongWaiters.get(pongKey(transport, id)) ?? [])]) w(false);
    try {
      this.tu?.onConnectionClosed?.(transport, id, error);
    } catch (e) {
      this.logger.error({ err: e }, 'the transaction user failed on a closed connection');
    }
  }

  // ---- bookkeeping ----

  private published(tx: Transaction, event: string): void {
    if (!diagnostics.transactionState.hasSubscribers) return;
    const to = tx.state;
    const from = this.lastStates.get(tx) ?? to;
    if (to === 'terminated') this.lastStates.delete(tx);
    else this.lastStates.set(tx, to);
    diagnostics.transactionState.publish({
      id: tx.id,
      kind: tx.kind,
      method: tx.request.method,
      state: to,
      from,
      to,
      event,
      time: Date.now(),
    });
  }

  private forget(tx: Transaction): void {
    if (tx.kind === 'invite-client' || tx.kind === 'non-invite-client') {
      if (this.clients.get(tx.id) === tx) this.clients.delete(tx.id);
    } else {
      if (this.servers.get(tx.id) === tx) this.servers.delete(tx.id);
      const mk = tx.mergedKey;
      if (mk !== undefined && this.merged.get(mk) === tx.id) this.merged.delete(mk);
      const source = tx.sourceKey;
      if (source !== undefined) {
        tx.sourceKey = undefined;
        const n = (this.perSource.get(source) ?? 1) - 1;
        if (n > 0) this.perSource.set(source, n);
        else this.perSource.delete(source);
      }
    }
  }
}

/** A stand-in for the TU when a request failed before any transaction existed. */
function placeholder(request: SipRequest): ClientTransactionLike {
  return {
    id: '',
    kind: request.method === 'INVITE' ? 'invite-client' : 'non-invite-client',
    request,
    state: 'terminated',
    flow: undefined as unknown as Flow,
  };
}

const CRLFCRLF = new Uint8Array([13, 10, 13, 10]);

/** The key of a connection among every transport's. */
const transportIds = new WeakMap<Transport, number>();
let transportCounter = 0;
function pongKey(t: Transport, connectionId: string): string {
  let n = transportIds.get(t);
  if (n === undefined) transportIds.set(t, (n = ++transportCounter));
  return `${n}|${connectionId}`;
}

function isKeepAlive(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 13 && b[i] !== 10) return false;
  return true;
}

/**
 * Read what a response needs (Via, From, To, Call-ID, CSeq) from a request that does not
 * parse, by parsing its header lines under a stand-in start line. Content-Length lines
 * and the body are left out: the error may be in them (RFC 4475 §3.1.2.2, §3.1.2.3,
 * §3.3.9), and an answer needs neither.
 */
function salvage(data: Uint8Array): SipRequest | undefined {
  const lines: Uint8Array[] = [new TextEncoder().encode('SALVAGE sip:invalid.invalid SIP/2.0')];
  let i = 0;
  while (i + 1 < data.length && !(data[i] === 13 && data[i + 1] === 10)) i++;
  if (i + 1 >= data.length) return undefined;
  let skipping = false;
  for (let at = i + 2; at < data.length; ) {
    let end = at;
    while (end + 1 < data.length && !(data[end] === 13 && data[end + 1] === 10)) end++;
    if (end + 1 >= data.length) end = data.length;
    if (end === at) break; // the blank line: end of the header section
    const line = data.subarray(at, end);
    const folded = line[0] === 32 || line[0] === 9;
    if (!folded)
      skipping = /^(content-length|l)[ \t]*:/i.test(new TextDecoder().decode(line.subarray(0, 20)));
    if (!skipping) lines.push(line);
    at = end + 2;
  }
  const crlf = new Uint8Array([13, 10]);
  const parts: Uint8Array[] = [];
  for (const l of lines) parts.push(l, crlf);
  parts.push(crlf);
  const copy = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    copy.set(p, o);
    o += p.length;
  }
  try {
    const m = parseMessage(copy);
    if (!m.isRequest) return undefined;
    void m.via[0]?.branch;
    void m.from.tag;
    void m.to.tag;
    void m.callId;
    void m.cseq.seq;
    return m;
  } catch {
    return undefined;
  }
}

/** A response built from whatever header lines of a bad request can be copied as text. */
function partialResponse(req: SipRequest, status: number, phrase: string): SipResponse | undefined {
  try {
    const vias = req.headers('Via');
    if (vias.length === 0 || req.via.length === 0) return undefined;
    let text = `SIP/2.0 ${status} ${phrase}\r\n`;
    for (const v of vias) text += `Via: ${v}\r\n`;
    for (const name of ['From', 'To', 'Call-ID', 'CSeq']) {
      const v = req.header(name);
      if (v !== undefined && !/[\r\n]/.test(v)) text += `${name}: ${v}\r\n`;
    }
    text += 'Content-Length: 0\r\n\r\n';
    const res = parseMessage(text);
    return res.isRequest ? undefined : res;
  } catch {
    return undefined;
  }
}

function createCancel(inv: SipRequest, headers: [string, string][]): SipRequest {
  const text =
    `CANCEL ${inv.uri} SIP/2.0\r\n` +
    `Max-Forwards: ${inv.maxForwards ?? 70}\r\n` +
    `From: ${inv.from}\r\n` +
    `To: ${inv.to}\r\n` +
    `Call-ID: ${inv.callId}\r\n` +
    `CSeq: ${inv.cseq.seq} CANCEL\r\n` +
    headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') +
    'Content-Length: 0\r\n\r\n';
  return parseMessage(text) as SipRequest;
}

export type { Destination };

/** The key of `routeOverFlow`: a URI's host (lower case) and port. */
function flowRouteKey(uri: Uri): string {
  return `${uri.host.toLowerCase()}:${uri.port ?? ''}`;
}

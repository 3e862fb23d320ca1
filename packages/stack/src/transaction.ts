import type { SipRequest, SipResponse } from '@sipworks/message';
import { MAGIC_COOKIE } from '@sipworks/message';
import type { Clock, TimerHandle } from './clock.ts';
import type { SipStackError } from './errors.ts';
import type { Logger } from './events.ts';
import type { TimerConfig } from './timers.ts';
import type { Destination, Source, Transport } from './transport.ts';

export type TransactionKind =
  | 'invite-client'
  | 'non-invite-client'
  | 'invite-server'
  | 'non-invite-server';

/** A transport and a destination: where a transaction's messages go. */
export interface Flow {
  transport: Transport;
  destination: Destination;
}

/** What transactions need from the layer that owns them. */
export interface TransactionContext {
  readonly clock: Clock;
  readonly timers: TimerConfig;
  readonly logger: Logger;
  /** Send a message on a flow; resolves with the connection used. */
  send(
    flow: Flow,
    message: SipRequest | SipResponse | undefined,
    bytes?: Uint8Array,
  ): Promise<string | undefined>;
  /** A transaction changed state (published on `sip:transaction:state`). */
  stateChanged(tx: Transaction, event: string): void;
  /** A transaction reached Terminated: forget it. */
  terminated(tx: Transaction): void;
}

/** The TU's callbacks for one client transaction. */
export interface ClientTransactionHandler {
  /**
   * Every response the TU must see: provisional responses, the final response, and
   * (INVITE, RFC 6026 Accepted state) retransmissions of 2xx.
   */
  onResponse(response: SipResponse, tx: ClientTransactionLike): void;
  /**
   * The transaction failed without a final response: Timer B or F fired, or the
   * transport failed. Called at most once, and never after a final response.
   */
  onError?(error: SipStackError, tx: ClientTransactionLike): void;
  /** The transaction ended (after its outcome). */
  onTerminated?(tx: ClientTransactionLike): void;
}

/** What the TU sees of a client transaction. */
export interface ClientTransactionLike {
  readonly id: string;
  readonly kind: 'invite-client' | 'non-invite-client';
  readonly request: SipRequest;
  readonly state: string;
  readonly flow: Flow;
}

/** The transaction-matching key of a request or response (RFC 3261 §17.1.3, §17.2.3). */
export function clientKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

/**
 * Server-side key: branch, sent-by and method (ACK matches its INVITE); for requests
 * without the magic cookie, the RFC 2543 fields (§17.2.3, RFC 4475 §3.2).
 */
export function serverKey(request: SipRequest): string {
  const via = request.via[0];
  const method = request.method === 'ACK' ? 'INVITE' : request.method;
  const branch = via?.branch;
  if (via && branch?.startsWith(MAGIC_COOKIE) && branch.length > MAGIC_COOKIE.length) {
    return `${branch}|${via.host.toLowerCase()}:${via.port ?? ''}|${method}`;
  }
  // RFC 2543: Request-URI, To tag, From tag, Call-ID, CSeq and top Via. The To tag of an
  // ACK is the one our response added, so it is left out of the key.
  const uri = request.method === 'ACK' ? '' : request.uri.toString();
  return `2543|${uri}|${request.from.tag ?? ''}|${request.callId}|${request.cseq.seq}|${via?.toString() ?? ''}|${method}`;
}

/** Base of the four state machines: identity, timers and termination. */
export abstract class Transaction {
  abstract readonly kind: TransactionKind;
  abstract get state(): string;
  readonly id: string;
  readonly request: SipRequest;
  protected readonly ctx: TransactionContext;
  /** Running timers as name, handle pairs (a Map per transaction costs more memory than a few slots). */
  private handles: (string | TimerHandle)[] | undefined;
  /** @internal the merged-request key this server transaction holds (§8.2.2.2) */
  mergedKey: string | undefined;
  /** @internal the source address this server transaction is counted against (per-source limit) */
  sourceKey: string | undefined;
  private done = false;

  constructor(id: string, request: SipRequest, ctx: TransactionContext) {
    this.id = id;
    this.request = request;
    this.ctx = ctx;
    this.mergedKey = undefined;
    this.sourceKey = undefined;
  }

  get terminated(): boolean {
    return this.done;
  }

  /** Start (or restart) a named timer. */
  protected startTimer(name: string, ms: number, fire: () => void): void {
    this.stopTimer(name);
    const h = this.ctx.clock.setTimeout(() => {
      this.removeTimer(name);
      if (!this.done) fire();
    }, ms);
    (this.handles ??= []).push(name, h);
  }

  protected stopTimer(name: string): void {
    const hs = this.handles;
    if (!hs) return;
    const i = hs.indexOf(name);
    if (i < 0) return;
    this.ctx.clock.clearTimeout(hs[i + 1]);
    hs.splice(i, 2);
  }

  private removeTimer(name: string): void {
    const hs = this.handles;
    const i = hs ? hs.indexOf(name) : -1;
    if (hs && i >= 0) hs.splice(i, 2);
  }

  /** Number of timers running (tests check none is left behind). */
  get timerCount(): number {
    return (this.handles?.length ?? 0) >> 1;
  }

  protected trace(event: string): void {
    this.ctx.stateChanged(this, event);
  }

  /** Enter Terminated: stop every timer and let the layer forget the transaction. */
  protected terminate(): void {
    if (this.done) return;
    this.done = true;
    const hs = this.handles;
    if (hs) {
      for (let i = 1; i < hs.length; i += 2) this.ctx.clock.clearTimeout(hs[i]);
      hs.length = 0;
    }
    this.ctx.terminated(this);
  }

  /** End at once (stack shutdown). */
  abstract abort(): void;
}

/** Where a server transaction's request came from. */
export interface Received {
  transport: Transport;
  source: Source;
}

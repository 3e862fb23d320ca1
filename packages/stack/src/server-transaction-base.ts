import { parseMessage, type SipRequest, type SipResponse } from '@sipworks/message';
import { asTransportError } from './client-transaction.ts';
import type { ServerTransactionHandler, ServerTransactionLike } from './server-transaction.ts';
import { type Flow, Transaction, type TransactionContext } from './transaction.ts';

/** What both server state machines share: the flow, the last response's bytes, and failures told to the TU. */
export abstract class ServerTransaction<S extends string>
  extends Transaction
  implements ServerTransactionLike
{
  abstract override readonly kind: 'invite-server' | 'non-invite-server';
  readonly flow: Flow;
  handler: ServerTransactionHandler | undefined;
  protected st: S;
  /** Only the bytes of the last response are kept, for retransmissions (a parsed message costs kilobytes). */
  private lastBytes: Uint8Array | undefined;
  /** The To tag of `lastBytes`, read from them when first asked (only a CANCEL asks). */
  private lastTag: string | undefined;
  private lastTagRead = false;

  constructor(id: string, request: SipRequest, flow: Flow, ctx: TransactionContext, initial: S) {
    super(id, request, ctx);
    this.flow = flow;
    this.handler = undefined;
    this.st = initial;
  }

  get state(): S {
    return this.st;
  }

  abstract respond(response: SipResponse): void;

  /** Whether a response was sent already. */
  protected get answered(): boolean {
    return this.lastBytes !== undefined;
  }

  /** The To tag of the last response sent, if any. */
  get lastToTag(): string | undefined {
    if (!this.lastTagRead && this.lastBytes !== undefined) {
      this.lastTagRead = true;
      try {
        this.lastTag = parseMessage(this.lastBytes).to.tag;
      } catch {
        // A response we wrote always parses; a To without a valid tag has none to give.
        this.lastTag = undefined;
      }
    }
    return this.lastTag;
  }

  protected send(response: SipResponse): void {
    this.lastBytes = response.serialize();
    this.lastTagRead = false;
    this.ctx
      .send(this.flow, response, this.lastBytes)
      .catch((e: unknown) => this.transportError(e));
  }

  /** Send the last response again. */
  protected retransmit(): void {
    if (this.lastBytes === undefined) return;
    this.ctx
      .send(this.flow, undefined, this.lastBytes)
      .catch((e: unknown) => this.transportError(e));
  }

  /** A response could not be sent (§17.2.4): tell the TU, go to Terminated. */
  transportError(e: unknown): void {
    if (this.st === 'terminated') return;
    const err = asTransportError(e, 'cannot send the response');
    this.st = 'terminated' as S;
    this.trace(err.code);
    this.handler?.onError?.(err, this);
    this.finish();
  }

  protected finish(): void {
    this.st = 'terminated' as S;
    this.terminate();
    this.handler?.onTerminated?.(this);
  }

  abort(): void {
    if (this.st === 'terminated') return;
    this.st = 'terminated' as S;
    this.terminate();
  }
}

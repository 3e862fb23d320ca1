import type { SipRequest } from '@sipworks/message';
import { SipStackError, TransportError } from './errors.ts';
import {
  type ClientTransactionHandler,
  type ClientTransactionLike,
  type Flow,
  Transaction,
  type TransactionContext,
} from './transaction.ts';

/** What both client state machines share: the flow, retransmission of the request, and one outcome for the TU. */
export abstract class ClientTransaction<S extends string>
  extends Transaction
  implements ClientTransactionLike
{
  abstract override readonly kind: 'invite-client' | 'non-invite-client';
  readonly flow: Flow;
  protected st: S;
  protected readonly handler: ClientTransactionHandler;
  private bytes: Uint8Array | undefined;
  /** A final response or an error went to the TU. */
  protected outcome = false;

  constructor(
    id: string,
    request: SipRequest,
    flow: Flow,
    handler: ClientTransactionHandler,
    ctx: TransactionContext,
    initial: S,
  ) {
    super(id, request, ctx);
    this.flow = flow;
    this.handler = handler;
    this.st = initial;
  }

  get state(): S {
    return this.st;
  }

  /** Still waiting for a final response: a transport error ends it now. */
  protected abstract get waiting(): boolean;

  /** Send (or resend) the request; a failure is a transport error. */
  protected transmit(): void {
    this.bytes ??= this.request.serialize();
    this.ctx
      .send(this.flow, this.request, this.bytes)
      .catch((e: unknown) => this.transportError(e));
  }

  /** A send failed or the connection was lost (§17.1.1.2, §17.1.2.2: inform the TU, go to Terminated). */
  transportError(e: unknown): void {
    if (!this.waiting) return;
    this.fail(asTransportError(e, `cannot send ${this.request.method}`));
  }

  protected fail(err: SipStackError): void {
    this.st = 'terminated' as S;
    this.trace(err.code);
    if (!this.outcome) {
      this.outcome = true;
      this.handler.onError?.(err, this);
    }
    this.finish();
  }

  protected finish(): void {
    this.st = 'terminated' as S;
    this.terminate();
    this.handler.onTerminated?.(this);
  }

  /** The stack stops: a transaction still waiting ends with an error for the TU; others just end. */
  shutdown(): void {
    if (this.waiting)
      this.fail(new SipStackError('SIP_ERR_STACK_STATE', 'the stack stopped', 'user'));
    else this.abort();
  }

  abort(): void {
    if (this.st === 'terminated') return;
    this.st = 'terminated' as S;
    this.terminate();
  }
}

export function asTransportError(e: unknown, what: string): TransportError {
  return e instanceof TransportError
    ? e
    : new TransportError(`${what}: ${String((e as Error)?.message ?? e)}`, { cause: e });
}

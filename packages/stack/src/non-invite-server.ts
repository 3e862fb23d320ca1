import type { SipRequest, SipResponse } from '@sipworks/message';
import { SipStackError, TransportError } from './errors.ts';
import type { ServerTransactionHandler, ServerTransactionLike } from './server-transaction.ts';
import { timeout64 } from './timers.ts';
import { type Flow, Transaction, type TransactionContext } from './transaction.ts';

export type NonInviteServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/**
 * The non-INVITE server transaction, RFC 3261 §17.2.2.
 *
 * ```
 *  state       event                   action                        next
 *  ---------   ---------------------   ---------------------------   ----------
 *  trying      request retransmitted   absorbed                      trying
 *  trying      1xx from TU             send                          proceeding
 *  proceeding  1xx from TU             send                          proceeding
 *  proceeding  request retransmitted   resend last provisional       proceeding
 *  trying/     200-699 from TU         send, Timer J (64*T1 / 0)     completed
 *   proceeding
 *  completed   request retransmitted   resend final                  completed
 *  completed   Timer J                 -                             terminated
 *  any         transport error         tell TU                       terminated
 * ```
 */
export class NonInviteServerTransaction extends Transaction implements ServerTransactionLike {
  readonly kind = 'non-invite-server' as const;
  readonly flow: Flow;
  handler: ServerTransactionHandler | undefined;
  private st: NonInviteServerState = 'trying';
  /** Only the bytes of the last response are kept, for retransmissions (a parsed message costs kilobytes). */
  private lastBytes: Uint8Array | undefined;
  private lastTag: string | undefined;

  constructor(id: string, request: SipRequest, flow: Flow, ctx: TransactionContext) {
    super(id, request, ctx);
    this.flow = flow;
  }

  get state(): NonInviteServerState {
    return this.st;
  }

  start(): void {
    this.trace('start');
  }

  /** The To tag of the last response sent, if any. */
  get lastToTag(): string | undefined {
    return this.lastTag;
  }

  respond(response: SipResponse): void {
    if (this.st !== 'trying' && this.st !== 'proceeding')
      throw new SipStackError(
        'SIP_ERR_TX_STATE',
        `cannot send ${response.status}: the ${this.request.method} transaction is ${this.st}`,
        'user',
      );
    this.lastBytes = response.serialize();
    this.lastTag = response.to.tag;
    this.transmit();
    if (response.status < 200) {
      if (this.st === 'trying') {
        this.st = 'proceeding';
        this.trace('response1xx');
      }
      return;
    }
    this.st = 'completed';
    this.trace('response200to699');
    const j = this.flow.transport.reliable ? 0 : timeout64(this.ctx.timers);
    this.startTimer('J', j, () => {
      this.trace('timerJ');
      this.finish();
    });
  }

  private transmit(): void {
    if (this.lastBytes === undefined) return;
    this.ctx
      .send(this.flow, undefined, this.lastBytes)
      .catch((e: unknown) => this.transportError(e));
  }

  receiveRetransmission(): void {
    if (this.st === 'proceeding' || this.st === 'completed') this.transmit();
  }

  transportError(e: unknown): void {
    if (this.st === 'terminated') return;
    const err =
      e instanceof TransportError
        ? e
        : new TransportError(`cannot send the response: ${String((e as Error)?.message ?? e)}`, {
            cause: e,
          });
    this.trace(err.code);
    this.handler?.onError?.(err, this);
    this.finish();
  }

  private finish(): void {
    this.st = 'terminated';
    this.terminate();
    this.handler?.onTerminated?.(this);
  }

  abort(): void {
    if (this.st === 'terminated') return;
    this.st = 'terminated';
    this.terminate();
  }
}

import type { SipRequest, SipResponse } from '@sipworks/message';
import { ClientTransaction } from './client-transaction.ts';
import { TransactionTimeoutError } from './errors.ts';
import { timeout64, timerT4 } from './timers.ts';
import type { ClientTransactionHandler, Flow, TransactionContext } from './transaction.ts';

export type NonInviteClientState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/**
 * The non-INVITE client transaction, RFC 3261 §17.1.2.
 *
 * ```
 *  state       event                    action                            next
 *  ---------   ----------------------   -------------------------------   ----------
 *  trying      Timer E (unreliable)     resend, E = min(2E, T2)           trying
 *  trying      1xx                      to TU                             proceeding
 *  proceeding  Timer E (unreliable)     resend, E = T2                    proceeding
 *  proceeding  1xx                      to TU                             proceeding
 *  trying/     Timer F (64*T1)          timeout to TU                     terminated
 *   proceeding
 *  trying/     transport error          error to TU                       terminated
 *   proceeding
 *  trying/     200-699                  to TU, Timer K (T4 / 0)           completed
 *   proceeding
 *  completed   any response             absorbed                          completed
 *  completed   Timer K                  -                                 terminated
 * ```
 */
export class NonInviteClientTransaction extends ClientTransaction<NonInviteClientState> {
  readonly kind = 'non-invite-client' as const;
  private intervalE = 0;

  constructor(
    id: string,
    request: SipRequest,
    flow: Flow,
    handler: ClientTransactionHandler,
    ctx: TransactionContext,
  ) {
    super(id, request, flow, handler, ctx, 'trying');
  }

  protected get waiting(): boolean {
    return this.st === 'trying' || this.st === 'proceeding';
  }

  /** Request from TU: send it, start Timers E and F (§17.1.2.2). */
  start(): void {
    this.transmit();
    const t = this.ctx.timers;
    if (!this.flow.transport.reliable) {
      this.intervalE = t.t1;
      this.startTimer('E', this.intervalE, () => this.timerE());
    }
    this.startTimer('F', timeout64(t), () => this.timerF());
    this.trace('start');
  }

  /** Timer E: retransmit, doubling up to T2 while Trying, every T2 while Proceeding. */
  private timerE(): void {
    if (!this.waiting) return;
    this.transmit();
    const t = this.ctx.timers;
    this.intervalE = this.st === 'trying' ? Math.min(2 * this.intervalE, t.t2) : t.t2;
    this.startTimer('E', this.intervalE, () => this.timerE());
    this.trace('timerE');
  }

  /** Timer F: no final response in 64*T1. */
  private timerF(): void {
    if (!this.waiting) return;
    this.fail(
      new TransactionTimeoutError(
        `no final response to ${this.request.method} within ${timeout64(this.ctx.timers)} ms (Timer F)`,
      ),
    );
  }

  receiveResponse(res: SipResponse): void {
    switch (this.st) {
      case 'trying':
      case 'proceeding':
        if (res.status < 200) {
          if (this.st === 'trying') {
            this.st = 'proceeding';
            this.trace('response1xx');
          }
          this.handler.onResponse(res, this);
          return;
        }
        this.st = 'completed';
        this.outcome = true;
        this.stopTimer('E');
        this.stopTimer('F');
        this.trace('response200to699');
        this.handler.onResponse(res, this);
        this.startTimer('K', timerT4(this.ctx.timers, this.flow.transport.reliable), () => {
          this.st = 'terminated';
          this.trace('timerK');
          this.finish();
        });
        return;
      case 'completed':
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }
}

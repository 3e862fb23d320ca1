import type { SipRequest, SipResponse } from '@sipworks/message';
import { SipStackError } from './errors.ts';
import { ServerTransaction } from './server-transaction-base.ts';
import { timeout64 } from './timers.ts';
import type { Flow, TransactionContext } from './transaction.ts';

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
export class NonInviteServerTransaction extends ServerTransaction<NonInviteServerState> {
  readonly kind = 'non-invite-server' as const;

  constructor(id: string, request: SipRequest, flow: Flow, ctx: TransactionContext) {
    super(id, request, flow, ctx, 'trying');
  }

  start(): void {
    this.trace('start');
  }

  respond(response: SipResponse): void {
    if (this.st !== 'trying' && this.st !== 'proceeding')
      throw new SipStackError(
        'SIP_ERR_TX_STATE',
        `cannot send ${response.status}: the ${this.request.method} transaction is ${this.st}`,
        'user',
      );
    this.send(response);
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
      this.st = 'terminated';
      this.trace('timerJ');
      this.finish();
    });
  }

  receiveRetransmission(): void {
    if (this.st === 'proceeding' || this.st === 'completed') this.retransmit();
  }
}

import { createResponse, type SipRequest, type SipResponse } from '@sipworks/message';
import { SipStackError } from './errors.ts';
import { ServerTransaction } from './server-transaction-base.ts';
import { timeout64, timerT4 } from './timers.ts';
import type { Flow, TransactionContext } from './transaction.ts';

export type InviteServerState =
  | 'proceeding'
  | 'accepted'
  | 'completed'
  | 'confirmed'
  | 'terminated';

/**
 * The INVITE server transaction: RFC 3261 §17.2.1 with the RFC 6026 Accepted state.
 *
 * ```
 *  state       event                       action                          next
 *  ---------   -------------------------   -----------------------------   ----------
 *  proceeding  TU silent for 200 ms        send 100 Trying                 proceeding
 *  proceeding  INVITE retransmitted        resend last provisional         proceeding
 *  proceeding  1xx from TU                 send                            proceeding
 *  proceeding  2xx from TU                 send, Timer L (64*T1)           accepted
 *  proceeding  300-699 from TU             send, Timers G and H            completed
 *  accepted    2xx from TU                 send (the TU retransmits)       accepted
 *  accepted    INVITE retransmitted        absorbed (RFC 6026 §7.1)        accepted
 *  accepted    Timer L                     -                               terminated
 *  completed   Timer G (unreliable)        resend, G = min(2G, T2)         completed
 *  completed   INVITE retransmitted        resend final                    completed
 *  completed   ACK                         Timer I (T4 / 0)                confirmed
 *  completed   Timer H                     tell TU (no ACK)                terminated
 *  confirmed   ACK / INVITE                absorbed                        confirmed
 *  confirmed   Timer I                     -                               terminated
 *  any         transport error             tell TU                         terminated
 * ```
 */
export class InviteServerTransaction extends ServerTransaction<InviteServerState> {
  readonly kind = 'invite-server' as const;
  private intervalG = 0;
  /** Set when a CANCEL for this INVITE was received. */
  cancelled = false;

  constructor(id: string, request: SipRequest, flow: Flow, ctx: TransactionContext) {
    super(id, request, flow, ctx, 'proceeding');
  }

  /** The INVITE arrived: start the 100 Trying timer (§17.2.1). */
  start(): void {
    this.startTimer('trying', this.ctx.timers.trying, () => {
      if (this.st !== 'proceeding' || this.answered) return;
      // A timer callback must not throw into the event loop: a request the message layer
      // cannot build a response for is logged, and left to the TU.
      let trying: SipResponse;
      try {
        trying = createResponse(this.request, 100);
      } catch (e) {
        this.ctx.logger.warn({ err: e, id: this.id }, '100 Trying could not be built');
        return;
      }
      this.respond(trying);
    });
    this.trace('start');
  }

  respond(response: SipResponse): void {
    const s = response.status;
    switch (this.st) {
      case 'proceeding':
        this.stopTimer('trying');
        this.send(response);
        if (s < 200) return;
        if (s < 300) {
          this.st = 'accepted';
          this.startTimer('L', timeout64(this.ctx.timers), () => {
            this.st = 'terminated';
            this.trace('timerL');
            this.finish();
          });
          this.trace('response2xx');
          return;
        }
        this.st = 'completed';
        if (!this.flow.transport.reliable) {
          this.intervalG = this.ctx.timers.t1;
          this.startTimer('G', this.intervalG, () => this.timerG());
        }
        this.startTimer('H', timeout64(this.ctx.timers), () => this.timerH());
        this.trace('response300to699');
        return;
      case 'accepted':
        if (s >= 200 && s < 300) {
          this.send(response);
          return;
        }
        break;
      default:
        break;
    }
    throw new SipStackError(
      'SIP_ERR_TX_STATE',
      `cannot send ${s} on an INVITE server transaction in state ${this.st}`,
      'user',
    );
  }

  /** Timer G: resend the final response, doubling up to T2. */
  private timerG(): void {
    if (this.st !== 'completed') return;
    this.retransmit();
    this.intervalG = Math.min(2 * this.intervalG, this.ctx.timers.t2);
    this.startTimer('G', this.intervalG, () => this.timerG());
    this.trace('timerG');
  }

  /** Timer H: the ACK never came. */
  private timerH(): void {
    if (this.st !== 'completed') return;
    this.st = 'terminated';
    this.trace('timerH');
    this.handler?.onAckTimeout?.(this);
    this.finish();
  }

  /** The INVITE was retransmitted (§17.2.1). */
  receiveRetransmission(): void {
    if (this.st === 'proceeding' || this.st === 'completed') this.retransmit();
  }

  /** An ACK matched this transaction. */
  receiveAck(): void {
    if (this.st !== 'completed') return;
    this.st = 'confirmed';
    this.stopTimer('G');
    this.stopTimer('H');
    this.trace('ack');
    this.startTimer('I', timerT4(this.ctx.timers, this.flow.transport.reliable), () => {
      this.st = 'terminated';
      this.trace('timerI');
      this.finish();
    });
  }
}

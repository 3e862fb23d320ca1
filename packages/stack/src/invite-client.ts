import { createRequest, type SipRequest, type SipResponse } from '@sipworks/message';
import { ClientTransaction } from './client-transaction.ts';
import { TransactionTimeoutError } from './errors.ts';
import { timeout64, timerD } from './timers.ts';
import type { ClientTransactionHandler, Flow, TransactionContext } from './transaction.ts';

export type InviteClientState = 'calling' | 'proceeding' | 'accepted' | 'completed' | 'terminated';

/**
 * The INVITE client transaction: RFC 3261 §17.1.1 with the RFC 6026 Accepted state.
 *
 * ```
 *  state       event                      action                          next
 *  ---------   ------------------------   -----------------------------   ----------
 *  calling     Timer A (unreliable)       resend INVITE, A = 2*A          calling
 *  calling     Timer B (64*T1)            timeout to TU                   terminated
 *  calling     transport error            error to TU                     terminated
 *  calling     1xx                        to TU                           proceeding
 *  proceeding  1xx                        to TU                           proceeding
 *  calling/    2xx                        to TU, Timer M (64*T1)          accepted
 *   proceeding
 *  calling/    300-699                    ACK sent, to TU, Timer D        completed
 *   proceeding
 *  accepted    2xx                        to TU (RFC 6026 §7.2)           accepted
 *  accepted    Timer M                    -                               terminated
 *  completed   300-699                    ACK resent                      completed
 *  completed   Timer D (32 s / 0)         -                               terminated
 * ```
 */
export class InviteClientTransaction extends ClientTransaction<InviteClientState> {
  readonly kind = 'invite-client' as const;
  private ack: SipRequest | undefined;
  private intervalA = 0;

  constructor(
    id: string,
    request: SipRequest,
    flow: Flow,
    handler: ClientTransactionHandler,
    ctx: TransactionContext,
  ) {
    super(id, request, flow, handler, ctx, 'calling');
  }

  protected get waiting(): boolean {
    return this.st === 'calling' || this.st === 'proceeding';
  }

  /** INVITE from TU: send it and start Timers A and B (§17.1.1.2). */
  start(): void {
    this.transmit();
    const t = this.ctx.timers;
    if (!this.flow.transport.reliable) {
      this.intervalA = t.t1;
      this.startTimer('A', this.intervalA, () => this.timerA());
    }
    this.startTimer('B', timeout64(t), () => this.timerB());
    this.trace('start');
  }

  /**
   * The TU sent a CANCEL for this INVITE: if no final response comes within 64*T1, the
   * transaction ends with a timeout (§9.1).
   */
  cancelled(): void {
    if (!this.waiting) return;
    this.startTimer('cancel', timeout64(this.ctx.timers), () => {
      if (this.waiting)
        this.fail(
          new TransactionTimeoutError('no final response within 64*T1 of the CANCEL (§9.1)'),
        );
    });
  }

  /** Timer A: retransmit with a doubled interval, while Calling. */
  private timerA(): void {
    if (this.st !== 'calling') return;
    this.transmit();
    this.intervalA *= 2;
    this.startTimer('A', this.intervalA, () => this.timerA());
    this.trace('timerA');
  }

  /** Timer B: no response at all in 64*T1. */
  private timerB(): void {
    if (this.st !== 'calling') return;
    this.fail(
      new TransactionTimeoutError(
        `no response to INVITE within ${timeout64(this.ctx.timers)} ms (Timer B)`,
      ),
    );
  }

  /** A response matched this transaction. */
  receiveResponse(res: SipResponse): void {
    const s = res.status;
    switch (this.st) {
      case 'calling':
      case 'proceeding':
        if (s < 200) {
          // calling: 1xx => Proceeding; stop retransmitting, and Timer B (the TU decides how long to ring).
          if (this.st === 'calling') {
            this.st = 'proceeding';
            this.stopTimer('A');
            this.stopTimer('B');
            this.trace('response1xx');
          }
          this.deliver(res);
        } else if (s < 300) {
          // 2xx => Accepted (RFC 6026 §8.4): the TU sends the ACK.
          this.st = 'accepted';
          this.stopTimer('A');
          this.stopTimer('B');
          this.outcome = true;
          this.startTimer('M', timeout64(this.ctx.timers), () => this.timerM());
          this.trace('response2xx');
          this.deliver(res);
        } else {
          // 300-699 => Completed: ACK it here (§17.1.1.3).
          this.st = 'completed';
          this.stopTimer('A');
          this.stopTimer('B');
          this.outcome = true;
          this.sendAck(res);
          this.startTimer('D', timerD(this.ctx.timers, this.flow.transport.reliable), () =>
            this.timerD(),
          );
          this.trace('response300to699');
          this.deliver(res);
        }
        return;
      case 'accepted':
        // RFC 6026 §7.2: retransmissions of 2xx (and 2xx from other forks) go to the TU.
        if (s >= 200 && s < 300) this.deliver(res);
        return;
      case 'completed':
        if (s >= 300) this.sendAck(res);
        return;
      case 'terminated':
        return;
      default:
        throw new Error(`invalid state ${this.st as string}`);
    }
  }

  private timerM(): void {
    this.st = 'terminated';
    this.trace('timerM');
    this.finish();
  }

  private timerD(): void {
    this.st = 'terminated';
    this.trace('timerD');
    this.finish();
  }

  /**
   * The ACK for a non-2xx final response (§17.1.1.3): Request-URI, Call-ID, From, CSeq
   * number, Route and top Via of the INVITE, To of the response.
   */
  private sendAck(res: SipResponse): void {
    if (this.ack === undefined) {
      const inv = this.request;
      const headers: [string, string][] = [];
      for (const r of inv.headers('Route')) headers.push(['Route', r]);
      const ack = createRequest({
        method: 'ACK',
        uri: inv.uri,
        from: inv.from,
        to: res.to,
        callId: inv.callId,
        cseq: inv.cseq.seq,
        maxForwards: inv.maxForwards ?? 70,
        headers,
      });
      const top = inv.via[0];
      if (top) ack.setHeader('Via', top.clone());
      this.ack = ack;
    }
    this.ctx.send(this.flow, this.ack).catch(() => {
      /* A lost ACK is answered by the retransmitted final response (§17.1.1.3). */
    });
  }

  private deliver(res: SipResponse): void {
    this.handler.onResponse(res, this);
  }
}

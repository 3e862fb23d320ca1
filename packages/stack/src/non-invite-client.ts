import type { SipRequest, SipResponse } from '@sipworks/message';
import { type SipStackError, TransactionTimeoutError, TransportError } from './errors.ts';
import { timeout64, timerT4 } from './timers.ts';
import {
  type ClientTransactionHandler,
  type ClientTransactionLike,
  type Flow,
  Transaction,
  type TransactionContext,
} from './transaction.ts';

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
export class NonInviteClientTransaction extends Transaction implements ClientTransactionLike {
  readonly kind = 'non-invite-client' as const;
  readonly flow: Flow;
  private st: NonInviteClientState = 'trying';
  private readonly handler: ClientTransactionHandler;
  private bytes: Uint8Array | undefined;
  private intervalE = 0;
  private outcome = false;

  constructor(
    id: string,
    request: SipRequest,
    flow: Flow,
    handler: ClientTransactionHandler,
    ctx: TransactionContext,
  ) {
    super(id, request, ctx);
    this.flow = flow;
    this.handler = handler;
  }

  get state(): NonInviteClientState {
    return this.st;
  }

  /** Request from TU: send it, start Timers E and F (§17.1.2.2). */
  start(): void {
    this.bytes = this.request.serialize();
    this.transmit();
    const t = this.ctx.timers;
    if (!this.flow.transport.reliable) {
      this.intervalE = t.t1;
      this.startTimer('E', this.intervalE, () => this.timerE());
    }
    this.startTimer('F', timeout64(t), () => this.timerF());
    this.trace('start');
  }

  private transmit(): void {
    this.ctx
      .send(this.flow, this.request, this.bytes)
      .catch((e: unknown) => this.transportError(e));
  }

  private timerE(): void {
    if (this.st !== 'trying' && this.st !== 'proceeding') return;
    this.transmit();
    const t = this.ctx.timers;
    this.intervalE = this.st === 'trying' ? Math.min(2 * this.intervalE, t.t2) : t.t2;
    this.startTimer('E', this.intervalE, () => this.timerE());
    this.trace('timerE');
  }

  private timerF(): void {
    if (this.st !== 'trying' && this.st !== 'proceeding') return;
    this.fail(
      new TransactionTimeoutError(
        `no final response to ${this.request.method} within ${timeout64(this.ctx.timers)} ms (Timer F)`,
      ),
    );
  }

  transportError(e: unknown): void {
    if (this.st !== 'trying' && this.st !== 'proceeding') return;
    const err =
      e instanceof TransportError
        ? e
        : new TransportError(
            `cannot send ${this.request.method}: ${String((e as Error)?.message ?? e)}`,
            { cause: e },
          );
    this.fail(err);
  }

  private fail(err: SipStackError): void {
    this.st = 'terminated';
    this.trace(err.code);
    if (!this.outcome) {
      this.outcome = true;
      this.handler.onError?.(err, this);
    }
    this.finish();
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

  private finish(): void {
    this.st = 'terminated';
    this.terminate();
    this.handler.onTerminated?.(this);
  }

  abort(): void {
    if (this.st === 'terminated') return;
    this.st = 'terminated';
    this.terminate();
  }
}

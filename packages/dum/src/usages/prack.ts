import type { RAck, SipMessage, SipResponse } from '@sipworks/message';

/** Whether a request or response lists an option tag in Supported or Require. */
export function hasOptionTag(
  msg: SipMessage,
  header: 'Supported' | 'Require',
  tag: string,
): boolean {
  try {
    return msg.getAll<string>(header).some((t) => t.toLowerCase() === tag);
  } catch {
    return false;
  }
}

/** The peer takes reliable provisional responses: 100rel in Supported or Require (RFC 3262 §3). */
export function supports100rel(msg: SipMessage): boolean {
  return hasOptionTag(msg, 'Supported', '100rel') || hasOptionTag(msg, 'Require', '100rel');
}

/** What a UAS-side `ReliableProvisionals` needs from its session. */
export interface ReliableProvisionalsHost {
  /** Hand a response to the INVITE server transaction. */
  respond(res: SipResponse): void;
  startTimer(name: string, ms: number, fire: () => void): void;
  stopTimer(name: string): void;
  readonly t1: number;
  /** 1..2^31-1, uniform (the first RSeq, RFC 3262 §3). */
  random(): number;
  /** No PRACK came for 64*T1: the INVITE is to be refused with a 5xx (RFC 3262 §3). */
  giveUp(res: SipResponse): void;
}

/**
 * The UAS side of RFC 3262 §3: reliable provisional responses to one INVITE.
 *
 * ```
 *  event                              action
 *  --------------------------------   ----------------------------------------------
 *  send(1xx), none unacknowledged     RSeq n+1, Require: 100rel, sent; retransmitted
 *                                     at T1, 2T1, 4T1 ... until its PRACK
 *  send(1xx), one unacknowledged      queued until the PRACK (§3: one at a time)
 *  final 2xx, one unacknowledged      held until every reliable 1xx is PRACKed
 *  PRACK matching RAck                retransmission stops; the next queued goes out
 *  PRACK not matching                 481 (the caller answers it)
 *  64*T1 without PRACK                giveUp: the INVITE is refused with 5xx
 * ```
 */
export class ReliableProvisionals {
  private readonly host: ReliableProvisionalsHost;
  private rseq: number;
  /** The reliable 1xx sent and not yet PRACKed. */
  private unacked: { res: SipResponse; rseq: number; interval: number } | undefined;
  /** Reliable 1xx (and at most one 2xx) waiting for the PRACK of the one before. */
  private readonly queue: (
    | { kind: '1xx'; res: SipResponse; then: (() => void) | undefined }
    | { kind: '2xx'; go: () => void }
  )[] = [];

  constructor(host: ReliableProvisionalsHost) {
    this.host = host;
    this.rseq = host.random() - 1;
    this.unacked = undefined;
  }

  /** A reliable 1xx is waiting for its PRACK (or queued behind one). */
  get busy(): boolean {
    return this.unacked !== undefined || this.queue.length > 0;
  }

  /** The RSeq of the reliable 1xx waiting for its PRACK. */
  get pendingRseq(): number | undefined {
    return this.unacked?.rseq;
  }

  /** Send a provisional response reliably (now, or after the PRACK of the one before). */
  send(res: SipResponse, then?: () => void): void {
    if (this.busy) {
      this.queue.push({ kind: '1xx', res, then });
      return;
    }
    this.transmit(res);
    then?.();
  }

  /**
   * Send the 2xx once every reliable 1xx is PRACKed (RFC 3262 §3: not before a 1xx
   * that carried a session description is acknowledged). `go` sends it.
   */
  final2xx(go: () => void): void {
    if (!this.busy) {
      go();
      return;
    }
    this.queue.push({ kind: '2xx', go });
  }

  /**
   * A PRACK: true when its RAck acknowledges the 1xx waiting (§3: RSeq and CSeq match);
   * the next queued response goes out then.
   */
  receivePrack(rack: RAck | undefined, inviteCseq: number): boolean {
    const u = this.unacked;
    if (
      !u ||
      !rack ||
      rack.rseq !== u.rseq ||
      rack.cseq !== inviteCseq ||
      rack.method.toUpperCase() !== 'INVITE'
    )
      return false;
    this.unacked = undefined;
    this.host.stopTimer('reliable-1xx');
    this.host.stopTimer('reliable-1xx-giveup');
    this.next();
    return true;
  }

  /** The INVITE got a final response: nothing more is retransmitted or queued. */
  stop(): void {
    this.unacked = undefined;
    this.queue.length = 0;
    this.host.stopTimer('reliable-1xx');
    this.host.stopTimer('reliable-1xx-giveup');
  }

  private next(): void {
    while (!this.unacked) {
      const item = this.queue.shift();
      if (!item) return;
      if (item.kind === '2xx') {
        item.go();
        continue;
      }
      this.transmit(item.res);
      item.then?.();
    }
  }

  private transmit(res: SipResponse): void {
    this.rseq = this.rseq >= 0x7fffffff ? 1 : this.rseq + 1;
    res.setHeader('RSeq', String(this.rseq));
    const require = res.headers('Require').join(', ');
    if (!/\b100rel\b/i.test(require))
      res.setHeader('Require', require ? `${require}, 100rel` : '100rel');
    const u = { res, rseq: this.rseq, interval: this.host.t1 };
    this.unacked = u;
    this.host.respond(res);
    this.host.startTimer('reliable-1xx', u.interval, () => this.retransmit(u));
    this.host.startTimer('reliable-1xx-giveup', 64 * this.host.t1, () => {
      if (this.unacked !== u) return;
      this.stop();
      this.host.giveUp(res);
    });
  }

  /** §3: the interval starts at T1 and doubles for each retransmission. */
  private retransmit(u: { res: SipResponse; rseq: number; interval: number }): void {
    if (this.unacked !== u) return;
    this.host.respond(u.res);
    u.interval *= 2;
    this.host.startTimer('reliable-1xx', u.interval, () => this.retransmit(u));
  }
}

/**
 * The UAC side of RFC 3262 §4: which reliable provisional responses to PRACK. The
 * first of each dialog (To tag) sets the sequence; each next must be one higher.
 * Retransmissions and out-of-order ones are dropped.
 */
export class ReliableProvisionalReceiver {
  private readonly last = new Map<string, number>();

  /** Whether `res` is reliable and in order: it is processed and PRACKed then. */
  accept(res: SipResponse): 'unreliable' | 'new' | 'drop' {
    if (!hasOptionTag(res, 'Require', '100rel')) return 'unreliable';
    let rseq: number | undefined;
    try {
      rseq = res.get<number>('RSeq');
    } catch {
      rseq = undefined;
    }
    const tag = res.to.tag;
    // §4: without an RSeq (or a To tag) it cannot be acknowledged; it is dropped.
    if (rseq === undefined || tag === undefined) return 'drop';
    const last = this.last.get(tag);
    if (last !== undefined && rseq !== last + 1) return 'drop';
    this.last.set(tag, rseq);
    return 'new';
  }
}

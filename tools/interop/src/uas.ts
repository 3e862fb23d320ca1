import { createResponse, type SipRequest, type SipResponse } from '@sipworks/message';
import type {
  ReceivedInfo,
  ServerTransactionLike,
  SipStack,
  TransactionUser,
} from '@sipworks/stack';

/** What the UAS saw, in order: one entry per request (ACKs included). */
export interface UasEvent {
  method: string;
  callId: string;
  protocol: string;
  /** Whether the request came with a server transaction (an ACK for a 2xx does not). */
  transaction: boolean;
}

export interface UasOptions {
  /** The user part of the Contact URI (default `uas`). */
  user?: string;
  /** Retransmit the 2xx to an INVITE over unreliable transports until the ACK (default true). */
  retransmit2xx?: boolean;
}

/** A minimal SDP answer: one audio stream, PCMU, on a discard port. */
export function sdpAnswer(address: string): string {
  const ip = address.includes(':') ? 'IP6' : 'IP4';
  return [
    'v=0',
    `o=sipworks 1 1 IN ${ip} ${address}`,
    's=-',
    `c=IN ${ip} ${address}`,
    't=0 0',
    'm=audio 9 RTP/AVP 0',
    'a=rtpmap:0 PCMU/8000',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

interface PendingAck {
  timer: ReturnType<typeof setTimeout> | undefined;
  done: () => void;
}

/**
 * A tiny user agent server on a `SipStack`: OPTIONS gets 200; INVITE gets 180, then 200
 * with an SDP answer and a Contact (RFC 3261 §13.3.1); the ACK for the 2xx (which comes
 * with no transaction, §17.2.3) ends the 2xx retransmissions (§13.3.1.4); BYE gets 200
 * (§15.1.2). Anything else gets 501. Each call's events are recorded for the tests.
 */
export class TinyUas implements TransactionUser {
  readonly events: UasEvent[] = [];
  private readonly stack: SipStack;
  private readonly user: string;
  private readonly retransmit2xx: boolean;
  private readonly awaitingAck = new Map<string, PendingAck>();
  private tagCounter = 0;

  constructor(stack: SipStack, options: UasOptions = {}) {
    this.stack = stack;
    this.user = options.user ?? 'uas';
    this.retransmit2xx = options.retransmit2xx ?? true;
  }

  /** Install this UAS as the stack's transaction user. */
  attach(): this {
    this.stack.setTransactionUser(this);
    return this;
  }

  /** Calls answered with 2xx whose ACK has not come yet. */
  get pendingAcks(): number {
    return this.awaitingAck.size;
  }

  /** Stop every 2xx retransmission timer. */
  close(): void {
    for (const p of this.awaitingAck.values()) p.done();
    this.awaitingAck.clear();
  }

  onRequest(
    request: SipRequest,
    tx: ServerTransactionLike | undefined,
    received: ReceivedInfo,
  ): void {
    this.events.push({
      method: request.method,
      callId: request.callId,
      protocol: received.transport.protocol,
      transaction: tx !== undefined,
    });
    if (request.method === 'ACK') {
      this.awaitingAck.get(ackKey(request.callId, request.cseq.seq))?.done();
      return;
    }
    if (!tx) return;
    switch (request.method) {
      case 'OPTIONS':
        tx.respond(
          createResponse(request, 200, undefined, {
            toTag: this.newTag(),
            headers: [
              ['Allow', 'INVITE, ACK, BYE, CANCEL, OPTIONS'],
              ['Accept', 'application/sdp'],
            ],
          }),
        );
        return;
      case 'INVITE':
        this.answerInvite(request, tx, received);
        return;
      case 'BYE':
        tx.respond(createResponse(request, 200, undefined, { toTag: this.newTag() }));
        return;
      default:
        tx.respond(createResponse(request, 501, undefined, { toTag: this.newTag() }));
    }
  }

  private answerInvite(request: SipRequest, tx: ServerTransactionLike, info: ReceivedInfo): void {
    const toTag = this.newTag();
    tx.respond(createResponse(request, 180, undefined, { toTag }));
    const t = info.transport;
    const host = t.advertised?.host ?? hostOf(t.local.address);
    const port = t.advertised?.port ?? t.local.port;
    const contact = `<sip:${this.user}@${host}:${port};transport=${t.protocol.toLowerCase()}>`;
    const ok = createResponse(request, 200, undefined, {
      toTag,
      headers: [
        ['Contact', contact],
        ['Allow', 'INVITE, ACK, BYE, CANCEL, OPTIONS'],
      ],
      body: sdpAnswer(t.local.address),
      contentType: 'application/sdp',
    });
    tx.respond(ok);
    this.awaitAck(request, tx, ok, !t.reliable && this.retransmit2xx);
  }

  /** §13.3.1.4: the UAS core resends the 2xx (T1, doubling up to T2) until the ACK, for 64*T1. */
  private awaitAck(
    request: SipRequest,
    tx: ServerTransactionLike,
    ok: SipResponse,
    retransmit: boolean,
  ): void {
    const key = ackKey(request.callId, request.cseq.seq);
    const { t1, t2 } = this.stack.timers;
    const pending: PendingAck = {
      timer: undefined,
      done: () => {
        if (pending.timer) clearTimeout(pending.timer);
        pending.timer = undefined;
        if (this.awaitingAck.get(key) === pending) this.awaitingAck.delete(key);
      },
    };
    this.awaitingAck.set(key, pending);
    let interval = t1;
    let elapsed = 0;
    const tick = (): void => {
      elapsed += interval;
      if (elapsed >= 64 * t1 || tx.state !== 'accepted') {
        pending.done();
        return;
      }
      if (retransmit) tx.respond(ok);
      interval = Math.min(2 * interval, t2);
      pending.timer = setTimeout(tick, interval);
    };
    pending.timer = setTimeout(tick, interval);
  }

  private newTag(): string {
    return `uas${(++this.tagCounter).toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
  }
}

function ackKey(callId: string, seq: number): string {
  return `${callId}|${seq}`;
}

function hostOf(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

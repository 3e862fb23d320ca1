import type { SipRequest, SipResponse } from '@sipworks/message';
import type { EndReason } from './handlers.ts';
import type { InviteSession } from './usages/invite-session.ts';

/**
 * What happens to an invite session, as an `InviteSessionObserver` sees it: the session
 * was made (by an INVITE we send, `initiator`, or one we received, `recipient`), a
 * provisional response was received (UAC) or sent (UAS), the INVITE was answered 2xx
 * (the dialog is confirmed, RFC 4235 §3.7.1), and the session ended.
 */
export type InviteSessionEvent =
  | {
      type: 'created';
      session: InviteSession;
      direction: 'initiator' | 'recipient';
      request: SipRequest;
    }
  | { type: 'provisional'; session: InviteSession; response: SipResponse }
  | { type: 'confirmed'; session: InviteSession; response: SipResponse }
  | {
      type: 'terminated';
      session: InviteSession;
      reason: EndReason;
      message: SipRequest | SipResponse | undefined;
    };

/**
 * Watches every invite session of a DUM without being its handler (reSIProcate's
 * DialogEventHandler feed): `dum.addInviteSessionObserver`. Used by the
 * `DialogEventStateManager` (RFC 4235); an application can add its own (call logs,
 * metrics). An observer only watches: what it throws is logged and ignored.
 */
export interface InviteSessionObserver {
  onInviteSessionEvent(event: InviteSessionEvent): void;
}

/** @internal The DUM's list of observers. */
export class InviteSessionObservers {
  private readonly list: InviteSessionObserver[] = [];
  private readonly onError: (e: unknown) => void;

  constructor(onError: (e: unknown) => void) {
    this.onError = onError;
  }

  add(o: InviteSessionObserver): void {
    if (!this.list.includes(o)) this.list.push(o);
  }

  remove(o: InviteSessionObserver): void {
    const i = this.list.indexOf(o);
    if (i >= 0) this.list.splice(i, 1);
  }

  emit(event: InviteSessionEvent): void {
    for (const o of [...this.list]) {
      try {
        o.onInviteSessionEvent(event);
      } catch (e) {
        this.onError(e);
      }
    }
  }
}

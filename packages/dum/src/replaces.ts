import type { Replaces, SipRequest } from '@sipworks/message';
import type { DialogUsageManager } from './dum.ts';
import type { InviteSessionHandler } from './handlers.ts';
import type { Handle } from './handles.ts';
import { DialogId } from './ids.ts';
import type { InviteSession } from './usages/invite-session.ts';
import { overlay } from './usages/refer.ts';

/** What to do with an INVITE that may carry Replaces (RFC 3891 §3). */
export type ReplacesDecision =
  | { action: 'none' }
  | { action: 'replace'; session: InviteSession }
  | { action: 'refuse'; status: number; reason: string };

/**
 * @internal Check an incoming INVITE's Replaces header against our dialogs, as RFC 3891
 * §3 says:
 * - more than one Replaces, or one without both tags: 400;
 * - no invite dialog with that Call-ID, local tag (`to-tag`) and remote tag
 *   (`from-tag`): 481 (a dialog of another usage counts as none);
 * - the dialog's session is ending or has ended: 603;
 * - a confirmed dialog and `early-only`: 486;
 * - an early dialog this UA did not start (we are its UAS): 481;
 * - otherwise (a confirmed dialog, or an early one we started) the new INVITE may
 *   replace it.
 * Whether the caller may replace the dialog at all is the application's call, in
 * `onNewSession` (reject the new session to refuse it).
 */
export function checkReplaces(dum: DialogUsageManager, invite: SipRequest): ReplacesDecision {
  const values = invite.headers('Replaces');
  if (values.length === 0) return { action: 'none' };
  if (values.length > 1)
    return { action: 'refuse', status: 400, reason: 'Bad Request (more than one Replaces)' };
  let r: Replaces | undefined;
  try {
    r = invite.get<Replaces>('Replaces');
  } catch {
    r = undefined;
  }
  if (!r || r.toTag === undefined || r.fromTag === undefined)
    return { action: 'refuse', status: 400, reason: 'Bad Request (malformed Replaces)' };
  const id = new DialogId(r.callId, r.toTag, r.fromTag);
  const handle = dum.findInviteSession(id);
  if (!handle)
    return {
      action: 'refuse',
      status: 481,
      reason: 'Call/Transaction Does Not Exist (no dialog to replace)',
    };
  const session = handle.get();
  const state = session.state;
  if (state === 'terminating' || state === 'terminated' || state === 'cancelling')
    return { action: 'refuse', status: 603, reason: 'Declined (the dialog to replace has ended)' };
  const early = session.dialog === undefined || session.dialog.early || state === 'early';
  if (!early && r.earlyOnly)
    return { action: 'refuse', status: 486, reason: 'Busy Here (the dialog is confirmed)' };
  if (early && session.dialogSet.side !== 'uac')
    return {
      action: 'refuse',
      status: 481,
      reason: 'Call/Transaction Does Not Exist (an early dialog we did not start)',
    };
  return { action: 'replace', session };
}

/**
 * @internal The handler of a session that replaces `old`: when the new session is up,
 * the old one is ended (BYE, or CANCEL while early) with `onTerminated` reason
 * `replaced` (RFC 3891 §3), before the application hears `onConnected`.
 */
export function replacingHandler(
  app: InviteSessionHandler,
  old: Handle<InviteSession>,
): InviteSessionHandler {
  return overlay(app, {
    onConnected(h, msg) {
      if (old.isValid()) old.get().endReplaced();
      app.onConnected?.(h, msg);
    },
  });
}

import type { SipRequest, SipResponse, Uri } from '@sipworks/message';
import type { DialogUsageManager } from './dum.ts';
import {
  buildDialogInfo,
  DIALOG_INFO_CONTENT_TYPE,
  type DialogInfoDialog,
  type DialogInfoState,
} from './events/dialog-info.ts';
import type { ServerSubscriptionHandler } from './handlers.ts';
import type { Handle } from './handles.ts';
import type { InviteSessionEvent, InviteSessionObserver } from './invite-observer.ts';
import type { InviteSession } from './usages/invite-session.ts';
import { canonicalAor } from './usages/server-registration.ts';
import type { ServerSubscription } from './usages/server-subscription.ts';

/** Is told of each change of a dialog of an entity (the dialog as it is now). */
export type DialogEventListener = (entity: string, dialog: Readonly<DialogInfoDialog>) => void;

export interface DialogEventStateManagerOptions {
  /**
   * The entity (address of record) a session's dialog belongs to. Default: the From URI
   * of an INVITE we send, the To URI of one we receive, in canonical form (`canonicalAor`),
   * which is what a `dialog` subscription's Request-URI is matched with.
   */
  entityOf?: (request: SipRequest, direction: 'initiator' | 'recipient') => string;
}

/** What RFC 4235 §4.1.2 calls the event of a terminated dialog, for each way a session ends. */
const TERMINATED_EVENT: Record<string, string> = {
  'local-bye': 'local-bye',
  'remote-bye': 'remote-bye',
  cancelled: 'cancelled',
  rejected: 'rejected',
  replaced: 'replaced',
  timeout: 'timeout',
  stale: 'timeout',
  error: 'error',
};

interface Tracked {
  entity: string;
  dialog: DialogInfoDialog;
  /** When the dialog was confirmed (stack clock ms), for `duration`. */
  confirmedAt: number | undefined;
}

/**
 * The dialog state of a DUM's invite sessions as RFC 4235 describes it (reSIProcate's
 * DialogEventStateManager): it watches every invite session through
 * `dum.addInviteSessionObserver` and keeps, per entity (address of record), each dialog
 * with its state (trying, proceeding, early, confirmed, terminated), direction, ids and
 * participants. `onDialogEvent` listeners hear of each change; `document(entity)` writes
 * the dialog-info XML; `subscriptionHandler()` serves `dialog` subscriptions with a full
 * document at once and after every change.
 */
export class DialogEventStateManager implements InviteSessionObserver {
  private readonly dum: DialogUsageManager;
  private readonly entityOf: (request: SipRequest, direction: 'initiator' | 'recipient') => string;
  private readonly bySession = new Map<InviteSession, Tracked>();
  private readonly listeners = new Set<DialogEventListener>();
  private readonly subscribers = new Map<string, Set<Handle<ServerSubscription>>>();
  private readonly versions = new WeakMap<ServerSubscription, number>();

  constructor(dum: DialogUsageManager, options?: DialogEventStateManagerOptions) {
    this.dum = dum;
    this.entityOf = options?.entityOf ?? defaultEntity;
    dum.addInviteSessionObserver(this);
  }

  /** Stop watching the DUM. */
  close(): void {
    this.dum.removeInviteSessionObserver(this);
  }

  /** Listen to dialog changes; returns the function that stops listening. */
  onDialogEvent(listener: DialogEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The dialogs of an entity that have not ended. */
  dialogs(entity: string): DialogInfoDialog[] {
    const out: DialogInfoDialog[] = [];
    for (const t of this.bySession.values())
      if (t.entity === entity) out.push(this.withDuration(t));
    return out;
  }

  /** A full dialog-info document (RFC 4235 §4.1) of an entity, with this version. */
  document(entity: string, version: number, extra: DialogInfoDialog[] = []): string {
    return buildDialogInfo({
      version,
      state: 'full',
      entity,
      dialogs: [...this.dialogs(entity), ...extra],
    });
  }

  /**
   * A notifier for the `dialog` event package (RFC 4235 §3): give it to
   * `dum.addServerSubscriptionHandler('dialog', ...)`. Each SUBSCRIBE is accepted (200)
   * and answered with a full document of its Request-URI's entity, and each change of
   * one of the entity's dialogs sends a new full document (its version one higher).
   */
  subscriptionHandler(): ServerSubscriptionHandler {
    const forget = (h: Handle<ServerSubscription>): void => {
      for (const [entity, set] of this.subscribers) {
        for (const x of set) if (x.id === h.id) set.delete(x);
        if (set.size === 0) this.subscribers.delete(entity);
      }
    };
    return {
      onNewSubscription: (h) => {
        const s = h.get();
        s.accept(200);
        let set = this.subscribers.get(s.resource);
        if (!set) this.subscribers.set(s.resource, (set = new Set()));
        set.add(h);
        this.notify(s, []);
      },
      onTerminated: forget,
      onExpired: forget,
    };
  }

  /** @internal */
  onInviteSessionEvent(event: InviteSessionEvent): void {
    const session = event.session;
    if (event.type === 'created') {
      this.created(session, event.direction, event.request);
      return;
    }
    const t = this.bySession.get(session);
    if (!t) return;
    const d = t.dialog;
    switch (event.type) {
      case 'provisional': {
        const res = event.response;
        const tag = d.direction === 'initiator' ? res.to.tag : undefined;
        if (d.direction === 'initiator' && tag === undefined) {
          // A 1xx without a To tag: proceeding, but 100 Trying changes nothing (§3.7.1).
          if (res.status === 100 || d.state !== 'trying') return;
          this.change(t, 'proceeding', res.status);
          return;
        }
        if (tag !== undefined) d.remoteTag = tag;
        this.change(t, 'early', res.status, undefined, res);
        return;
      }
      case 'confirmed': {
        const res = event.response;
        if (d.direction === 'initiator' && res.to.tag !== undefined) d.remoteTag = res.to.tag;
        t.confirmedAt = this.dum.stack.clock.now();
        this.change(t, 'confirmed', res.status, undefined, res);
        return;
      }
      case 'terminated': {
        const m = event.message;
        const code = m !== undefined && !m.isRequest ? (m as SipResponse).status : undefined;
        const final = this.withDuration(t);
        this.bySession.delete(session);
        final.state = 'terminated';
        const ev = TERMINATED_EVENT[event.reason];
        if (ev !== undefined) final.event = ev;
        else delete final.event;
        if (code !== undefined && code >= 300) final.code = code;
        else delete final.code;
        this.emit(t.entity, final);
        return;
      }
      default:
        return;
    }
  }

  private created(
    session: InviteSession,
    direction: 'initiator' | 'recipient',
    request: SipRequest,
  ): void {
    let entity: string;
    try {
      entity = this.entityOf(request, direction);
    } catch (e) {
      this.dum.logger.warn({ err: e }, 'no dialog-event entity for an invite session');
      return;
    }
    const initiator = direction === 'initiator';
    const dialog: DialogInfoDialog = {
      id: `d${session.handleId}`,
      callId: request.callId,
      direction,
      state: 'trying',
      local: { identity: (initiator ? request.from : request.to).uri.toString() },
      remote: { identity: (initiator ? request.to : request.from).uri.toString() },
    };
    const localTag = session.dialogSet.id.localTag;
    if (localTag) dialog.localTag = localTag;
    const remoteTag = initiator ? undefined : request.from.tag;
    if (remoteTag !== undefined) dialog.remoteTag = remoteTag;
    const remoteName = (initiator ? request.to : request.from).displayName;
    if (remoteName && dialog.remote) dialog.remote.displayName = remoteName;
    if (!initiator) {
      const target = request.contacts[0];
      if (target && !target.star && dialog.remote) dialog.remote.target = target.uri.toString();
    }
    const t: Tracked = { entity, dialog, confirmedAt: undefined };
    this.bySession.set(session, t);
    this.emit(entity, this.withDuration(t));
  }

  private change(
    t: Tracked,
    state: DialogInfoState,
    code?: number,
    event?: string,
    response?: SipResponse,
  ): void {
    const d = t.dialog;
    if (d.direction === 'initiator' && response) {
      const target = response.contacts[0];
      if (target && !target.star && d.remote) d.remote.target = target.uri.toString();
    }
    d.state = state;
    if (code !== undefined) d.code = code;
    if (event !== undefined) d.event = event;
    this.emit(t.entity, this.withDuration(t));
  }

  private withDuration(t: Tracked): DialogInfoDialog {
    const copy: DialogInfoDialog = {
      ...t.dialog,
      ...(t.dialog.local ? { local: { ...t.dialog.local } } : {}),
      ...(t.dialog.remote ? { remote: { ...t.dialog.remote } } : {}),
    };
    if (t.confirmedAt !== undefined)
      copy.duration = Math.floor((this.dum.stack.clock.now() - t.confirmedAt) / 1000);
    return copy;
  }

  private emit(entity: string, dialog: DialogInfoDialog): void {
    for (const l of [...this.listeners]) {
      try {
        l(entity, dialog);
      } catch (e) {
        this.dum.logger.error({ err: e }, 'a DialogEventListener threw');
      }
    }
    const subs = this.subscribers.get(entity);
    if (!subs) return;
    const extra = dialog.state === 'terminated' ? [dialog] : [];
    for (const h of [...subs]) {
      if (!h.isValid()) {
        subs.delete(h);
        continue;
      }
      this.notify(h.get(), extra);
    }
  }

  private notify(s: ServerSubscription, extra: DialogInfoDialog[]): void {
    if (s.isEnded || s.state === 'terminated' || s.state === 'new') return;
    const version = this.versions.get(s) ?? 0;
    this.versions.set(s, version + 1);
    try {
      s.send(s.update(this.document(s.resource, version, extra), DIALOG_INFO_CONTENT_TYPE));
    } catch (e) {
      this.dum.logger.warn({ err: e }, 'a dialog NOTIFY could not be sent');
    }
  }
}

function defaultEntity(request: SipRequest, direction: 'initiator' | 'recipient'): string {
  const uri: Uri = (direction === 'initiator' ? request.from : request.to).uri;
  return canonicalAor(uri);
}

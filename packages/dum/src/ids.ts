import type { SipMessage } from '@sipworks/message';

/** Identifies a dialog set: Call-ID and the local tag (every dialog born of one request). */
export class DialogSetId {
  readonly callId: string;
  readonly localTag: string;
  constructor(callId: string, localTag: string) {
    this.callId = callId;
    this.localTag = localTag;
  }
  /** From a message we sent (local tag = From tag) or received (local tag = To tag). */
  static of(msg: SipMessage, local: 'from' | 'to'): DialogSetId {
    return new DialogSetId(msg.callId, (local === 'from' ? msg.from.tag : msg.to.tag) ?? '');
  }
  get key(): string {
    return `${this.callId}\u0000${this.localTag}`;
  }
  toString(): string {
    return `${this.callId};local=${this.localTag}`;
  }
}

/** Identifies a dialog: Call-ID, local tag and remote tag (RFC 3261 §12). */
export class DialogId {
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  constructor(callId: string, localTag: string, remoteTag: string) {
    this.callId = callId;
    this.localTag = localTag;
    this.remoteTag = remoteTag;
  }
  get dialogSetId(): DialogSetId {
    return new DialogSetId(this.callId, this.localTag);
  }
  get key(): string {
    return `${this.callId}\u0000${this.localTag}\u0000${this.remoteTag}`;
  }
  toString(): string {
    return `${this.callId};local=${this.localTag};remote=${this.remoteTag}`;
  }
}

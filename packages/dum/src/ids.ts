import type { SipMessage } from '@sipworks/message';
import { flat } from './compact.ts';

/**
 * The ids keep only their key (the Call-ID and tags joined by NUL, which none of them
 * may hold): it is what the DUM's tables are keyed by, so a dialog that lives for a call
 * holds one string for its id, and the parts are cut from it when read.
 */
const SEP = '\u0000';

/** Identifies a dialog set: Call-ID and the local tag (every dialog born of one request). */
export class DialogSetId {
  /** `callId` NUL `localTag`. */
  readonly key: string;
  constructor(callId: string, localTag: string) {
    this.key = `${callId}${SEP}${localTag}`;
  }
  /** From a message we sent (local tag = From tag) or received (local tag = To tag). */
  static of(msg: SipMessage, local: 'from' | 'to'): DialogSetId {
    return new DialogSetId(msg.callId, (local === 'from' ? msg.from.tag : msg.to.tag) ?? '');
  }
  get callId(): string {
    return this.key.slice(0, this.key.indexOf(SEP));
  }
  get localTag(): string {
    return this.key.slice(this.key.indexOf(SEP) + 1);
  }
  /** @internal The same id with its key as one flat string, for a set kept for a call. */
  compact(): DialogSetId {
    const id = new DialogSetId('', '');
    (id as { key: string }).key = flat(this.key);
    return id;
  }
  toString(): string {
    return `${this.callId};local=${this.localTag}`;
  }
}

/** Identifies a dialog: Call-ID, local tag and remote tag (RFC 3261 §12). */
export class DialogId {
  /** `callId` NUL `localTag` NUL `remoteTag`. */
  readonly key: string;
  constructor(callId: string, localTag: string, remoteTag: string) {
    this.key = `${callId}${SEP}${localTag}${SEP}${remoteTag}`;
  }
  get callId(): string {
    return this.key.slice(0, this.key.indexOf(SEP));
  }
  get localTag(): string {
    const k = this.key;
    const a = k.indexOf(SEP) + 1;
    return k.slice(a, k.indexOf(SEP, a));
  }
  get remoteTag(): string {
    const k = this.key;
    return k.slice(k.indexOf(SEP, k.indexOf(SEP) + 1) + 1);
  }
  get dialogSetId(): DialogSetId {
    return new DialogSetId(this.callId, this.localTag);
  }
  /** @internal The same id with its key as one flat string, for a dialog kept for a call. */
  compact(): DialogId {
    const id = new DialogId('', '', '');
    (id as { key: string }).key = flat(this.key);
    return id;
  }
  toString(): string {
    return `${this.callId};local=${this.localTag};remote=${this.remoteTag}`;
  }
}

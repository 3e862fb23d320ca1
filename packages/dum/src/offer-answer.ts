import { sharedContentType } from './compact.ts';
import { DumError } from './errors.ts';

/** A session description as it travels in a message body. */
export interface SessionDescription {
  readonly body: Uint8Array;
  readonly contentType: string;
}

/**
 * Where the offer/answer exchange of a session stands (RFC 3264, RFC 3261 §13.2.1),
 * kept apart from the dialog's state:
 *
 * ```
 *  phase          event              next
 *  ------------   ----------------   ------------
 *  none/stable    send offer         local-offer
 *  none/stable    receive offer      remote-offer
 *  local-offer    receive answer     stable
 *  remote-offer   send answer        stable
 *  local-offer    receive offer      (refused: 491, glare)
 *  remote-offer   receive offer      (refused: 500)
 *  any            restore(snapshot)  the snapshot's none/stable (a failed re-INVITE)
 * ```
 *
 * `stable` keeps the last descriptions agreed, for the re-offers of a later step.
 */
export type OfferAnswerState =
  | { readonly phase: 'none' }
  | { readonly phase: 'local-offer'; readonly offer: SessionDescription }
  | { readonly phase: 'remote-offer'; readonly offer: SessionDescription }
  | {
      readonly phase: 'stable';
      readonly local: SessionDescription;
      readonly remote: SessionDescription;
    };

/** The offer/answer state machine of one invite session. */
export class OfferAnswer {
  private st: OfferAnswerState = { phase: 'none' };
  private lastStable: OfferAnswerState = { phase: 'none' };

  get state(): OfferAnswerState {
    return this.st;
  }

  get phase(): OfferAnswerState['phase'] {
    return this.st.phase;
  }

  /** We send an offer. Throws when an offer is already pending (the API was misused). */
  sendOffer(sd: SessionDescription): void {
    switch (this.st.phase) {
      case 'none':
      case 'stable':
        this.st = { phase: 'local-offer', offer: sd };
        return;
      case 'local-offer':
      case 'remote-offer':
        throw new DumError(
          'SIP_ERR_DUM_STATE',
          `cannot send an offer while an offer is pending (${this.st.phase})`,
        );
      default:
        throw new Error(`invalid offer/answer phase ${(this.st as { phase: string }).phase}`);
    }
  }

  /** We send the answer to the peer's offer. Throws when no remote offer is pending. */
  sendAnswer(sd: SessionDescription): void {
    switch (this.st.phase) {
      case 'remote-offer':
        this.st = this.lastStable = { phase: 'stable', local: sd, remote: this.st.offer };
        return;
      case 'none':
      case 'stable':
      case 'local-offer':
        throw new DumError(
          'SIP_ERR_DUM_STATE',
          `cannot send an answer without a remote offer (${this.st.phase})`,
        );
      default:
        throw new Error(`invalid offer/answer phase ${(this.st as { phase: string }).phase}`);
    }
  }

  /**
   * The peer sent an offer. Returns the status to refuse the request with when the
   * offer is illegal now: 491 when our own offer is pending (glare, RFC 3261 §14.2),
   * 500 when the peer's previous offer is unanswered.
   */
  receiveOffer(sd: SessionDescription): 491 | 500 | undefined {
    switch (this.st.phase) {
      case 'none':
      case 'stable':
        this.st = { phase: 'remote-offer', offer: sd };
        return undefined;
      case 'local-offer':
        return 491;
      case 'remote-offer':
        return 500;
      default:
        throw new Error(`invalid offer/answer phase ${(this.st as { phase: string }).phase}`);
    }
  }

  /** The peer answered. Returns false (nothing changes) when no offer of ours is pending. */
  receiveAnswer(sd: SessionDescription): boolean {
    switch (this.st.phase) {
      case 'local-offer':
        this.st = this.lastStable = { phase: 'stable', local: this.st.offer, remote: sd };
        return true;
      case 'none':
      case 'stable':
      case 'remote-offer':
        return false;
      default:
        throw new Error(`invalid offer/answer phase ${(this.st as { phase: string }).phase}`);
    }
  }

  /**
   * Forget a pending offer that can no longer be answered (the ACK that should have
   * carried the answer went without it): back to the last stable state, or none.
   */
  abandon(): void {
    if (this.st.phase === 'local-offer' || this.st.phase === 'remote-offer')
      this.st = this.lastStable;
  }

  /**
   * The last state agreed, to take back with `restore` should the request that starts
   * a new exchange fail after its answer came early (RFC 6337 §3.3.3).
   */
  snapshot(): OfferAnswerState {
    return this.lastStable;
  }

  /**
   * Roll back to a state taken by `snapshot` (RFC 3261 §14.1: a re-INVITE that fails
   * leaves the session as it was, even when its answer came in a reliable 1xx).
   */
  restore(state: OfferAnswerState): void {
    if (state.phase === 'local-offer' || state.phase === 'remote-offer')
      throw new DumError('SIP_ERR_DUM_STATE', `cannot restore a pending offer (${state.phase})`);
    this.st = this.lastStable = state;
  }
}

/** The session description a message carries, if any. */
export function descriptionOf(msg: {
  body: Uint8Array;
  contentType: { mimeType: string } | undefined;
}): SessionDescription | undefined {
  if (msg.body.length === 0) return undefined;
  return {
    body: msg.body,
    contentType: sharedContentType(msg.contentType?.mimeType ?? 'application/sdp'),
  };
}

const encoder = new TextEncoder();

/**
 * A session description the application gave as text. It stays text, as given (a
 * string costs less than its bytes, and an application that answers alike shares it),
 * and `body` encodes it on each read: a session holds its last local description for
 * the whole call, and reads it only to offer again.
 */
class TextDescription implements SessionDescription {
  readonly text: string;
  readonly contentType: string;
  constructor(text: string, contentType: string) {
    this.text = text;
    this.contentType = contentType;
  }
  get body(): Uint8Array {
    return encoder.encode(this.text);
  }
}

/** A body given by the application, as bytes (or text) with a type. */
export function toDescription(
  body: string | Uint8Array,
  contentType = 'application/sdp',
): SessionDescription {
  const type = sharedContentType(contentType);
  return typeof body === 'string' ? new TextDescription(body, type) : { body, contentType: type };
}

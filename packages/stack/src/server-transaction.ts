import type { SipResponse } from '@sipworks/message';
import type { SipStackError } from './errors.ts';
import type { Flow } from './transaction.ts';

/** The TU's callbacks for one server transaction (all optional). */
export interface ServerTransactionHandler {
  /** A response could not be sent (§17.2.4 after trying the alternatives). */
  onError?(error: SipStackError, tx: ServerTransactionLike): void;
  /** INVITE only: Timer H fired, the ACK for a non-2xx final response never came. */
  onAckTimeout?(tx: ServerTransactionLike): void;
  onTerminated?(tx: ServerTransactionLike): void;
}

/** What the TU holds of a server transaction. */
export interface ServerTransactionLike {
  readonly id: string;
  readonly kind: 'invite-server' | 'non-invite-server';
  readonly state: string;
  /** Send a response. Throws `SipStackError` (`SIP_ERR_TX_STATE`) when the state does not allow it. */
  respond(response: SipResponse): void;
  /** The transport and connection the request came on, where responses go back. */
  readonly flow?: Flow;
  /** Callbacks for failures and the end of the transaction. */
  handler: ServerTransactionHandler | undefined;
}

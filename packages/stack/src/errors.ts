/**
 * Error codes of `@sipworks/stack`.
 *
 * | code | when |
 * | --- | --- |
 * | `SIP_ERR_TX_TIMEOUT` | a client transaction timed out (Timer B or F) |
 * | `SIP_ERR_TRANSPORT` | a message could not be sent, or its connection failed |
 * | `SIP_ERR_NO_TRANSPORT` | no transport can reach the target |
 * | `SIP_ERR_RESOLVE` | the target's domain could not be resolved (RFC 3263) |
 * | `SIP_ERR_TX_STATE` | the API was used in a state that does not allow it (a response on a terminated transaction...) |
 * | `SIP_ERR_STACK_STATE` | the stack is not started, or stopped |
 * | `SIP_ERR_OVERLOAD` | too many live transactions |
 */
export type SipStackErrorCode =
  | 'SIP_ERR_TX_TIMEOUT'
  | 'SIP_ERR_TRANSPORT'
  | 'SIP_ERR_NO_TRANSPORT'
  | 'SIP_ERR_RESOLVE'
  | 'SIP_ERR_TX_STATE'
  | 'SIP_ERR_STACK_STATE'
  | 'SIP_ERR_OVERLOAD';

/** Who ended something: the application, this stack, or the peer. */
export type Initiator = 'user' | 'local' | 'remote';

export class SipStackError extends Error {
  override name = 'SipStackError';
  readonly code: SipStackErrorCode;
  readonly initiator: Initiator;
  constructor(
    code: SipStackErrorCode,
    message: string,
    initiator: Initiator = 'local',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.initiator = initiator;
  }
}

/** A transport could not send, or lost its connection. */
export class TransportError extends SipStackError {
  override name = 'TransportError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('SIP_ERR_TRANSPORT', message, 'local', options);
  }
}

/** A client transaction got no final response in time. */
export class TransactionTimeoutError extends SipStackError {
  override name = 'TransactionTimeoutError';
  constructor(message: string) {
    super('SIP_ERR_TX_TIMEOUT', message, 'local');
  }
}

/**
 * Error codes of `@sipworks/dum`.
 *
 * | code | when |
 * | --- | --- |
 * | `SIP_ERR_DUM_STALE_HANDLE` | a handle was used after its usage ended |
 * | `SIP_ERR_DUM_STATE` | an operation the usage's state does not allow |
 * | `SIP_ERR_DUM_NO_HANDLER` | a usage was made for which no handler is registered |
 * | `SIP_ERR_DUM_SHUTDOWN` | the DUM is shutting down |
 * | `SIP_ERR_DUM_AUTH` | credentials are missing or were refused |
 */
export type DumErrorCode =
  | 'SIP_ERR_DUM_STALE_HANDLE'
  | 'SIP_ERR_DUM_STATE'
  | 'SIP_ERR_DUM_NO_HANDLER'
  | 'SIP_ERR_DUM_SHUTDOWN'
  | 'SIP_ERR_DUM_AUTH';

export class DumError extends Error {
  override name = 'DumError';
  readonly code: DumErrorCode;
  constructor(code: DumErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A handle was used after its usage ended. */
export class StaleHandleError extends DumError {
  override name = 'StaleHandleError';
  constructor(what: string) {
    super('SIP_ERR_DUM_STALE_HANDLE', `${what} has ended; its handle is no longer valid`);
  }
}

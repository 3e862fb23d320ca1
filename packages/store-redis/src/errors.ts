/**
 * Error codes of `@sipworks/store-redis`.
 *
 * | code | when |
 * | --- | --- |
 * | `SIP_ERR_STORE_REDIS_TIMEOUT` | Redis did not answer within the store's `timeoutMs` |
 * | `SIP_ERR_STORE_REDIS_COMMAND` | a command failed: the connection is down, or Redis answered an error |
 * | `SIP_ERR_STORE_REDIS_DATA` | an entry read from Redis is not one this store wrote |
 * | `SIP_ERR_STORE_REDIS_CSEQ` | a REGISTER's update found a binding with its Call-ID and a CSeq as high, stored meanwhile by another registrar (nothing changed) |
 *
 * The DUM answers a REGISTER or PUBLISH whose store call failed with 500 and a
 * Retry-After (RFC 3261 §10.3 step 7, §21.5.1).
 */
export type RedisStoreErrorCode =
  | 'SIP_ERR_STORE_REDIS_TIMEOUT'
  | 'SIP_ERR_STORE_REDIS_COMMAND'
  | 'SIP_ERR_STORE_REDIS_DATA'
  | 'SIP_ERR_STORE_REDIS_CSEQ';

export class RedisStoreError extends Error {
  override name = 'RedisStoreError';
  readonly code: RedisStoreErrorCode;
  constructor(code: RedisStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

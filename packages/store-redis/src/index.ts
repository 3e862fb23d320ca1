export {
  createClient,
  LuaScript,
  type RedisClientOptions,
  type RedisStoreOptions,
  STORE_CLIENT_DEFAULTS,
} from './client.ts';
export { RedisStoreError, type RedisStoreErrorCode } from './errors.ts';
export { RedisPublicationStore, type RedisPublicationStoreOptions } from './publication.ts';
export {
  RedisRegistrationPersistence,
  type RedisRegistrationPersistenceOptions,
} from './registration.ts';

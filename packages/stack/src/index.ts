export { ClientTransaction } from './client-transaction.ts';
export { type Clock, systemClock, type TimerHandle } from './clock.ts';
export {
  type Initiator,
  SipStackError,
  type SipStackErrorCode,
  TransactionTimeoutError,
  TransportError,
} from './errors.ts';
export {
  CHANNELS,
  channel,
  type Logger,
  silentLogger,
  type TransactionStateEvent,
  type TransportDropEvent,
  type TransportMessageEvent,
} from './events.ts';
export { hostForWildcard, isWildcard, sentByHost } from './host.ts';
export { type InviteClientState, InviteClientTransaction } from './invite-client.ts';
export { type InviteServerState, InviteServerTransaction } from './invite-server.ts';
export { MemoryNetwork, MemoryTransport, type NetworkConditions } from './memory-transport.ts';
export { type NonInviteClientState, NonInviteClientTransaction } from './non-invite-client.ts';
export { type NonInviteServerState, NonInviteServerTransaction } from './non-invite-server.ts';
export {
  type DnsResolver,
  type NaptrRecord,
  nodeDnsResolver,
  type ResolvedTarget,
  ResolveError,
  type ResolveOptions,
  resolveTargets,
  type SrvRecord,
} from './resolver.ts';
export type { ServerTransactionHandler, ServerTransactionLike } from './server-transaction.ts';
export { ServerTransaction } from './server-transaction-base.ts';
export {
  type ClientRequest,
  type ReceivedInfo,
  type SendOptions,
  SipStack,
  type SipStackOptions,
  type TransactionUser,
} from './stack.ts';
export {
  type StreamConnection,
  StreamConnections,
  type StreamConnectionsOptions,
  type StreamSocket,
} from './stream.ts';
export {
  bindingRequest,
  bindingSuccess,
  isStun,
  parseStun,
  STUN_MAGIC_COOKIE,
  type StunMessage,
} from './stun.ts';
export { DEFAULT_TIMERS, type TimerConfig } from './timers.ts';
export type {
  ClientTransactionHandler,
  ClientTransactionLike,
  Flow,
  TransactionKind,
} from './transaction.ts';
export {
  boundAddress,
  type Destination,
  type Source,
  type Transport,
  type TransportAddress,
  type TransportSink,
} from './transport.ts';

export { ClientAuthManager, type ClientAuthManagerOptions } from './client-auth.ts';
export { Dialog } from './dialog.ts';
export {
  type DialogEventListener,
  DialogEventStateManager,
  type DialogEventStateManagerOptions,
} from './dialog-event-state.ts';
export { DialogSet } from './dialog-set.ts';
export {
  type AsyncHasher,
  baseAlgorithm,
  computeHa1,
  constantTimeEqual,
  DIGEST_ALGORITHMS,
  type DigestAlgorithm,
  type DigestInput,
  digestResponse,
  digestResponseAsync,
  type Hasher,
  nodeHasher,
  webHasher,
  webHasherAlgorithms,
} from './digest.ts';
export {
  type AppDialogSet,
  type AppDialogSetFactory,
  DialogUsageManager,
  type DialogUsageManagerOptions,
} from './dum.ts';
export { DumError, type DumErrorCode, StaleHandleError } from './errors.ts';
export {
  type EventState,
  latestPublication,
  type PublicationComposer,
  presentity,
} from './event-state.ts';
export {
  buildDialogInfo,
  DIALOG_INFO_CONTENT_TYPE,
  type DialogInfo,
  type DialogInfoDialog,
  type DialogInfoState,
  type DialogParticipant,
  parseDialogInfo,
} from './events/dialog-info.ts';
export {
  buildMessageSummary,
  MESSAGE_SUMMARY_CONTENT_TYPE,
  type MessageClass,
  type MessageCounts,
  type MessageSummary,
  parseMessageSummary,
} from './events/message-summary.ts';
export {
  buildPidf,
  isOpen,
  PIDF_CONTENT_TYPE,
  type Presence,
  type PresenceTuple,
  parsePidf,
} from './events/presence.ts';
export type {
  ClientPagerMessageHandler,
  ClientPublicationHandler,
  ClientRegistrationHandler,
  ClientSubscriptionHandler,
  ContactBinding,
  DialogSetHandler,
  EndReason,
  InviteSessionHandler,
  OutOfDialogHandler,
  RegistrationPersistenceManager,
  RegistrationUpdate,
  ServerPagerMessageHandler,
  ServerPublicationHandler,
  ServerRegistrationHandler,
  ServerSubscriptionHandler,
} from './handlers.ts';
export { Handle, type Handled, HandleManager } from './handles.ts';
export { DialogId, DialogSetId } from './ids.ts';
export type { InviteSessionEvent, InviteSessionObserver } from './invite-observer.ts';
export { md5Hex } from './md5.ts';
export {
  descriptionOf,
  OfferAnswer,
  type OfferAnswerState,
  type SessionDescription,
  toDescription,
} from './offer-answer.ts';
export {
  type Credentials,
  MasterProfile,
  Profile,
  type ProfileSettings,
  UserProfile,
} from './profile.ts';
export { RedirectManager } from './redirect.ts';
export {
  bindingKey,
  InMemoryRegistrationPersistence,
  type InMemoryRegistrationPersistenceOptions,
} from './registration-persistence.ts';
export { checkReplaces, type ReplacesDecision } from './replaces.ts';
export {
  type AuthResult,
  type CredentialLookup,
  ServerAuthManager,
  type ServerAuthOptions,
  type StoredCredentials,
} from './server-auth.ts';
export {
  parseSipfrag,
  SIPFRAG_CONTENT_TYPE,
  type SipfragStatus,
  sipfrag,
} from './sipfrag.ts';
export {
  type SqliteDatabase,
  SqliteRegistrationPersistence,
  type SqliteRegistrationPersistenceOptions,
  type SqliteStatement,
} from './sqlite-persistence.ts';
export {
  ClientInviteSession,
  type ClientInviteSessionState,
} from './usages/client-invite-session.ts';
export {
  ClientPublication,
  type ClientPublicationState,
} from './usages/client-publication.ts';
export {
  ClientRegistration,
  type ClientRegistrationState,
  outboundBackoffSeconds,
  refreshDelaySeconds,
} from './usages/client-registration.ts';
export {
  ClientSubscription,
  type ClientSubscriptionState,
  NOTIFY_WAIT_MS,
} from './usages/client-subscription.ts';
export { type EndOptions, InviteSession } from './usages/invite-session.ts';
export { ClientOutOfDialogReq, ServerOutOfDialogReq } from './usages/out-of-dialog.ts';
export { ClientPagerMessage, ServerPagerMessage } from './usages/pager.ts';
export {
  type ReferOptions,
  type ReferRequestInfo,
  readRefer,
  referToAddress,
  replacesValue,
  ServerReferSubscription,
} from './usages/refer.ts';
export {
  ServerInviteSession,
  type ServerInviteSessionState,
} from './usages/server-invite-session.ts';
export {
  InMemoryPublicationStore,
  type InMemoryPublicationStoreOptions,
  type PublicationStore,
  type PublishedState,
  ServerPublication,
  type ServerPublicationOperation,
} from './usages/server-publication.ts';
export {
  canonicalAor,
  type RegistrarOptions,
  type RegistrationChange,
  ServerRegistration,
  type ServerRegistrationOperation,
} from './usages/server-registration.ts';
export {
  ServerSubscription,
  type ServerSubscriptionState,
} from './usages/server-subscription.ts';
export { MAX_GLARE_RETRIES, type ModificationPhase } from './usages/session-modification.ts';
export { MIN_SESSION_EXPIRES } from './usages/session-timer.ts';

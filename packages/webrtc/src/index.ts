export {
  WebRtcCall,
  type WebRtcCallState,
  WebRtcCalls,
  type WebRtcCallsOptions,
  WebRtcError,
} from './calls.ts';
export type {
  PeerConnectionLike,
  SdpType,
  SessionDescriptionInit,
  TransceiverDirection,
  TransceiverLike,
} from './peer.ts';

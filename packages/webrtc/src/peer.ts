/**
 * The parts of the WebRTC API (W3C webrtc-pc) that a call uses, written out so that the
 * package needs no DOM typings and tests can pass a double. A page's `RTCPeerConnection`
 * has all of them.
 */

export type SdpType = 'offer' | 'answer' | 'pranswer' | 'rollback';

export interface SessionDescriptionInit {
  type: SdpType;
  sdp?: string;
}

export type TransceiverDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive' | 'stopped';

export interface TransceiverLike {
  direction: TransceiverDirection;
  readonly currentDirection?: TransceiverDirection | null;
}

/** An `RTCPeerConnection`, as far as the call needs one. */
export interface PeerConnectionLike {
  readonly localDescription: { readonly type: string; readonly sdp: string } | null;
  readonly iceGatheringState: string;
  readonly connectionState?: string;
  readonly signalingState: string;
  createOffer(): Promise<SessionDescriptionInit>;
  createAnswer(): Promise<SessionDescriptionInit>;
  setLocalDescription(description?: SessionDescriptionInit): Promise<void>;
  setRemoteDescription(description: SessionDescriptionInit): Promise<void>;
  getTransceivers(): TransceiverLike[];
  addEventListener(type: 'icegatheringstatechange', listener: () => void): void;
  removeEventListener(type: 'icegatheringstatechange', listener: () => void): void;
  close(): void;
}

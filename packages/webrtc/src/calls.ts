import {
  type ClientInviteSession,
  type DialogUsageManager,
  type EndReason,
  type Handle,
  type InviteSession,
  type InviteSessionHandler,
  type Profile,
  ServerInviteSession,
} from '@sipworks/dum';
import { SipRequest, type SipResponse } from '@sipworks/message';
import type { PeerConnectionLike, TransceiverDirection } from './peer.ts';

/**
 * Where a call is:
 *
 * ```
 *  outgoing: calling --180/183--> ringing --2xx+ACK--> connected --BYE/CANCEL/failure--> ended
 *  incoming: incoming --answer()--> connected (on the ACK)          reject() --> ended
 * ```
 */
export type WebRtcCallState = 'calling' | 'ringing' | 'incoming' | 'connected' | 'ended';

export interface WebRtcCallsOptions {
  /**
   * A new `RTCPeerConnection` for a call, with its local tracks added (for example
   * `pc.addTrack(track, stream)` for each track of `getUserMedia({ audio: true })`).
   */
  createPeerConnection(call: WebRtcCall): PeerConnectionLike | Promise<PeerConnectionLike>;
  /** An incoming call, with its offer: `call.answer()` or `call.reject()`. */
  onIncoming?(call: WebRtcCall): void;
  /** A call changed state, or was held or resumed. */
  onChange?(call: WebRtcCall): void;
  /**
   * How long to wait for ICE gathering before a description is sent anyway, with the
   * candidates found so far (ms, default 5,000). SIP has no trickle here: the offer and
   * the answer carry every candidate.
   */
  iceGatheringTimeoutMs?: number;
  /** Send 180 Ringing for each incoming call at once (default true). */
  ring?: boolean;
  /**
   * The application's own invite session callbacks (a plain object), called after the
   * calls' own; the DUM has one `InviteSessionHandler`, which `WebRtcCalls` sets.
   */
  handler?: InviteSessionHandler;
}

/** Errors of `@sipworks/webrtc`: misuse of a call (`SIP_ERR_WEBRTC_STATE`). */
export class WebRtcError extends Error {
  override name = 'WebRtcError';
  readonly code = 'SIP_ERR_WEBRTC_STATE';
}

/**
 * One call: an invite session and the `RTCPeerConnection` that carries its media. The
 * session's offer/answer exchange (RFC 3264) is the peer connection's: the local
 * description, ICE gathered, goes in the INVITE, the 2xx, or a re-INVITE; the remote one
 * is set from the answer or offer that arrives.
 */
export class WebRtcCall {
  readonly direction: 'outgoing' | 'incoming';
  /** The other party: the Request-URI we called, or the From of the INVITE. */
  readonly remote: string;
  /** The peer connection, once made (at once for an outgoing call, at `answer()` for an incoming one). */
  peerConnection: PeerConnectionLike | undefined;
  /** The invite session's handle. */
  handle: Handle<InviteSession> | undefined;
  /** Why the call ended, once it has. */
  endReason: EndReason | 'failed' | undefined;
  /** The final response of a failed outgoing call. */
  failure: SipResponse | undefined;
  private stateValue: WebRtcCallState;
  private heldValue = false;
  private readonly calls: WebRtcCalls;
  /** @internal The offer of an incoming INVITE (undefined: a late offer, ours goes in the 2xx). */
  remoteOffer: string | undefined;

  /** @internal */
  constructor(
    calls: WebRtcCalls,
    direction: 'outgoing' | 'incoming',
    remote: string,
    state: WebRtcCallState,
  ) {
    this.calls = calls;
    this.direction = direction;
    this.remote = remote;
    this.stateValue = state;
  }

  get state(): WebRtcCallState {
    return this.stateValue;
  }

  /** Whether we put the call on hold (`hold()`, until `resume()`). */
  get held(): boolean {
    return this.heldValue;
  }

  /** @internal */
  setState(state: WebRtcCallState): void {
    if (this.stateValue === state || this.stateValue === 'ended') return;
    this.stateValue = state;
    if (state === 'ended') {
      this.settleReoffer(new WebRtcError('the call ended'));
      this.peerConnection?.close();
    }
    this.calls.changed(this);
  }

  /**
   * Answer an incoming call: a peer connection is made, the INVITE's offer set as its
   * remote description, and the answer (ICE gathered) sent in the 200. For an INVITE
   * without an offer, our offer goes in the 200 and the answer comes in the ACK.
   */
  async answer(): Promise<void> {
    const session = this.session();
    if (this.direction !== 'incoming' || !(session instanceof ServerInviteSession))
      throw new WebRtcError('only an incoming call is answered');
    if (this.stateValue !== 'incoming') throw new WebRtcError(`the call is ${this.stateValue}`);
    const pc = await this.calls.makePeerConnection(this);
    if (this.remoteOffer !== undefined) {
      await pc.setRemoteDescription({ type: 'offer', sdp: this.remoteOffer });
      await pc.setLocalDescription(await pc.createAnswer());
    } else {
      await pc.setLocalDescription(await pc.createOffer());
    }
    const body = await this.calls.gathered(pc);
    if (this.stateValue !== 'incoming' || !this.handle?.isValid()) return;
    session.accept({ body });
  }

  /** Refuse an incoming call (486 Busy Here by default). */
  reject(status = 486): void {
    const session = this.session();
    if (!(session instanceof ServerInviteSession) || this.stateValue !== 'incoming')
      throw new WebRtcError('only an incoming call not yet answered is rejected');
    session.reject(status);
  }

  /** End the call: CANCEL before the answer, BYE after, a 486 for an unanswered incoming one. */
  hangup(): void {
    if (this.stateValue === 'ended') return;
    if (this.stateValue === 'incoming') {
      this.reject();
      return;
    }
    if (this.handle?.isValid()) this.handle.get().end();
    else this.setState('ended');
  }

  /**
   * Put the call on hold with a re-INVITE (RFC 3264 §8.4): the peer connection's
   * transceivers stop sending (`sendonly` where they sent and received, `inactive`
   * where they only received), and the new offer goes out. Resolves when the answer is
   * applied; rejects with a `WebRtcError` when the peer refuses it (the transceivers and
   * the local description are put back).
   */
  hold(): Promise<void> {
    return this.reoffer(true);
  }

  /** Take the call off hold with a re-INVITE: the transceivers send again. */
  resume(): Promise<void> {
    return this.reoffer(false);
  }

  /** @internal Our re-INVITE waiting for its answer. */
  pendingReoffer:
    | {
        hold: boolean;
        previous: TransceiverDirection[];
        resolve: () => void;
        reject: (e: Error) => void;
      }
    | undefined;

  private async reoffer(hold: boolean): Promise<void> {
    const pc = this.peerConnection;
    if (this.stateValue !== 'connected' || !pc)
      throw new WebRtcError(`a call is held or resumed when connected (it is ${this.stateValue})`);
    if (this.pendingReoffer) throw new WebRtcError('a re-INVITE of this call is in progress');
    if (this.heldValue === hold) return;
    const transceivers = pc.getTransceivers();
    const previous = transceivers.map((t) => t.direction);
    for (const t of transceivers) {
      if (t.direction === 'stopped') continue;
      t.direction = hold ? onHold(t.direction) : offHold(t.direction);
    }
    const answered = new Promise<void>((resolve, reject) => {
      this.pendingReoffer = { hold, previous, resolve, reject };
    });
    try {
      await pc.setLocalDescription(await pc.createOffer());
      const sdp = await this.calls.gathered(pc);
      this.session().provideOffer(sdp);
    } catch (e) {
      this.settleReoffer(e instanceof Error ? e : new Error(String(e)));
    }
    await answered;
  }

  /**
   * @internal Our re-INVITE's outcome: the answer was applied (no error), or it was
   * refused or could not be sent (the transceivers go back as they were).
   */
  settleReoffer(error?: Error): void {
    const p = this.pendingReoffer;
    if (!p) return;
    this.pendingReoffer = undefined;
    if (!error) {
      this.heldValue = p.hold;
      this.calls.changed(this);
      p.resolve();
      return;
    }
    const ts = this.peerConnection?.getTransceivers() ?? [];
    ts.forEach((t, i) => {
      const d = p.previous[i];
      if (d !== undefined && t.direction !== 'stopped') t.direction = d;
    });
    p.reject(error instanceof WebRtcError ? error : new WebRtcError(error.message));
  }

  private session(): InviteSession {
    if (!this.handle?.isValid()) throw new WebRtcError('the call has no live session');
    return this.handle.get();
  }
}

function onHold(d: TransceiverDirection): TransceiverDirection {
  return d === 'sendrecv' || d === 'sendonly' ? 'sendonly' : 'inactive';
}

function offHold(d: TransceiverDirection): TransceiverDirection {
  return d === 'sendonly' || d === 'sendrecv' ? 'sendrecv' : 'recvonly';
}

/**
 * WebRTC calls on a DUM: `call()` places one, incoming ones come to `onIncoming`. It
 * sets the DUM's `InviteSessionHandler` and maps each session's offer/answer to its
 * call's `RTCPeerConnection`:
 *
 * | SIP | peer connection |
 * | --- | --- |
 * | our INVITE, re-INVITE, or 2xx to an offerless INVITE | `createOffer`, `setLocalDescription`, ICE gathered, `localDescription.sdp` |
 * | an offer (INVITE, re-INVITE, UPDATE) | `setRemoteDescription(offer)`, `createAnswer`, `setLocalDescription`, ICE gathered |
 * | the answer (1xx/2xx, ACK) | `setRemoteDescription(answer)` |
 * | our re-INVITE refused | `setLocalDescription({ type: 'rollback' })` |
 * | the session ends | `close()` |
 */
export class WebRtcCalls {
  readonly dum: DialogUsageManager;
  private readonly options: WebRtcCallsOptions;
  private readonly byHandle = new Map<number, WebRtcCall>();

  constructor(dum: DialogUsageManager, options: WebRtcCallsOptions) {
    this.dum = dum;
    this.options = options;
    dum.setInviteSessionHandler(this.handler(options.handler ?? {}));
  }

  /** The calls not yet ended. */
  get calls(): WebRtcCall[] {
    return [...new Set(this.byHandle.values())].filter((c) => c.state !== 'ended');
  }

  /**
   * Call `target`: a peer connection is made, its offer created with ICE gathered, and the
   * INVITE sent with it. Resolves with the call once the INVITE is on its way.
   */
  async call(target: string, profile?: Profile): Promise<WebRtcCall> {
    const call = new WebRtcCall(this, 'outgoing', target, 'calling');
    const pc = await this.makePeerConnection(call);
    await pc.setLocalDescription(await pc.createOffer());
    const offer = await this.gathered(pc);
    if (call.state === 'ended') return call;
    const invite = this.dum.makeInviteSession(target, profile ?? this.dum.masterProfile, {
      body: offer,
    });
    const handle = this.dum.send<ClientInviteSession>(invite) as Handle<InviteSession>;
    call.handle = handle;
    this.byHandle.set(handle.id, call);
    this.changed(call);
    return call;
  }

  /** The call of a session handle, if it is one of ours. */
  callOf(handle: Handle<InviteSession>): WebRtcCall | undefined {
    return this.byHandle.get(handle.id);
  }

  /** @internal */
  async makePeerConnection(call: WebRtcCall): Promise<PeerConnectionLike> {
    const pc = await this.options.createPeerConnection(call);
    call.peerConnection = pc;
    return pc;
  }

  /** @internal The local description once ICE gathering completed (or timed out). */
  async gathered(pc: PeerConnectionLike): Promise<string> {
    if (pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const check = () => {
          if (pc.iceGatheringState === 'complete') finish();
        };
        const finish = () => {
          clearTimeout(timer);
          pc.removeEventListener('icegatheringstatechange', check);
          resolve();
        };
        const timer = setTimeout(finish, this.options.iceGatheringTimeoutMs ?? 5000);
        pc.addEventListener('icegatheringstatechange', check);
      });
    }
    const sdp = pc.localDescription?.sdp;
    if (!sdp) throw new WebRtcError('the peer connection has no local description');
    return sdp;
  }

  /** @internal */
  changed(call: WebRtcCall): void {
    try {
      this.options.onChange?.(call);
    } catch (e) {
      this.dum.logger.error({ err: e }, 'WebRtcCalls onChange threw');
    }
  }

  /**
   * Run an asynchronous step of a call; a failure is logged and goes to `onFailure`, or
   * by default ends the call.
   */
  private run(
    call: WebRtcCall,
    what: string,
    step: () => Promise<void>,
    onFailure?: (err: unknown) => void,
  ): void {
    step().catch((err: unknown) => {
      this.dum.logger.error({ err }, `WebRTC call: ${what} failed`);
      if (onFailure) onFailure(err);
      else if (call.handle?.isValid()) {
        const s = call.handle.get();
        if (s instanceof ServerInviteSession && call.state === 'incoming') s.reject(488);
        else s.end();
      } else call.setState('ended');
    });
  }

  private handler(app: InviteSessionHandler): InviteSessionHandler {
    return {
      ...app,
      onNewSession: (h, invite) => {
        const call = new WebRtcCall(this, 'incoming', invite.from.uri.toString(), 'incoming');
        call.handle = h as Handle<InviteSession>;
        this.byHandle.set(h.id, call);
        if (this.options.ring ?? true) h.get().provisional(180);
        app.onNewSession?.(h, invite);
        // An offerless INVITE: no onOffer follows, so the call is announced now.
        if (invite.body.length === 0) this.announce(call);
      },
      onProvisional: (h, res) => {
        const call = this.byHandle.get(h.id);
        if (call && res.status > 100) call.setState('ringing');
        app.onProvisional?.(h, res);
      },
      onOffer: (h, message, body) => {
        const call = this.byHandle.get(h.id);
        if (call) this.offer(call, h, message, body);
        app.onOffer?.(h, message, body);
      },
      onOfferRequired: (h, message) => {
        const call = this.byHandle.get(h.id);
        const pc = call?.peerConnection;
        // A re-INVITE without an offer: ours (the current state) goes in the 200.
        if (call && pc && call.state === 'connected')
          this.run(call, 'the offer for an offerless re-INVITE', async () => {
            await pc.setLocalDescription(await pc.createOffer());
            const sdp = await this.gathered(pc);
            if (h.isValid()) h.get().provideOffer(sdp);
          });
        app.onOfferRequired?.(h, message);
      },
      onAnswer: (h, message, body) => {
        const call = this.byHandle.get(h.id);
        const pc = call?.peerConnection;
        if (call && pc)
          this.run(
            call,
            'setting the remote answer',
            async () => {
              await pc.setRemoteDescription({
                type: 'answer',
                sdp: new TextDecoder().decode(body),
              });
              call.settleReoffer();
            },
            (err) => {
              // The answer to our re-INVITE refused by the browser: the change is undone;
              // the answer to our INVITE refused: no media, so the call ends.
              if (call.pendingReoffer)
                call.settleReoffer(err instanceof Error ? err : new Error(String(err)));
              else if (call.handle?.isValid()) call.handle.get().end();
              else call.setState('ended');
            },
          );
        app.onAnswer?.(h, message, body);
      },
      onOfferRejected: (h, res) => {
        const call = this.byHandle.get(h.id);
        const pc = call?.peerConnection;
        if (pc && pc.signalingState === 'have-local-offer')
          pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
        call?.settleReoffer(
          new WebRtcError(
            `the peer refused the re-INVITE${res ? ` (${res.status} ${res.reason})` : ''}`,
          ),
        );
        app.onOfferRejected?.(h, res);
      },
      onConnected: (h, message) => {
        this.byHandle.get(h.id)?.setState('connected');
        app.onConnected?.(h, message);
      },
      onFailure: (h, res) => {
        const call = this.byHandle.get(h.id);
        if (call) {
          call.failure = res;
          call.endReason = 'failed';
        }
        app.onFailure?.(h, res);
      },
      onTerminated: (h, reason, message) => {
        const call = this.byHandle.get(h.id);
        if (call) {
          call.endReason ??= reason;
          this.byHandle.delete(h.id);
          call.setState('ended');
        }
        app.onTerminated?.(h, reason, message);
      },
    };
  }

  private offer(
    call: WebRtcCall,
    h: Handle<InviteSession>,
    message: SipRequest | SipResponse,
    body: Uint8Array,
  ): void {
    const sdp = new TextDecoder().decode(body);
    if (call.state === 'incoming' && message instanceof SipRequest) {
      // The INVITE's offer: answered when the application calls `answer()`.
      call.remoteOffer = sdp;
      this.announce(call);
      return;
    }
    const pc = call.peerConnection;
    if (!pc) return;
    // An offer in a re-INVITE or UPDATE (the peer holds, resumes, or changes the media).
    this.run(
      call,
      'answering an offer',
      async () => {
        await pc.setRemoteDescription({ type: 'offer', sdp });
        await pc.setLocalDescription(await pc.createAnswer());
        const answer = await this.gathered(pc);
        if (h.isValid()) h.get().provideAnswer(answer);
      },
      () => {
        // RFC 3264 §8: an offer we cannot take is refused; the session goes on as it was.
        if (pc.signalingState === 'have-remote-offer')
          pc.setRemoteDescription({ type: 'rollback' }).catch(() => {});
        if (h.isValid()) h.get().reject(488);
      },
    );
  }

  private announce(call: WebRtcCall): void {
    try {
      this.options.onIncoming?.(call);
    } catch (e) {
      this.dum.logger.error({ err: e }, 'WebRtcCalls onIncoming threw');
    }
    this.changed(call);
  }
}

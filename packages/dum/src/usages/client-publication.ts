import type { SipRequest, SipResponse } from '@sipworks/message';
import type { TimerHandle } from '@sipworks/stack';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type { ClientPublicationHandler } from '../handlers.ts';
import type { Profile } from '../profile.ts';
import { BaseUsage } from './base.ts';
import { refreshDelaySeconds } from './client-registration.ts';

export type ClientPublicationState = 'publishing' | 'published' | 'removing' | 'ended';

/** How many 412 or 423 answers in a row are recovered from before giving up. */
const MAX_RECOVERIES = 3;

/**
 * A publication of event state (RFC 3903 §4): the PUBLISH made by
 * `dum.makePublication`, sent by `dum.send`. A 2xx gives the entity tag (`etag`) and
 * `onSuccess`; the publication is refreshed before it expires (SIP-If-Match, no body,
 * §4.3), `update(body)` modifies it (SIP-If-Match with the new body, §4.4) and `end()`
 * removes it (Expires: 0, §4.5). A 412 makes a new initial PUBLISH with the body
 * (§4.3: the state agent lost our state); a 423 is retried with Min-Expires. One
 * PUBLISH at a time: a later operation waits for the one in flight.
 */
export class ClientPublication extends BaseUsage {
  get kind(): 'ClientPublication' {
    return 'ClientPublication';
  }
  private readonly profile: Profile;
  private readonly handler: ClientPublicationHandler | undefined;
  private last: SipRequest;
  private cseq: number;
  private requested: number;
  private body: Uint8Array;
  private contentType: string;
  private st: ClientPublicationState = 'publishing';
  private inFlight = false;
  private queued: (() => void) | undefined;
  private recoveries = 0;
  private timer: TimerHandle | undefined;
  /** The entity tag of the published state, from the last 2xx. */
  etag: string | undefined;
  /** The expiry granted (s), from the last 2xx. */
  expires = 0;

  constructor(
    dum: DialogUsageManager,
    request: SipRequest,
    profile: Profile,
    handler: ClientPublicationHandler | undefined,
  ) {
    super(dum);
    this.last = request;
    this.profile = profile;
    this.handler = handler;
    this.cseq = request.cseq.seq;
    this.requested = request.expires ?? profile.get('defaultPublicationExpires');
    this.body = request.body;
    this.contentType = request.contentType?.toString() ?? 'text/plain';
  }

  get state(): ClientPublicationState {
    return this.st;
  }

  /** The PUBLISH as last sent. */
  get request(): SipRequest {
    return this.last;
  }

  /** @internal */
  start(): void {
    this.transmit(this.last, false);
  }

  /** Refresh now (SIP-If-Match, no body). */
  refresh(): void {
    this.assertLive();
    this.publish('refresh');
  }

  /** Replace the published state (SIP-If-Match with the new body). */
  update(body: Uint8Array | string, contentType = this.contentType): void {
    this.assertLive();
    if (this.st === 'removing')
      throw new DumError('SIP_ERR_DUM_STATE', 'the publication is being removed');
    this.body = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    this.contentType = contentType;
    this.publish('modify');
  }

  /** Remove the publication (Expires: 0); `onRemove` follows and the usage ends. */
  end(): void {
    if (this.isEnded || this.st === 'removing') return;
    this.st = 'removing';
    if (this.etag === undefined && !this.inFlight) {
      this.finish();
      return;
    }
    this.publish('remove');
  }

  private publish(op: 'initial' | 'refresh' | 'modify' | 'remove'): void {
    this.stopTimer();
    if (this.inFlight) {
      this.queued = () => this.publish(op);
      return;
    }
    if (op === 'remove' && this.etag === undefined) {
      this.finish();
      return;
    }
    const req = this.last.clone();
    req.removeHeader('Via');
    req.removeHeader('Authorization');
    req.removeHeader('Proxy-Authorization');
    req.removeHeader('SIP-If-Match');
    if (op !== 'initial' && this.etag !== undefined) req.setHeader('SIP-If-Match', this.etag);
    req.setHeader('Expires', String(op === 'remove' ? 0 : this.requested));
    if (op === 'initial' || op === 'modify') req.setBody(this.body, this.contentType);
    else req.setBody(new Uint8Array(0));
    if (op === 'refresh' || op === 'remove') req.removeHeader('Content-Type');
    this.transmit(req, true);
  }

  private transmit(req: SipRequest, next: boolean): void {
    if (next) req.setHeader('CSeq', `${++this.cseq} PUBLISH`);
    this.last = req;
    this.inFlight = true;
    this.dum.sendClient(req, this.profile, (res) => this.receive(req, res));
  }

  private receive(sent: SipRequest, res: SipResponse): void {
    this.inFlight = false;
    this.cseq = Math.max(this.cseq, res.cseq.seq);
    if (this.isEnded) return;
    const ok = res.status >= 200 && res.status < 300;
    if (ok) {
      this.recoveries = 0;
      const etag = res.header('SIP-ETag');
      if (etag !== undefined) this.etag = etag.trim();
      if (this.st === 'removing' && sent.expires === 0) {
        this.notify(() => this.handler?.onRemove?.(this.handle(), res));
        this.finish();
        return;
      }
    }
    const queued = this.queued;
    if (queued) {
      this.queued = undefined;
      queued();
      return;
    }
    if (ok) {
      if (this.st === 'removing') {
        this.publish('remove');
        return;
      }
      this.st = 'published';
      this.expires = res.expires ?? sent.expires ?? this.requested;
      if (this.expires > 0)
        this.timer = this.dum.stack.clock.setTimeout(() => {
          this.timer = undefined;
          if (!this.isEnded) this.publish('refresh');
        }, refreshDelaySeconds(this.expires) * 1000);
      this.notify(() => this.handler?.onSuccess?.(this.handle(), res));
      return;
    }
    if (res.status === 412 && this.st !== 'removing' && this.recoveries < MAX_RECOVERIES) {
      // §4.3: the state agent does not know our entity tag: publish from scratch.
      this.recoveries++;
      this.etag = undefined;
      this.publish('initial');
      return;
    }
    if (res.status === 423 && this.recoveries < MAX_RECOVERIES) {
      let min: number | undefined;
      try {
        min = res.get<number>('Min-Expires');
      } catch {
        min = undefined;
      }
      if (typeof min === 'number' && min > this.requested) {
        this.recoveries++;
        this.requested = min;
        this.publish(this.etag === undefined ? 'initial' : 'modify');
        return;
      }
    }
    this.notify(() => this.handler?.onFailure?.(this.handle(), res));
    this.finish();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) this.dum.stack.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private finish(): void {
    this.stopTimer();
    this.queued = undefined;
    this.st = 'ended';
    this.destroy();
  }
}

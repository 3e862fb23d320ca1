import type { Contact, NameAddr, SipRequest, SipResponse } from '@sipworks/message';
import type { TimerHandle } from '@sipworks/stack';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type { ClientRegistrationHandler } from '../handlers.ts';
import type { Profile } from '../profile.ts';
import { BaseUsage } from './base.ts';

export type ClientRegistrationState =
  | 'registering'
  | 'registered'
  | 'retrying'
  | 'removing'
  | 'ended';

/** How many 423 answers in a row are followed before giving up. */
const MAX_INTERVAL_RETRIES = 3;

/**
 * When to refresh a registration granted for `expires` seconds: at the smaller of
 * `expires - 5` and `expires * 0.9` (reSIProcate's `Helper::aBitSmallerThan`), never
 * sooner than one second. 3600 s is refreshed after 3240 s; 60 s after 54 s.
 */
export function refreshDelaySeconds(expires: number): number {
  return Math.max(1, Math.min(expires - 5, expires * 0.9));
}

/**
 * A registration with a registrar (RFC 3261 §10.2): the REGISTER made by
 * `dum.makeRegistration`, sent by `dum.send`. Every REGISTER of the usage keeps the
 * Call-ID and raises the CSeq (§10.2.4). A 2xx gives `onSuccess` with the bindings the
 * registrar returned (`allContacts`, `myContacts`) and schedules the refresh
 * (`refreshDelaySeconds` of the expiry granted to our Contact); 423 is retried with
 * Min-Expires; 401/407 are answered by the `ClientAuthManager`; other failures go to
 * `onFailure`, and `onRequestRetry` decides whether and when to try again.
 */
export class ClientRegistration extends BaseUsage {
  readonly kind = 'ClientRegistration';
  private readonly profile: Profile;
  private readonly handler: ClientRegistrationHandler | undefined;
  private st: ClientRegistrationState = 'registering';
  /** The REGISTER as last sent. */
  private last: SipRequest;
  /** Our Contacts, as sent (without `expires`). */
  private readonly mine: Contact[];
  private cseq: number;
  /** Expiry asked for (s). */
  private requested: number;
  private intervalRetries = 0;
  private inFlight = false;
  private ending = false;
  private timer: TimerHandle | undefined;
  /** A REGISTER waiting for the one in flight to finish (§10.2: one at a time). */
  private queued: (() => void) | undefined;
  /** Every binding of the address of record, from the last 2xx. */
  allContacts: NameAddr[] = [];
  /** Our bindings among them, from the last 2xx. */
  myContacts: NameAddr[] = [];
  /** The Service-Route of the last 2xx (RFC 3608), to use as the route set of requests. */
  serviceRoute: NameAddr[] = [];
  /** The expiry (s) the registrar granted, from the last 2xx. */
  expires = 0;
  /** Whether the profile's serviceRoute was set by this registration (cleared when it ends). */
  private ownsServiceRoute = false;

  constructor(
    dum: DialogUsageManager,
    request: SipRequest,
    profile: Profile,
    handler: ClientRegistrationHandler | undefined,
  ) {
    super(dum);
    this.last = request;
    this.profile = profile;
    this.handler = handler;
    this.cseq = request.cseq.seq;
    this.requested = request.expires ?? profile.get('defaultRegistrationExpires');
    this.mine = request.contacts.filter((c) => !c.star).map((c) => withoutExpires(c));
  }

  get state(): ClientRegistrationState {
    return this.st;
  }

  /** The REGISTER as last sent. */
  get request(): SipRequest {
    return this.last;
  }

  /** @internal Send the first REGISTER. */
  start(): void {
    this.transmit(this.last, false);
  }

  /** Register again now (a refresh), with the expiry asked for. */
  refresh(): void {
    this.assertLive();
    if (this.st === 'removing')
      throw new DumError('SIP_ERR_DUM_STATE', 'the bindings are being removed');
    this.send(this.requested, this.mine);
  }

  /** Remove our bindings (Expires 0 for each of our Contacts); `onRemoved` follows and the usage ends. */
  removeMyBindings(): void {
    this.assertLive();
    this.st = 'removing';
    this.send(0, this.mine);
  }

  /** Remove every binding of the address of record (`Contact: *`, Expires: 0, §10.2.2); `onRemoved` follows and the usage ends. */
  removeAll(): void {
    this.assertLive();
    this.st = 'removing';
    this.send(0, '*');
  }

  /**
   * Stop: our bindings are removed when the registrar holds them (or when the REGISTER
   * in flight is accepted), else the usage just ends.
   */
  end(): void {
    if (this.isEnded || this.st === 'removing') return;
    if (this.st === 'registered') {
      this.removeMyBindings();
      return;
    }
    this.stopTimer();
    this.queued = undefined;
    if (this.inFlight) this.ending = true;
    else this.finish();
  }

  private send(expires: number, contacts: Contact[] | '*'): void {
    this.stopTimer();
    if (this.inFlight) {
      this.queued = () => this.send(expires, contacts);
      return;
    }
    const req = this.last.clone();
    req.removeHeader('Via');
    req.removeHeader('Authorization');
    req.removeHeader('Proxy-Authorization');
    req.setHeader('Expires', String(expires));
    if (contacts === '*') req.setHeader('Contact', '*');
    else
      req.setHeader(
        'Contact',
        contacts.map((c) => c.clone()),
      );
    this.transmit(req, true);
  }

  private transmit(req: SipRequest, next: boolean): void {
    if (next) req.setHeader('CSeq', `${++this.cseq} REGISTER`);
    this.last = req;
    this.inFlight = true;
    this.dum.sendClient(req, this.profile, (res) => this.receive(req, res));
  }

  private receive(sent: SipRequest, res: SipResponse): void {
    this.inFlight = false;
    // Credentials raise the CSeq within the Call-ID: keep counting from there.
    this.cseq = Math.max(this.cseq, res.cseq.seq);
    if (this.isEnded) return;
    if (this.ending) {
      this.ending = false;
      if (res.status < 300 && res.status >= 200 && this.mine.length > 0) {
        // Registered while ending: take the bindings away again.
        this.st = 'removing';
        this.send(0, this.mine);
      } else this.finish();
      return;
    }
    const queued = this.queued;
    if (queued) {
      // A newer REGISTER (a removal, a refresh) supersedes this answer.
      this.queued = undefined;
      queued();
      return;
    }
    if (res.status >= 200 && res.status < 300) {
      this.intervalRetries = 0;
      this.readBindings(res);
      if (this.st === 'removing') {
        this.notify(() => this.handler?.onRemoved?.(this.handle(), res));
        this.finish();
        return;
      }
      if (this.mine.length === 0) {
        // A query (no Contact, §10.2.3): nothing to refresh.
        this.notify(() => this.handler?.onSuccess?.(this.handle(), res));
        this.finish();
        return;
      }
      this.st = 'registered';
      this.expires = this.grantedExpires(res, sent);
      if (this.expires > 0)
        this.startTimer(refreshDelaySeconds(this.expires) * 1000, () => this.refresh());
      this.notify(() => this.handler?.onSuccess?.(this.handle(), res));
      return;
    }
    if (res.status === 423 && this.st !== 'removing') {
      const min = minExpires(res);
      if (
        min !== undefined &&
        min > this.requested &&
        this.intervalRetries < MAX_INTERVAL_RETRIES
      ) {
        this.intervalRetries++;
        this.requested = min;
        this.send(min, this.mine);
        return;
      }
    }
    this.fail(res);
  }

  private fail(res: SipResponse): void {
    const wasRemoving = this.st === 'removing';
    this.notify(() => this.handler?.onFailure?.(this.handle(), res));
    if (this.isEnded) return;
    if (wasRemoving) {
      this.finish();
      return;
    }
    let retryAfter = -1;
    try {
      const ra = res.get<{ seconds: number }>('Retry-After');
      if (ra && Number.isFinite(ra.seconds)) retryAfter = ra.seconds;
    } catch {
      retryAfter = -1;
    }
    let wait = retryAfter;
    const h = this.handler;
    if (h?.onRequestRetry) {
      wait = -1;
      this.notify(() => {
        wait = h.onRequestRetry?.(this.handle(), retryAfter, res) ?? -1;
      });
    }
    if (this.isEnded) return;
    if (wait < 0 || !Number.isFinite(wait)) {
      this.finish();
      return;
    }
    this.st = 'retrying';
    this.startTimer(wait * 1000, () => {
      this.st = 'registering';
      this.send(this.requested, this.mine);
    });
  }

  private readBindings(res: SipResponse): void {
    let all: Contact[] = [];
    try {
      all = res.contacts.filter((c) => !c.star);
      if (this.st !== 'removing') {
        // RFC 3608 §6.1: each 2xx replaces the stored Service-Route (an absent one clears it).
        this.serviceRoute = res.getAll<NameAddr>('Service-Route');
        this.profile.set('serviceRoute', this.serviceRoute);
        this.ownsServiceRoute = true;
      }
    } catch (e) {
      this.dum.logger.warn({ err: e }, 'a REGISTER 2xx has malformed Contact or Service-Route');
    }
    this.allContacts = all;
    this.myContacts = all.filter((c) => this.mine.some((m) => sameUri(m, c)));
  }

  /** The expiry the registrar granted our Contacts: their `expires`, else Expires, else what we asked. */
  private grantedExpires(res: SipResponse, sent: SipRequest): number {
    let granted: number | undefined;
    try {
      for (const c of this.myContacts) {
        const e = (c as Contact).expires;
        if (e !== undefined) granted = granted === undefined ? e : Math.min(granted, e);
      }
      granted ??= res.expires;
    } catch {
      granted = undefined;
    }
    return granted ?? sent.expires ?? this.requested;
  }

  private startTimer(ms: number, fire: () => void): void {
    this.stopTimer();
    const clock = this.dum.stack.clock;
    this.timer = clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.isEnded) fire();
    }, ms);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) this.dum.stack.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private notify(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.dum.logger.error({ err: e }, 'ClientRegistrationHandler threw');
    }
  }

  private finish(): void {
    this.stopTimer();
    this.st = 'ended';
    if (this.ownsServiceRoute && this.profile.get('serviceRoute') === this.serviceRoute) {
      // RFC 3608 §6.1: the Service-Route lasts as long as the registration.
      this.profile.unset('serviceRoute');
    }
    this.ownsServiceRoute = false;
    this.serviceRoute = [];
    this.destroy();
  }
}

function withoutExpires(c: Contact): Contact {
  const x = c.clone();
  x.params.delete('expires');
  return x;
}

function sameUri(a: NameAddr, b: NameAddr): boolean {
  try {
    return a.uri.equals(b.uri);
  } catch {
    return false;
  }
}

function minExpires(res: SipResponse): number | undefined {
  try {
    const v = res.get<number>('Min-Expires');
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

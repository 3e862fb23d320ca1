import {
  type Contact,
  type NameAddr,
  parseUri,
  type SipRequest,
  type SipResponse,
  type Uri,
} from '@sipworks/message';
import type { ClientTransactionLike, Flow, TimerHandle } from '@sipworks/stack';
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

/** Failures after which an outbound registration backs off and tries again (RFC 5626 §4.5). */
const RECOVERABLE = new Set([408, 480, 500, 502, 503, 504]);

/**
 * How long to wait after `failures` consecutive failures to form a flow (RFC 5626 §4.5):
 * `min(max, base * 2^failures)`, then a random part of it between 50% and 100%.
 * With base 30 s: 15-30 s after the first failure, 30-60 s after the second...
 */
export function outboundBackoffSeconds(
  failures: number,
  baseSeconds: number,
  maxSeconds: number,
  random: () => number = Math.random,
): number {
  const wait = Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, failures));
  return wait * (0.5 + 0.5 * random());
}

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
  get kind(): 'ClientRegistration' {
    return 'ClientRegistration';
  }
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
  /** The public GRUU of our instance (RFC 5627 §3.1), from the last 2xx. */
  pubGruu: Uri | undefined;
  /** The latest temporary GRUU (RFC 5627 §3.2), from the last 2xx. */
  tempGruu: Uri | undefined;
  /**
   * The flow of an outbound registration (RFC 5626 §4.2.1): the transport and connection
   * its last 2xx came on, while the registrar supports outbound (`Require: outbound`).
   */
  flow: Flow | undefined;
  /** Whether the registrar accepted outbound for our Contact (its 2xx had `Require: outbound`). */
  outboundActive = false;
  /** Keep-alive pongs seen on the current flow (RFC 5626 §4.4.1). */
  pongs = 0;
  /** Failures in a row to register again after a flow failed (RFC 5626 §4.5). */
  consecutiveFailures = 0;
  private keepAliveTimer: TimerHandle | undefined;
  private unwatchFlow: (() => void) | undefined;
  /** The registrar's Flow-Timer (s), if it sent one (RFC 5626 §4.4.1). */
  private flowTimer: number | undefined;
  /** Whether the profile's GRUUs were set by this registration (cleared when it ends). */
  private ownsGruu = false;
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
    this.dum.sendClient(req, this.profile, (res, tx) => this.receive(req, res, tx));
  }

  private receive(sent: SipRequest, res: SipResponse, tx?: ClientTransactionLike): void {
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
      this.consecutiveFailures = 0;
      this.startFlow(res, tx);
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
    // RFC 5626 §4.5: an outbound registration keeps trying to form a flow, backing off.
    if (
      retryAfter < 0 &&
      RECOVERABLE.has(res.status) &&
      this.profile.get('outbound') &&
      this.profile.get('instanceId')
    ) {
      retryAfter = outboundBackoffSeconds(
        this.consecutiveFailures,
        this.profile.get('outboundBackoffBaseSeconds'),
        this.profile.get('outboundBackoffMaxSeconds'),
      );
      this.consecutiveFailures++;
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
    this.myContacts = all.filter((c) => this.mine.some((m) => sameUri(m, c) || sameFlow(m, c)));
    if (this.st !== 'removing') this.readGruus();
  }

  /** RFC 5627 §4.2: the `pub-gruu` and `temp-gruu` of our binding, kept on the profile too. */
  private readGruus(): void {
    let pub: Uri | undefined;
    let temp: Uri | undefined;
    for (const c of this.myContacts) {
      try {
        const p = c.params.get('pub-gruu');
        const t = c.params.get('temp-gruu');
        if (p) pub ??= parseUri(p);
        if (t) temp ??= parseUri(t);
      } catch (e) {
        this.dum.logger.warn({ err: e }, 'a REGISTER 2xx has a malformed GRUU');
      }
    }
    this.pubGruu = pub;
    this.tempGruu = temp;
    if (pub || temp || this.ownsGruu) {
      this.profile.set('publicGruu', pub);
      this.profile.set('tempGruu', temp);
      this.ownsGruu = true;
    }
  }

  /**
   * RFC 5626 §4.2.1, §4.4.1: after a 2xx with `Require: outbound`, keep the flow it came on
   * and keep it alive: a CRLFCRLF ping every Flow-Timer (80-100% of it) or the profile's
   * outboundKeepAliveSeconds (else 95-120 s), each waiting outboundPongTimeoutSeconds for
   * its pong. A missing pong or a closed connection fails the flow (`flowFailed`).
   * Datagram flows are kept but not pinged (STUN keep-alives, §4.4.2, are not done).
   */
  private startFlow(res: SipResponse, tx: ClientTransactionLike | undefined): void {
    this.stopFlow();
    if (!this.profile.get('outbound') || !this.profile.get('instanceId')) return;
    let required: string[] = [];
    let flowTimer: number | undefined;
    try {
      required = res.getAll<string>('Require').map((t) => t.toLowerCase());
      const ft = Number(res.header('Flow-Timer'));
      if (res.has('Flow-Timer') && Number.isFinite(ft) && ft > 0) flowTimer = ft;
    } catch {
      required = [];
    }
    this.outboundActive = required.includes('outbound');
    if (!this.outboundActive || !tx?.flow) return;
    const flow = tx.flow;
    this.flow = flow;
    this.flowTimer = flowTimer;
    this.pongs = 0;
    if (flow.transport.reliable) {
      if (flow.destination.connectionId === undefined) return;
      this.unwatchFlow = this.dum.watchFlow(flow, () => this.flowFailed('the connection closed'));
    }
    // A datagram flow is kept alive with STUN (RFC 5626 §4.4.2), a stream with CRLFCRLF.
    this.scheduleKeepAlive();
  }

  private scheduleKeepAlive(): void {
    const r = Math.random();
    const configured = this.profile.get('outboundKeepAliveSeconds');
    // RFC 5626 §4.4.1: 80-100% of the Flow-Timer, else of 120 s on a stream and 29 s on UDP.
    const reliable = this.flow?.transport.reliable ?? true;
    const seconds =
      this.flowTimer !== undefined
        ? this.flowTimer * (0.8 + 0.2 * r)
        : (configured ?? (reliable ? 95 + 25 * r : 29 * (0.8 + 0.2 * r)));
    const clock = this.dum.stack.clock;
    this.keepAliveTimer = clock.setTimeout(() => {
      this.keepAliveTimer = undefined;
      this.sendKeepAlive();
    }, seconds * 1000);
  }

  private sendKeepAlive(): void {
    const flow = this.flow;
    if (!flow || this.isEnded) return;
    const timeout = this.profile.get('outboundPongTimeoutSeconds') * 1000;
    this.dum.stack.sendKeepAlive(flow, timeout).then(
      (ok) => {
        if (this.isEnded || this.flow !== flow) return;
        if (ok) {
          this.pongs++;
          this.scheduleKeepAlive();
        } else this.flowFailed('no pong to a keep-alive');
      },
      (e: unknown) => {
        this.dum.logger.warn({ err: e }, 'keep-alive not sent');
        if (!this.isEnded && this.flow === flow) this.flowFailed('the keep-alive failed');
      },
    );
  }

  /** RFC 5626 §4.4.1, §4.5: the flow failed: `onFlowTerminated`, then register again at once to form a new one. */
  private flowFailed(why: string): void {
    const flow = this.flow;
    if (!flow) return;
    this.stopFlow();
    // A connection that answers no pong is dead: close it, so the REGISTER opens a new one.
    this.dum.stack.closeFlow(flow);
    this.dum.logger.info({ why, registration: this.handleId }, 'outbound flow failed');
    this.notify(() => this.handler?.onFlowTerminated?.(this.handle()));
    // The stack is going away (its transports closing): nothing to register again on.
    if (!this.dum.stack.running) return;
    if (this.isEnded || this.st !== 'registered' || this.inFlight) return;
    this.st = 'registering';
    this.send(this.requested, this.mine);
  }

  private stopFlow(): void {
    if (this.keepAliveTimer !== undefined) this.dum.stack.clock.clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    this.unwatchFlow?.();
    this.unwatchFlow = undefined;
    this.flow = undefined;
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

  private finish(): void {
    this.stopTimer();
    this.st = 'ended';
    if (this.ownsServiceRoute && this.profile.get('serviceRoute') === this.serviceRoute) {
      // RFC 3608 §6.1: the Service-Route lasts as long as the registration.
      this.profile.unset('serviceRoute');
    }
    this.ownsServiceRoute = false;
    this.serviceRoute = [];
    if (this.ownsGruu) {
      // RFC 5627 §4.2: the GRUUs go with the registration.
      this.profile.unset('publicGruu');
      this.profile.unset('tempGruu');
      this.ownsGruu = false;
    }
    this.stopFlow();
    this.outboundActive = false;
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

/** The same instance and flow (RFC 5626 §6): equal `+sip.instance` and `reg-id`. */
function sameFlow(a: NameAddr, b: NameAddr): boolean {
  const ia = a.params.get('+sip.instance');
  if (!ia || ia !== b.params.get('+sip.instance')) return false;
  return a.params.get('reg-id') === b.params.get('reg-id');
}

function minExpires(res: SipResponse): number | undefined {
  try {
    const v = res.get<number>('Min-Expires');
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

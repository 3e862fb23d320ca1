import type { SessionExpires, SipMessage, SipRequest, SipResponse } from '@sipworks/message';
import type { Logger } from '@sipworks/stack';
import type { Profile } from '../profile.ts';
import { hasOptionTag } from './prack.ts';

/** The smallest Session-Expires RFC 4028 allows (§4): 90 s. */
export const MIN_SESSION_EXPIRES = 90;

/**
 * What the session timer needs from its invite session, which is the host itself: no
 * object or closures of their own per session.
 */
export interface SessionTimerHost {
  sessionTimerStart(name: string, ms: number, fire: () => void): void;
  sessionTimerStop(name: string): void;
  /** Send a session refresh (RFC 4028 §7.4, §9): false when none can go now. */
  sessionRefresh(method: 'INVITE' | 'UPDATE'): boolean;
  /** The session expired without a refresh (§10): BYE, onSessionExpired. */
  sessionExpire(): void;
}

/** A request refused by the session timer: 422 with our Min-SE (§8.1). */
export interface Refusal {
  status: number;
  headers: [string, string][];
}

/**
 * The session timer of one invite session (RFC 4028), when the profile's
 * `sessionTimers` is on.
 *
 * - Requests we send (INVITE, re-INVITE, UPDATE) ask for `sessionExpires` (at least the
 *   Min-SE learned from a 422) with Min-SE; the refresher we ask for is the profile's
 *   `sessionRefresher` at first, then whoever refreshes now (§7.1, §7.4).
 * - A request below our Min-SE gets 422 (§8.1); our 2xx says the interval and who
 *   refreshes: the request's choice, else `uac` when the caller supports timers and
 *   the profile does not ask for `uas`, else `uas` (§9).
 * - After each 2xx (either way) the timer restarts: the refresher refreshes at half the
 *   interval, by UPDATE when the peer allows it, else by re-INVITE (§10); both sides
 *   end the session with a BYE at interval - min(32, interval/3) without a refresh.
 * - A 2xx without Session-Expires to our request from a peer without timers: we refresh
 *   ourselves, at the interval we asked for (§7.2).
 */
export class SessionTimer {
  private readonly host: SessionTimerHost;
  private readonly profile: Profile;
  private readonly logger: Logger;
  /** The negotiated interval (s), 0 while there is none. */
  private interval = 0;
  /** Who refreshes: us or the peer. */
  private who: 'local' | 'remote' | undefined;
  /** The largest Min-SE a 422 told us (§7.3). */
  private learnedMinSE = 0;
  private peerAllowsUpdate = false;

  constructor(host: SessionTimerHost, profile: Profile, logger: Logger) {
    this.host = host;
    this.profile = profile;
    this.logger = logger;
    this.who = undefined;
  }

  get enabled(): boolean {
    return this.profile.get('sessionTimers');
  }

  /** The negotiated session interval in seconds (0 when no timer runs). */
  get sessionInterval(): number {
    return this.interval;
  }

  /** Who refreshes the session, once negotiated. */
  get refresher(): 'local' | 'remote' | undefined {
    return this.who;
  }

  /**
   * Our Min-SE: the profile's (90 s, RFC 4028 §4's floor, unless a test or lab profile
   * sets it lower on purpose), or the larger one a 422 taught us.
   */
  private get minSE(): number {
    return Math.max(1, this.profile.get('minSE'), this.learnedMinSE);
  }

  /** Session-Expires and Min-SE for a request we send (§7.1, §7.4). */
  decorateRequest(req: SipRequest): void {
    if (!this.enabled || req.has('Session-Expires')) return;
    const interval = Math.max(this.interval || this.profile.get('sessionExpires'), this.minSE);
    let refresher = '';
    if (this.who === 'local') refresher = ';refresher=uac';
    else if (this.who === 'remote') refresher = ';refresher=uas';
    else {
      const pref = this.profile.get('sessionRefresher');
      if (pref !== 'none') refresher = `;refresher=${pref}`;
    }
    req.setHeader('Session-Expires', `${interval}${refresher}`);
    req.setHeader('Min-SE', String(this.minSE));
  }

  /**
   * A 422 to our request (§7.3): remember its Min-SE and raise the interval asked for.
   * Returns true when the request should be sent again (the Min-SE grew), after which
   * `retarget` sets the new headers on the copy.
   */
  receive422(res: SipResponse): boolean {
    if (!this.enabled) return false;
    const min = sessionExpiresOf(res, 'Min-SE')?.deltaSeconds;
    if (min === undefined || !Number.isFinite(min) || min <= this.minSE) return false;
    this.learnedMinSE = min;
    if (this.interval > 0 && this.interval < min) this.interval = min;
    return true;
  }

  /** The headers of a request to send again after a 422 (§7.3). */
  retarget(req: SipRequest): void {
    const old = sessionExpiresOf(req, 'Session-Expires');
    const interval = Math.max(old?.deltaSeconds ?? 0, this.minSE);
    const refresher = old?.refresher;
    req.setHeader('Session-Expires', `${interval}${refresher ? `;refresher=${refresher}` : ''}`);
    req.setHeader('Min-SE', String(this.minSE));
  }

  /** A request of the peer's: 422 when it asks for less than our Min-SE (§8.1). */
  check(req: SipRequest): Refusal | undefined {
    if (!this.enabled) return undefined;
    let se: SessionExpires | undefined;
    try {
      se = req.get<SessionExpires>('Session-Expires');
    } catch {
      return { status: 400, headers: [] };
    }
    if (se === undefined || se.deltaSeconds >= this.minSE) return undefined;
    return { status: 422, headers: [['Min-SE', String(this.minSE)]] };
  }

  /** Session-Expires (and Require: timer) for our 2xx to a request of the peer's (§9). */
  responseHeaders(req: SipRequest): [string, string][] {
    if (!this.enabled) return [];
    const se = sessionExpiresOf(req, 'Session-Expires');
    const peerSupports =
      hasOptionTag(req, 'Supported', 'timer') || hasOptionTag(req, 'Require', 'timer');
    const pref = this.profile.get('sessionRefresher');
    let interval: number;
    let refresher: 'uac' | 'uas';
    if (se) {
      interval = Math.max(se.deltaSeconds, this.minSE);
      refresher = se.refresher ?? (peerSupports && pref !== 'uas' ? 'uac' : 'uas');
    } else {
      interval = Math.max(this.interval || this.profile.get('sessionExpires'), this.minSE);
      refresher = peerSupports && pref === 'uac' ? 'uac' : 'uas';
    }
    // §9: a caller without timer support cannot refresh.
    if (!peerSupports) refresher = 'uas';
    const headers: [string, string][] = [['Session-Expires', `${interval};refresher=${refresher}`]];
    if (peerSupports) headers.push(['Require', 'timer']);
    return headers;
  }

  /**
   * A 2xx to an INVITE, re-INVITE or UPDATE: `sentByUs` when the request was ours. The
   * interval and refresher are read and the timer restarts (§7.2, §9, §10).
   */
  negotiated(req: SipRequest, res: SipResponse, sentByUs: boolean): void {
    if (!this.enabled) return;
    this.peerAllowsUpdate = allowsUpdate(sentByUs ? res : req) ?? this.peerAllowsUpdate;
    const se = sessionExpiresOf(res, 'Session-Expires');
    let interval: number;
    let role: 'uac' | 'uas';
    if (se) {
      interval = se.deltaSeconds;
      role = se.refresher ?? 'uac';
    } else {
      // §7.2: no Session-Expires in the 2xx to ours: the peer has no timers; we refresh
      // at what we asked for. A 2xx of ours without one: no timer.
      const asked = sentByUs ? sessionExpiresOf(req, 'Session-Expires') : undefined;
      if (!asked) {
        this.stop();
        return;
      }
      interval = asked.deltaSeconds;
      role = 'uac';
    }
    if (!Number.isFinite(interval) || interval < 1) {
      this.logger.warn({ interval }, 'an invalid Session-Expires: no session timer');
      this.stop();
      return;
    }
    this.interval = interval;
    this.who = (role === 'uac') === sentByUs ? 'local' : 'remote';
    this.schedule();
  }

  /** No timer runs anymore (the session ends). */
  stop(): void {
    this.host.sessionTimerStop('session-refresh');
    this.host.sessionTimerStop('session-expire');
  }

  private schedule(): void {
    this.stop();
    const ms = this.interval * 1000;
    if (this.who === 'local')
      this.host.sessionTimerStart('session-refresh', ms / 2, () => this.refreshNow());
    // §10: the session ends without a refresh, a little before the interval.
    const expiry = ms - Math.min(32_000, ms / 3);
    this.host.sessionTimerStart('session-expire', expiry, () => this.host.sessionExpire());
  }

  private refreshNow(): void {
    const method = this.peerAllowsUpdate ? 'UPDATE' : 'INVITE';
    if (this.host.sessionRefresh(method)) return;
    // A modification is in progress (it refreshes too when it succeeds): try again soon.
    this.host.sessionTimerStart('session-refresh', 1000, () => this.refreshNow());
  }
}

function sessionExpiresOf(
  msg: SipMessage,
  name: 'Session-Expires' | 'Min-SE',
): SessionExpires | undefined {
  try {
    return msg.get<SessionExpires>(name);
  } catch {
    return undefined;
  }
}

/** Whether a message's Allow lists UPDATE; undefined without an Allow. */
function allowsUpdate(msg: SipMessage): boolean | undefined {
  try {
    const allow = msg.getAll<string>('Allow');
    if (allow.length === 0) return undefined;
    return allow.some((m) => m.toUpperCase() === 'UPDATE');
  } catch {
    return undefined;
  }
}

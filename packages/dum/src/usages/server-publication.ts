import type { EventHeader, SipRequest } from '@sipworks/message';
import type { ServerTransactionLike, TimerHandle } from '@sipworks/stack';
import { randomHex } from '../digest.ts';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type { ServerPublicationHandler } from '../handlers.ts';
import { BaseUsage } from './base.ts';
import { reply } from './client-subscription.ts';
import { canonicalAor } from './server-registration.ts';

/** One piece of published event state (RFC 3903 §6). */
export interface PublishedState {
  etag: string;
  /**
   * The resource the state is about: the Request-URI of the PUBLISH in canonical form
   * (`canonicalAor`: scheme, user, host and port), as subscriptions to it are matched.
   */
  aor: string;
  event: string;
  body: Uint8Array;
  contentType: string;
  /**
   * Absolute expiry, wall-clock ms since the epoch (the DUM's `now()`), so that every
   * state agent sharing a store reads it alike.
   */
  expiresAt: number;
  /**
   * When the body last changed (the DUM's `now()`, ms); a refresh keeps it. Compositors
   * use it to tell the latest state; a store that does not keep it returns undefined.
   */
  modifiedAt?: number | undefined;
}

/**
 * Where a state agent keeps publications, by entity tag (RFC 3903 §6). The DUM keeps
 * them in an `InMemoryPublicationStore` unless `dum.setPublicationStore` gives it
 * another; a store shared by several state agents (Redis) lets a refresh, modify or
 * remove reach any of them. Calls are asynchronous; a rejected call is answered 500
 * with Retry-After.
 */
export interface PublicationStore {
  /** A fresh entity tag, never handed out before (random, 64 bits or more). */
  newEtag(): string;
  /** The state with this entity tag; undefined when there is none or it has expired. */
  get(etag: string): Promise<PublishedState | undefined>;
  /**
   * Store `state`. With `replaces`, remove that state in the same atomic step, and store
   * nothing (resolve false) when it is gone or expired: another state agent refreshed,
   * modified or removed it first (§6 step 5 then answers 412).
   */
  put(state: PublishedState, replaces?: string): Promise<boolean>;
  /**
   * Remove a state. Resolves true when this call removed it, also when it had just
   * expired but was still kept; false when it was gone (replaced or removed elsewhere).
   */
  remove(etag: string): Promise<boolean>;
  /** Every current state published for a resource and event (what a notifier composes). */
  find(aor: string, event: string): Promise<PublishedState[]>;
}

export interface InMemoryPublicationStoreOptions {
  /** Wall-clock time in ms since the epoch (default `Date.now`; the DUM gives its `now()`). */
  now?: () => number;
}

/**
 * Publications kept in memory: the DUM's default store. Entity tags are random and never
 * reused. A state is kept until it is removed; past its expiry it is no longer returned.
 */
export class InMemoryPublicationStore implements PublicationStore {
  private readonly byEtag = new Map<string, PublishedState>();
  private readonly now: () => number;

  constructor(options: InMemoryPublicationStoreOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  newEtag(): string {
    for (;;) {
      const e = randomHex(8);
      if (!this.byEtag.has(e)) return e;
    }
  }

  async get(etag: string): Promise<PublishedState | undefined> {
    const s = this.byEtag.get(etag);
    return s && s.expiresAt > this.now() ? s : undefined;
  }

  async put(state: PublishedState, replaces?: string): Promise<boolean> {
    if (replaces !== undefined) {
      const old = this.byEtag.get(replaces);
      if (!old || old.expiresAt <= this.now()) return false;
      this.byEtag.delete(replaces);
    }
    this.byEtag.set(state.etag, state);
    return true;
  }

  async remove(etag: string): Promise<boolean> {
    return this.byEtag.delete(etag);
  }

  async find(aor: string, event: string): Promise<PublishedState[]> {
    const now = this.now();
    return [...this.byEtag.values()].filter(
      (s) => s.aor === aor && s.event === event && s.expiresAt > now,
    );
  }

  /** How many states are kept (expired ones included until removed). */
  get size(): number {
    return this.byEtag.size;
  }
}

export type ServerPublicationOperation = 'initial' | 'refresh' | 'update' | 'remove';

/**
 * The state agent's side of one publication (RFC 3903 §6), from its initial PUBLISH
 * until it is removed or expires. Each PUBLISH for it goes to `onInitial`,
 * `onRefresh`, `onUpdate` or `onRemoved`; answer it with `accept()` or `reject(status)`
 * inside the callback, else the DUM accepts. Every accepted PUBLISH but a removal
 * gets a new entity tag (§6 step 8).
 *
 * With a store shared by several state agents, a PUBLISH may reach a DUM that did not
 * take the initial one: the DUM then makes the usage from the stored state. A usage
 * whose state another agent replaced ends quietly when its timer fires (no
 * `onExpired`): the agent holding the newer state reports the expiry.
 */
export class ServerPublication extends BaseUsage {
  get kind(): 'ServerPublication' {
    return 'ServerPublication';
  }
  readonly event: string;
  readonly aor: string;
  private readonly store: PublicationStore;
  /** When the body last changed (see `PublishedState.modifiedAt`). */
  private modifiedAt = 0;
  private readonly handler: ServerPublicationHandler;
  /** The DUM's usages by current entity tag; this usage keeps its own entry. */
  private readonly index: Map<string, ServerPublication>;
  private pending: Pending | undefined;
  /** The PUBLISH whose store call is in flight (answered 503 if the usage ends meanwhile). */
  private answering: Pending | undefined;
  private timer: TimerHandle | undefined;
  /** The current entity tag. */
  etag: string;
  /** The current state (body and type). */
  body: Uint8Array = new Uint8Array(0);
  contentType = '';

  /** @internal Made by the DUM for an initial PUBLISH, or from `stored` state. */
  constructor(
    dum: DialogUsageManager,
    store: PublicationStore,
    handler: ServerPublicationHandler,
    event: string,
    aor: string,
    index: Map<string, ServerPublication>,
    stored?: PublishedState,
  ) {
    super(dum);
    this.store = store;
    this.handler = handler;
    this.event = event;
    this.aor = aor;
    this.index = index;
    if (stored) {
      this.etag = stored.etag;
      this.body = stored.body;
      this.contentType = stored.contentType;
      this.modifiedAt = stored.modifiedAt ?? 0;
    } else {
      this.etag = store.newEtag();
    }
  }

  /** @internal One PUBLISH for this publication, already checked. */
  receive(
    req: SipRequest,
    tx: ServerTransactionLike,
    op: ServerPublicationOperation,
    expires: number,
  ): void {
    // Until it is answered, the entity tag matches no other PUBLISH (§6 step 5).
    if (this.index.get(this.etag) === this) this.index.delete(this.etag);
    this.pending = { req, tx, op, expires };
    const h = this.handle();
    const etag = this.etag;
    this.notify(() => {
      if (op === 'initial') this.handler.onInitial?.(h, etag, req);
      else if (op === 'refresh') this.handler.onRefresh?.(h, etag, req);
      else if (op === 'update') this.handler.onUpdate?.(h, etag, req);
      else this.handler.onRemoved?.(h, etag, req);
    });
    if (this.pending?.req === req) void this.accept();
  }

  /**
   * Accept the PUBLISH being delivered: the state is stored under a new entity tag, then
   * answered 200 with SIP-ETag and Expires. Resolves once the answer is sent: 412 when
   * another state agent changed the state first, 500 with Retry-After when the store
   * failed.
   */
  async accept(status = 200): Promise<void> {
    this.assertLive();
    if (status < 200 || status >= 300)
      throw new DumError('SIP_ERR_DUM_STATE', `accept takes a 2xx, not ${status}`);
    const p = this.takePending();
    const oldEtag = this.etag;
    this.answering = p;
    try {
      if (p.op === 'remove') {
        await this.store.remove(oldEtag);
        if (this.answering !== p) return;
        reply(this.dum, p.req, p.tx, status, undefined, undefined, [['Expires', '0']]);
        this.drop();
        // Removed: the composed state no longer holds it.
        this.dum.publicationChanged(this.aor, this.event);
        return;
      }
      const refresh = p.op === 'refresh';
      const state: PublishedState = {
        etag: this.store.newEtag(),
        aor: this.aor,
        event: this.event,
        body: refresh ? this.body : p.req.body,
        contentType: refresh ? this.contentType : (p.req.contentType?.toString() ?? ''),
        expiresAt: this.dum.now() + p.expires * 1000,
        modifiedAt: refresh ? this.modifiedAt : this.dum.now(),
      };
      const stored = await this.store.put(state, p.op === 'initial' ? undefined : oldEtag);
      if (this.answering !== p) return;
      if (!stored) {
        // §6 step 5: the state is gone: another agent refreshed, modified or removed it.
        reply(this.dum, p.req, p.tx, 412);
        this.drop();
        return;
      }
      this.etag = state.etag;
      this.body = state.body;
      this.contentType = state.contentType;
      this.modifiedAt = state.modifiedAt ?? 0;
      this.index.set(this.etag, this);
      this.startTimer(p.expires * 1000);
      reply(this.dum, p.req, p.tx, status, undefined, undefined, [
        ['SIP-ETag', this.etag],
        ['Expires', String(p.expires)],
      ]);
      // The subscribers of the resource hear of new state (a plain refresh changes none).
      if (!refresh) this.dum.publicationChanged(this.aor, this.event);
    } catch (e) {
      this.dum.logger.error({ err: e }, 'the publication store failed');
      if (this.answering !== p) return;
      reply(this.dum, p.req, p.tx, 500, undefined, undefined, [
        ['Retry-After', String(this.dum.masterProfile.get('storeFailureRetryAfter'))],
      ]);
      // The old state, if any, still stands as far as this agent knows.
      if (p.op === 'initial') this.drop();
      else this.index.set(oldEtag, this);
    } finally {
      if (this.answering === p) this.answering = undefined;
    }
  }

  /** Refuse the PUBLISH being delivered; an initial one leaves nothing behind. */
  reject(status = 403): void {
    this.assertLive();
    if (status < 300 || status > 699)
      throw new DumError('SIP_ERR_DUM_STATE', `reject takes 300-699, not ${status}`);
    const p = this.takePending();
    reply(this.dum, p.req, p.tx, status);
    if (p.op === 'initial') this.drop();
    else this.index.set(this.etag, this);
  }

  private takePending(): Pending {
    const p = this.pending;
    if (!p) throw new DumError('SIP_ERR_DUM_STATE', 'no PUBLISH is waiting for an answer');
    this.pending = undefined;
    return p;
  }

  /** Remove the publication's state without a PUBLISH (the application's choice). */
  end(): void {
    if (this.isEnded) return;
    const etag = this.etag;
    this.release();
    this.store.remove(etag).then(
      (removed) => {
        if (removed) this.dum.publicationChanged(this.aor, this.event);
      },
      (e: unknown) => {
        this.dum.logger.error({ err: e }, 'the publication store failed to remove a state');
      },
    );
  }

  /**
   * @internal Forget the publication here and leave its state in the store (the DUM's
   * shutdown: a shared store's state stays for the other agents, or after a restart).
   */
  release(): void {
    if (this.isEnded) return;
    for (const p of [this.pending, this.answering]) if (p) reply(this.dum, p.req, p.tx, 503);
    this.pending = undefined;
    this.answering = undefined;
    this.drop();
  }

  /** The expiry timer fired: remove the state, and report it unless another agent replaced it. */
  private async expire(): Promise<void> {
    const etag = this.etag;
    let removed = true;
    try {
      removed = await this.store.remove(etag);
    } catch (e) {
      this.dum.logger.error({ err: e }, 'the publication store failed to remove an expired state');
    }
    if (this.isEnded || this.etag !== etag) return;
    if (removed) this.notify(() => this.handler.onExpired?.(this.handle(), etag));
    // A PUBLISH the application still holds names state that is gone now (§6 step 5).
    const p = this.pending;
    this.pending = undefined;
    if (p) reply(this.dum, p.req, p.tx, 412);
    this.drop();
    if (removed) this.dum.publicationChanged(this.aor, this.event);
  }

  private drop(): void {
    this.stopTimer();
    if (this.index.get(this.etag) === this) this.index.delete(this.etag);
    this.destroy();
  }

  private startTimer(ms: number): void {
    this.stopTimer();
    this.timer = this.dum.stack.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.isEnded) void this.expire();
    }, ms);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) this.dum.stack.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

interface Pending {
  req: SipRequest;
  tx: ServerTransactionLike;
  op: ServerPublicationOperation;
  expires: number;
}

/**
 * @internal The state agent's checks of RFC 3903 §6 for one PUBLISH, then its
 * publication: 489 for an event nobody handles, 400 for an initial PUBLISH without a
 * body, 412 for a SIP-If-Match that matches no current state of this resource and
 * event, 423 below the minimum expiry, 500 with Retry-After when the store fails.
 */
export async function receivePublish(
  dum: DialogUsageManager,
  req: SipRequest,
  tx: ServerTransactionLike,
  handlers: Map<string, ServerPublicationHandler>,
  store: PublicationStore,
  byEtag: Map<string, ServerPublication>,
): Promise<void> {
  let ev: EventHeader | undefined;
  try {
    ev = req.get<EventHeader>('Event');
  } catch {
    ev = undefined;
  }
  const event = ev?.package.toLowerCase();
  const handler = event === undefined ? undefined : handlers.get(event);
  if (!handler || event === undefined) {
    reply(dum, req, tx, 489, undefined, undefined, [
      ['Allow-Events', [...handlers.keys()].join(', ')],
    ]);
    return;
  }
  const p = dum.masterProfile;
  const requested = req.expires ?? p.get('defaultPublicationExpires');
  const min = p.get('minPublicationExpires');
  if (requested > 0 && requested < min) {
    reply(dum, req, tx, 423, undefined, undefined, [['Min-Expires', String(min)]]);
    return;
  }
  const expires = Math.min(requested, p.get('maxPublicationExpires'));
  const ifMatch = req.header('SIP-If-Match')?.trim();
  let aor: string;
  try {
    aor = canonicalAor(req.uri);
  } catch {
    aor = req.uri.toString();
  }
  if (ifMatch === undefined) {
    if (req.body.length === 0) {
      reply(dum, req, tx, 400, 'Bad Request (an initial PUBLISH needs a body)');
      return;
    }
    if (expires === 0) {
      reply(dum, req, tx, 400, 'Bad Request (Expires: 0 without SIP-If-Match)');
      return;
    }
    new ServerPublication(dum, store, handler, event, aor, byEtag).receive(
      req,
      tx,
      'initial',
      expires,
    );
    return;
  }
  let state: PublishedState | undefined;
  try {
    state = await store.get(ifMatch);
  } catch (e) {
    dum.logger.error({ err: e }, 'the publication store failed');
    reply(dum, req, tx, 500, undefined, undefined, [
      ['Retry-After', String(p.get('storeFailureRetryAfter'))],
    ]);
    return;
  }
  // §6 step 5: the entity tag must name a current state of this resource and event.
  let usage = byEtag.get(ifMatch);
  if (!state || state.event !== event || state.aor !== aor || usage?.isEnded) {
    reply(dum, req, tx, 412);
    return;
  }
  // A state another agent (or this one before a restart) stored: take it over.
  usage ??= new ServerPublication(dum, store, handler, event, aor, byEtag, state);
  const op: ServerPublicationOperation =
    expires === 0 ? 'remove' : req.body.length === 0 ? 'refresh' : 'update';
  usage.receive(req, tx, op, expires);
}

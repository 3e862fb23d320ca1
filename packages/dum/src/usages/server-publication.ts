import { type EventHeader, parseUri, type SipRequest } from '@sipworks/message';
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
  /** The Request-URI of the PUBLISH: the resource the state is about. */
  aor: string;
  /** The resource in canonical form (`canonicalAor` of the Request-URI): what subscriptions are matched on. */
  resource: string;
  event: string;
  body: Uint8Array;
  contentType: string;
  /** Absolute expiry, in the stack clock's ms. */
  expiresAt: number;
  /** When the body was last published or modified, in the stack clock's ms. */
  modifiedAt: number;
}

/**
 * Where the state agent keeps publications, by entity tag. The DUM uses this
 * in-memory class; another store (shared between processes, persistent) can take its
 * place by implementing the same methods. Entity tags are random and never reused.
 */
export class InMemoryPublicationStore {
  private readonly byEtag = new Map<string, PublishedState>();

  /** A fresh, unused entity tag. */
  newEtag(): string {
    for (;;) {
      const e = randomHex(8);
      if (!this.byEtag.has(e)) return e;
    }
  }

  get(etag: string): PublishedState | undefined {
    return this.byEtag.get(etag);
  }

  put(state: PublishedState): void {
    this.byEtag.set(state.etag, state);
  }

  remove(etag: string): void {
    this.byEtag.delete(etag);
  }

  /** Every state published for a Request-URI and event. */
  find(aor: string, event: string): PublishedState[] {
    return [...this.byEtag.values()].filter((s) => s.aor === aor && s.event === event);
  }

  /** Every state published for a resource (canonical form) and event: what the compositor works from. */
  findResource(resource: string, event: string): PublishedState[] {
    return [...this.byEtag.values()].filter((s) => s.resource === resource && s.event === event);
  }

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
 */
export class ServerPublication extends BaseUsage {
  readonly kind = 'ServerPublication';
  readonly event: string;
  readonly aor: string;
  /** The resource in canonical form (scheme, user, host, port), as subscriptions are matched. */
  readonly resource: string;
  private readonly store: InMemoryPublicationStore;
  private readonly handler: ServerPublicationHandler;
  private pending:
    | {
        req: SipRequest;
        tx: ServerTransactionLike;
        op: ServerPublicationOperation;
        expires: number;
      }
    | undefined;
  private timer: TimerHandle | undefined;
  private readonly gone: (p: ServerPublication) => void;
  /** The current entity tag. */
  etag: string;
  /** The current state (body and type). */
  body: Uint8Array = new Uint8Array(0);
  contentType = '';
  /** When the body was last published or modified (stack clock ms). */
  private modifiedAt = 0;
  /** Whether a PUBLISH of it was ever accepted (its state is or was in the store). */
  private published = false;

  constructor(
    dum: DialogUsageManager,
    store: InMemoryPublicationStore,
    handler: ServerPublicationHandler,
    event: string,
    aor: string,
    gone: (p: ServerPublication) => void = () => {},
  ) {
    super(dum);
    this.gone = gone;
    this.store = store;
    this.handler = handler;
    this.event = event;
    this.aor = aor;
    let resource = aor;
    try {
      resource = canonicalAor(parseUri(aor));
    } catch {
      resource = aor;
    }
    this.resource = resource;
    this.etag = store.newEtag();
  }

  /** @internal One PUBLISH for this publication, already checked. */
  receive(
    req: SipRequest,
    tx: ServerTransactionLike,
    op: ServerPublicationOperation,
    expires: number,
  ): void {
    this.pending = { req, tx, op, expires };
    const h = this.handle();
    const etag = this.etag;
    this.call(() => {
      if (op === 'initial') this.handler.onInitial?.(h, etag, req);
      else if (op === 'refresh') this.handler.onRefresh?.(h, etag, req);
      else if (op === 'update') this.handler.onUpdate?.(h, etag, req);
      else this.handler.onRemoved?.(h, etag, req);
    });
    if (this.pending?.req === req) this.accept();
  }

  /** Accept the PUBLISH being delivered: 200 with SIP-ETag and Expires. */
  accept(status = 200): void {
    this.assertLive();
    const p = this.takePending();
    if (status < 200 || status >= 300)
      throw new DumError('SIP_ERR_DUM_STATE', `accept takes a 2xx, not ${status}`);
    if (p.op === 'remove') {
      reply(this.dum, p.req, p.tx, status, undefined, undefined, [['Expires', '0']]);
      this.remove();
      return;
    }
    this.store.remove(this.etag);
    this.etag = this.store.newEtag();
    const clock = this.dum.stack.clock;
    const changed = p.op !== 'refresh';
    if (changed) {
      this.body = p.req.body;
      this.contentType = p.req.contentType?.toString() ?? '';
      this.modifiedAt = clock.now();
    }
    this.store.put({
      etag: this.etag,
      aor: this.aor,
      resource: this.resource,
      event: this.event,
      body: this.body,
      contentType: this.contentType,
      expiresAt: clock.now() + p.expires * 1000,
      modifiedAt: this.modifiedAt,
    });
    this.published = true;
    this.stopTimer();
    this.timer = clock.setTimeout(() => {
      this.timer = undefined;
      if (this.isEnded) return;
      const etag = this.etag;
      this.call(() => this.handler.onExpired?.(this.handle(), etag));
      this.remove();
    }, p.expires * 1000);
    reply(this.dum, p.req, p.tx, status, undefined, undefined, [
      ['SIP-ETag', this.etag],
      ['Expires', String(p.expires)],
    ]);
    // The subscribers of the resource hear of new state (a plain refresh changes none).
    if (changed) this.dum.publicationChanged(this.resource, this.event);
  }

  /** Refuse the PUBLISH being delivered; an initial one leaves nothing behind. */
  reject(status = 403): void {
    this.assertLive();
    if (status < 300 || status > 699)
      throw new DumError('SIP_ERR_DUM_STATE', `reject takes 300-699, not ${status}`);
    const p = this.takePending();
    reply(this.dum, p.req, p.tx, status);
    if (p.op === 'initial') this.remove();
  }

  private takePending(): NonNullable<ServerPublication['pending']> {
    const p = this.pending;
    if (!p) throw new DumError('SIP_ERR_DUM_STATE', 'no PUBLISH is waiting for an answer');
    this.pending = undefined;
    return p;
  }

  /** Drop the publication without a PUBLISH (the DUM's shutdown, or the application's choice). */
  end(): void {
    if (this.isEnded) return;
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      reply(this.dum, p.req, p.tx, 503);
    }
    this.remove();
  }

  private remove(): void {
    this.stopTimer();
    this.store.remove(this.etag);
    this.destroy();
    this.gone(this);
    // Removed or expired: the composed state no longer holds this publication.
    if (this.published) this.dum.publicationChanged(this.resource, this.event);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) this.dum.stack.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.dum.logger.error({ err: e }, 'ServerPublicationHandler threw');
    }
  }
}

/**
 * @internal The state agent's checks of RFC 3903 §6 for one PUBLISH, then its
 * publication: 489 for an event nobody handles, 400 for an initial PUBLISH without a
 * body, 412 for an unknown SIP-If-Match, 423 below the minimum expiry.
 */
export function receivePublish(
  dum: DialogUsageManager,
  req: SipRequest,
  tx: ServerTransactionLike,
  handlers: Map<string, ServerPublicationHandler>,
  store: InMemoryPublicationStore,
  byEtag: Map<string, ServerPublication>,
): void {
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
  if (ifMatch === undefined) {
    if (req.body.length === 0) {
      reply(dum, req, tx, 400, 'Bad Request (an initial PUBLISH needs a body)');
      return;
    }
    if (expires === 0) {
      reply(dum, req, tx, 400, 'Bad Request (Expires: 0 without SIP-If-Match)');
      return;
    }
    const usage = new ServerPublication(dum, store, handler, event, req.uri.toString(), (u) => {
      if (byEtag.get(u.etag) === u) byEtag.delete(u.etag);
    });
    usage.receive(req, tx, 'initial', expires);
    if (!usage.isEnded) byEtag.set(usage.etag, usage);
    return;
  }
  const usage = byEtag.get(ifMatch);
  if (!usage || usage.isEnded || usage.event !== event || !store.get(ifMatch)) {
    reply(dum, req, tx, 412);
    return;
  }
  byEtag.delete(ifMatch);
  const op: ServerPublicationOperation =
    expires === 0 ? 'remove' : req.body.length === 0 ? 'refresh' : 'update';
  usage.receive(req, tx, op, expires);
  if (!usage.isEnded) byEtag.set(usage.etag, usage);
}

import {
  type Contact,
  createResponse,
  type NameAddr,
  type SipRequest,
  type SipResponse,
  Uri,
} from '@sipworks/message';
import type { ServerTransactionLike } from '@sipworks/stack';
import { randomHex } from '../digest.ts';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type {
  ContactBinding,
  RegistrationPersistenceManager,
  RegistrationUpdate,
  ServerRegistrationHandler,
} from '../handlers.ts';
import { bindingKey } from '../registration-persistence.ts';
import { BaseUsage } from './base.ts';

/** What a REGISTER asks of the registrar. */
export type ServerRegistrationOperation = 'add' | 'refresh' | 'remove' | 'removeAll' | 'query';

/** One binding a REGISTER adds, refreshes or removes. */
export interface RegistrationChange {
  /** The Contact as stored (its `expires` parameter removed). */
  contact: Contact;
  /** The Contact URI as written: the binding's key within its address of record. */
  key: string;
  /** Seconds granted after the registrar's policy; 0 removes the binding. */
  expires: number;
  /** Whether a binding with this URI existed. */
  existed: boolean;
}

/** What the DUM's registrar adds to its 2xx answers; set with `dum.setRegistrarOptions`. */
export interface RegistrarOptions {
  /**
   * The Service-Route returned in each 2xx to a REGISTER (RFC 3608 §5): the proxies the
   * UA's later requests should pass through. `accept({ serviceRoute })` overrides it for
   * one REGISTER.
   */
  serviceRoute?: (NameAddr | string)[];
  /**
   * Assign GRUUs (RFC 5627 §5): to each binding with a `+sip.instance`, when the REGISTER
   * has `Supported: gruu`, the 2xx Contact carries `pub-gruu` (the address of record with
   * `gr=` the instance) and a fresh `temp-gruu`.
   */
  gruu?: boolean;
  /** The Flow-Timer (s) sent in 2xx answers that use outbound (RFC 5626 §4.4.1, §6). */
  flowTimer?: number;
}

/**
 * The address of record of a To URI (RFC 3261 §10.3 step 5): scheme, user and host
 * (lower case) and port, without display name, parameters or headers.
 */
export function canonicalAor(uri: Uri): string {
  const user = uri.user ? `${uri.user}@` : '';
  const port = uri.port ? `:${uri.port}` : '';
  return `${uri.scheme.toLowerCase()}:${user}${uri.host.toLowerCase()}${port}`;
}

/**
 * A REGISTER received by the DUM's registrar (RFC 3261 §10.3). The DUM checks it first
 * (Contacts, `Contact: *`, the expiry bounds of the master profile, Call-ID and CSeq per
 * binding) and then hands it to the `ServerRegistrationHandler` callback of its
 * `operation`. `accept()` stores the changes through the DUM's
 * `RegistrationPersistenceManager` and answers 200 with every current binding;
 * `reject(status)` answers without changing anything. A handler without the callback
 * accepts.
 */
export class ServerRegistration extends BaseUsage {
  get kind(): 'ServerRegistration' {
    return 'ServerRegistration';
  }
  readonly request: SipRequest;
  private readonly tx: ServerTransactionLike;
  private readonly handler: ServerRegistrationHandler;
  private readonly store: RegistrationPersistenceManager;
  /** The address of record (canonical form of the To URI). */
  aor = '';
  operation: ServerRegistrationOperation = 'query';
  /** The bindings this REGISTER adds, refreshes or removes. */
  readonly changes: RegistrationChange[] = [];
  private answered = false;

  constructor(
    dum: DialogUsageManager,
    request: SipRequest,
    tx: ServerTransactionLike,
    handler: ServerRegistrationHandler,
    store: RegistrationPersistenceManager,
  ) {
    super(dum);
    this.request = request;
    this.tx = tx;
    this.handler = handler;
    this.store = store;
  }

  /** Whether the REGISTER has its answer. */
  get isAnswered(): boolean {
    return this.answered;
  }

  /** @internal Check the REGISTER, then call the handler. */
  async start(): Promise<void> {
    try {
      if (!(await this.check())) return;
    } catch (e) {
      // Only the store can fail here: a malformed REGISTER has had its 400 already.
      this.dum.logger.error({ err: e }, 'the registration store failed; REGISTER not checked');
      if (!this.answered && !this.isEnded) this.reject(500, undefined, this.retryAfter());
      return;
    }
    const h = this.handler;
    const cb = {
      add: h.onAdd,
      refresh: h.onRefresh,
      remove: h.onRemove,
      removeAll: h.onRemoveAll,
      query: h.onQuery,
    }[this.operation];
    if (!cb) {
      await this.accept();
      return;
    }
    try {
      cb.call(h, this.handle(), this.request);
    } catch (e) {
      this.dum.logger.error({ err: e }, `ServerRegistrationHandler threw (${this.operation})`);
      if (!this.answered) this.reject(500);
    }
  }

  /**
   * Apply the changes and answer 200 with every binding of the address of record, each
   * Contact with its remaining `expires` (§10.3 step 8), a Date, the REGISTER's Path
   * when the UA supports path (RFC 3327 §5.3), and a Service-Route (RFC 3608 §5): the
   * one given here, else the registrar's (`dum.setRegistrarOptions`).
   */
  async accept(options?: {
    headers?: [string, string][];
    serviceRoute?: (NameAddr | string)[];
  }): Promise<SipResponse> {
    this.claim();
    try {
      const now = this.dum.now();
      const path = this.request.headers('Path');
      const update: RegistrationUpdate = {
        callId: this.request.callId,
        cseq: this.request.cseq.seq,
        removeAll: this.operation === 'removeAll',
        remove: [],
        put: [],
      };
      for (const c of this.changes) {
        if (c.expires === 0) {
          if (c.existed) update.remove.push(c.key);
          continue;
        }
        const binding: ContactBinding = {
          aor: this.aor,
          contact: c.contact,
          expires: now + c.expires * 1000,
          callId: this.request.callId,
          cseq: this.request.cseq.seq,
        };
        const q = c.contact.q;
        if (q !== undefined) binding.q = q;
        const instance = c.contact.params.get('+sip.instance');
        if (instance) binding.instanceId = instance;
        const regId = c.contact.params.get('reg-id');
        if (regId && /^\d+$/.test(regId)) binding.regId = Number(regId);
        if (path.length > 0) binding.path = path;
        update.put.push(binding);
      }
      const all = await this.apply(update);
      this.routeFlows(update, supportedTags(this.request));
      const res = createResponse(this.request, 200, undefined, {
        toTag: this.dum.newTag(),
        ...(options?.headers ? { headers: options.headers } : {}),
      });
      const contacts = all.map((b) => {
        const c = b.contact.clone();
        c.params.set('expires', String(Math.max(0, Math.ceil((b.expires - now) / 1000))));
        return c;
      });
      if (contacts.length > 0) res.setHeader('Contact', contacts);
      res.setHeader('Date', httpDate(now));
      const supported = this.request.getAll<string>('Supported').map((t) => t.toLowerCase());
      if (path.length > 0 && supported.includes('path')) res.setHeader('Path', path);
      const opts = this.dum.registrarOptions;
      // RFC 5626 §6: a REGISTER that asks for outbound (reg-id and Supported: outbound) gets Require: outbound.
      if (this.usesOutbound(supported)) {
        res.setHeader('Require', 'outbound');
        if (opts.flowTimer !== undefined) res.setHeader('Flow-Timer', String(opts.flowTimer));
      }
      if (opts.gruu && supported.includes('gruu')) this.addGruus(contacts);
      const serviceRoute = options?.serviceRoute ?? opts.serviceRoute ?? [];
      if (serviceRoute.length > 0 && this.operation !== 'removeAll')
        res.setHeader(
          'Service-Route',
          serviceRoute.map((r) => r.toString()),
        );
      this.respond(res);
      return res;
    } catch (e) {
      // §10.3 step 7: a failed commit (a database that is down) is answered 500; the
      // Retry-After tells the UA when to try again (§21.5.1, §20.33).
      this.dum.logger.error({ err: e }, 'the registration store failed');
      const res = this.response(500, undefined, this.retryAfter());
      this.respond(res);
      return res;
    }
  }

  /** Whether the REGISTER uses outbound: Supported: outbound and a Contact with +sip.instance and reg-id (RFC 5626 §6). */
  /**
   * Requests to a binding registered over a connection go back over that connection
   * (RFC 5626 §5.3, §6) when the UA asked for outbound, when its Contact has `;ob`, or
   * when its host is a `.invalid` name (RFC 7118 §5: a WebSocket client that nothing
   * else can reach). Removed bindings lose their route; a closed connection drops it.
   */
  private routeFlows(update: RegistrationUpdate, supported: string[]): void {
    const routes = this.dum.registrarFlowRoutes;
    for (const key of update.remove) {
      routes.get(key)?.();
      routes.delete(key);
    }
    const flow = this.tx.flow;
    if (!flow?.transport.reliable || flow.destination.connectionId === undefined) return;
    const outbound = this.usesOutbound(supported);
    for (const b of update.put) {
      const uri = b.contact.uri;
      if (!outbound && !uri.params.has('ob') && !uri.host.toLowerCase().endsWith('.invalid'))
        continue;
      const key = bindingKey(b);
      routes.get(key)?.();
      const unroute = this.dum.stack.routeOverFlow(uri, flow);
      let unwatch = (): void => {};
      const remove = (): void => {
        unroute();
        unwatch();
        if (routes.get(key) === remove) routes.delete(key);
      };
      // A closed connection takes its routes with it (RFC 5626 §4.4: a failed flow).
      unwatch = this.dum.watchFlow(flow, remove);
      routes.set(key, remove);
    }
  }

  private usesOutbound(supported: string[]): boolean {
    return (
      supported.includes('outbound') &&
      this.changes.some(
        (c) => c.contact.params.has('reg-id') && c.contact.params.has('+sip.instance'),
      )
    );
  }

  /**
   * RFC 5627 §5.2: `pub-gruu` (the address of record with `gr` = the instance id) and a
   * new `temp-gruu` on each Contact with an instance id.
   */
  private addGruus(contacts: Contact[]): void {
    const to = this.request.to.uri;
    for (const c of contacts) {
      const instance = c.params.get('+sip.instance');
      if (!instance) continue;
      const urn = instance.replace(/^<|>$/g, '');
      const pub = new Uri({ scheme: to.scheme, user: to.user, host: to.host, port: to.port });
      pub.params.set('gr', urn);
      const temp = new Uri({
        scheme: to.scheme,
        user: `tgruu.${randomHex(10)}`,
        host: to.host,
        port: to.port,
      });
      temp.params.set('gr');
      c.params.set('pub-gruu', pub.toString(), { quoted: true });
      c.params.set('temp-gruu', temp.toString(), { quoted: true });
    }
  }

  /** Answer with a failure (300-699) and change nothing. */
  reject(status: number, reason?: string, headers?: [string, string][]): SipResponse {
    if (status < 300 || status > 699)
      throw new DumError('SIP_ERR_DUM_STATE', `reject takes 300-699, not ${status}`);
    this.claim();
    const res = this.response(status, reason, headers);
    this.respond(res);
    return res;
  }

  /** Store the changes, at once when the store can (§10.3 step 7: all or none). */
  private async apply(update: RegistrationUpdate): Promise<ContactBinding[]> {
    if (this.store.updateContacts) return this.store.updateContacts(this.aor, update);
    if (update.removeAll) await this.store.removeAll(this.aor);
    for (const key of update.remove) await this.store.removeContact(this.aor, key);
    for (const b of update.put) await this.store.putContact(b);
    return this.store.getContacts(this.aor);
  }

  private retryAfter(): [string, string][] {
    return [['Retry-After', String(this.dum.masterProfile.get('storeFailureRetryAfter'))]];
  }

  private claim(): void {
    this.assertLive();
    if (this.answered)
      throw new DumError('SIP_ERR_DUM_STATE', 'this REGISTER has already been answered');
    this.answered = true;
  }

  private response(status: number, reason?: string, headers?: [string, string][]): SipResponse {
    return createResponse(this.request, status, reason, {
      toTag: this.dum.newTag(),
      ...(headers ? { headers } : {}),
    });
  }

  private respond(res: SipResponse): void {
    this.dum.decorate(res);
    try {
      this.tx.respond(res);
    } catch (e) {
      this.dum.logger.warn({ err: e }, 'the REGISTER transaction took no answer');
    }
    this.destroy();
  }

  /** RFC 3261 §10.3 steps 5-7; answers and returns false when the REGISTER fails them. */
  private async check(): Promise<boolean> {
    const req = this.request;
    let contacts: Contact[];
    let requestExpires: number | undefined;
    try {
      // §10.2: the address of record is a SIP or SIPS URI (RFC 4475 §3.3.4: a registrar
      // answers an `isbn:` To with 400).
      const scheme = req.to.uri.scheme.toLowerCase();
      if (scheme !== 'sip' && scheme !== 'sips') {
        this.reject(400, 'Bad Request (the To header field must hold a SIP or SIPS URI)');
        return false;
      }
      this.aor = canonicalAor(req.to.uri);
      contacts = req.contacts;
      requestExpires = req.expires;
      for (const c of contacts) {
        if (c.star) continue;
        c.uri.toString();
        void c.expires;
        void c.q;
      }
    } catch (e) {
      this.reject(400, `Bad Request (${e instanceof Error ? e.message : 'malformed REGISTER'})`);
      return false;
    }
    if (contacts.some((c) => c.star)) {
      // §10.3 step 6: `*` only alone and with Expires: 0.
      if (contacts.length !== 1 || requestExpires !== 0) {
        this.reject(400, 'Bad Request (Contact: * needs Expires: 0 and no other Contact)');
        return false;
      }
      const existing = await this.store.getContacts(this.aor);
      // §10.3 step 6: a `*` is subject to the Call-ID/CSeq check of every binding.
      if (existing.some((b) => b.callId === req.callId && req.cseq.seq <= b.cseq)) {
        this.reject(500, 'Server Internal Error (CSeq out of order for this Call-ID)');
        return false;
      }
      this.operation = 'removeAll';
      return true;
    }
    if (contacts.length === 0) {
      this.operation = 'query';
      return true;
    }
    const profile = this.dum.masterProfile;
    const min = profile.get('minRegistrationExpires');
    const max = profile.get('maxRegistrationExpires');
    const dflt = profile.get('defaultRegistrationExpires');
    const existing = await this.store.getContacts(this.aor);
    let added = false;
    let refreshed = false;
    for (const c of contacts) {
      let expires = c.expires ?? requestExpires ?? dflt;
      // §10.3 step 7: too brief (and not 0) -> 423 with Min-Expires (§10.3, §21.4.17).
      if (expires !== 0 && expires < min) {
        this.reject(423, undefined, [['Min-Expires', String(min)]]);
        return false;
      }
      expires = Math.min(expires, max);
      const key = c.uri.toString();
      const old = existing.find((b) => bindingKey(b) === key);
      // §10.3 step 7: same Call-ID and a CSeq not higher -> the update is aborted.
      if (old && old.callId === req.callId && req.cseq.seq <= old.cseq) {
        this.reject(500, 'Server Internal Error (CSeq out of order for this Call-ID)');
        return false;
      }
      const stored = c.clone();
      stored.params.delete('expires');
      const at = this.changes.findIndex((x) => x.key === key);
      const change = { contact: stored, key, expires, existed: old !== undefined };
      if (at >= 0) this.changes[at] = change;
      else this.changes.push(change);
    }
    // RFC 5626 §6, RFC 5627 §5.3: a Contact with the instance (and reg-id) of another
    // binding replaces it: the same UA, on a new flow or at a new address.
    for (const c of [...this.changes]) {
      const instance = c.contact.params.get('+sip.instance');
      if (!instance || c.expires === 0) continue;
      const regId = c.contact.params.get('reg-id');
      for (const b of existing) {
        const key = bindingKey(b);
        if (key === c.key || this.changes.some((x) => x.key === key)) continue;
        const sameRegId = (b.regId === undefined ? undefined : String(b.regId)) === regId;
        if (b.instanceId === instance && sameRegId)
          this.changes.push({ contact: b.contact, key, expires: 0, existed: true });
      }
    }
    // RFC 5626 §6: outbound through a first hop (Path) that does not do outbound: 439.
    const supported = req.getAll<string>('Supported').map((t) => t.toLowerCase());
    if (this.usesOutbound(supported)) {
      const path = req.getAll<NameAddr>('Path');
      const first = path[0];
      if (first && !first.uri.params.has('ob')) {
        this.changes.length = 0;
        this.reject(439, 'First Hop Lacks Outbound Support');
        return false;
      }
    }
    for (const c of this.changes) {
      if (c.expires === 0) continue;
      if (c.existed) refreshed = true;
      else added = true;
    }
    this.operation = added ? 'add' : refreshed ? 'refresh' : 'remove';
    return true;
  }
}

let dateSecond = Number.NaN;
let dateText = '';

/** The Date header's value for `ms` (RFC 3261 §20.17), written once per second. */
function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(ms).toUTCString();
  }
  return dateText;
}

/** The option tags of a request's Supported headers, lower case. */
function supportedTags(req: SipRequest): string[] {
  return req.getAll<string>('Supported').map((t) => t.toLowerCase());
}

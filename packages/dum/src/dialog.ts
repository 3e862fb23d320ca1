import {
  createRequest,
  NameAddr,
  parseHeader,
  parseUri,
  type SipRequest,
  type SipResponse,
  type Uri,
} from '@sipworks/message';
import { flat } from './compact.ts';
import { DialogId } from './ids.ts';

/** Shared by every dialog without a route set (never changed in place). */
const NO_ROUTES: readonly string[] = Object.freeze([]);

/**
 * Texts many dialogs hold alike (our Contact, which is the same for every dialog on a
 * transport), kept once. Bounded: past the limit a text is simply not shared.
 */
const shared = new Map<string, string>();
const SHARED_MAX = 256;
function share(text: string): string {
  const known = shared.get(text);
  if (known !== undefined) return known;
  const copy = flat(text);
  if (shared.size < SHARED_MAX) shared.set(copy, copy);
  return copy;
}

/**
 * A dialog (RFC 3261 §12): its id, the route set, local and remote sequence numbers,
 * the remote target, and how requests within it are built.
 *
 * The addresses are kept as the text of their header values, which is what requests in
 * the dialog are built from, and parsed when read: an established call holds a few
 * strings instead of a tree of parsed objects each. Each read of `routeSet`,
 * `remoteTarget`, `localContact`, `localUri` or `remoteUri` parses a fresh value, so a
 * change goes through the setter (`dialog.remoteTarget = uri`), not in place.
 */
export class Dialog {
  readonly id: DialogId;
  /** Record-Route values in the order requests use them (as Route). */
  private routes: readonly string[];
  private target: string;
  private contactText: string;
  private readonly localText: string;
  private readonly remoteText: string;
  /** Last CSeq number we used; incremented for each request we send. */
  localSeq: number;
  /** Last CSeq number received from the peer, or undefined before the first request. */
  remoteSeq: number | undefined;
  /** A sips Request-URI or Contact started it (§12.1.1). */
  readonly secure: boolean;
  early: boolean;

  private constructor(init: {
    id: DialogId;
    routeSet: readonly string[];
    remoteTarget: string;
    localContact: string;
    localUri: string;
    remoteUri: string;
    localSeq: number;
    remoteSeq: number | undefined;
    secure: boolean;
    early: boolean;
  }) {
    this.id = init.id;
    this.routes = init.routeSet.length === 0 ? NO_ROUTES : init.routeSet.map(flat);
    this.target = flat(init.remoteTarget);
    this.contactText = share(init.localContact);
    this.localText = flat(init.localUri);
    this.remoteText = flat(init.remoteUri);
    this.localSeq = init.localSeq;
    this.remoteSeq = init.remoteSeq;
    this.secure = init.secure;
    this.early = init.early;
  }

  /** The route set, in the order requests use it (parsed on each read). */
  get routeSet(): NameAddr[] {
    return this.routes.map((r) => parseHeader<NameAddr>('Route', r)[0] as NameAddr);
  }
  set routeSet(value: readonly NameAddr[]) {
    this.routes = value.length === 0 ? NO_ROUTES : value.map((r) => flat(String(r)));
  }

  /** The peer's Contact: where requests go (parsed on each read). */
  get remoteTarget(): Uri {
    return parseUri(this.target);
  }
  set remoteTarget(value: Uri) {
    this.target = flat(value.toString());
  }

  /** Our Contact (parsed on each read). */
  get localContact(): NameAddr {
    return Dialog.contact(this.contactText);
  }
  set localContact(value: NameAddr) {
    this.contactText = share(value.toString());
  }

  /** Our address and tag: From in the requests we send (parsed on each read). */
  get localUri(): NameAddr {
    return parseHeader<NameAddr>('From', this.localText)[0] as NameAddr;
  }

  /** The peer's address and tag: To in the requests we send (parsed on each read). */
  get remoteUri(): NameAddr {
    return parseHeader<NameAddr>('To', this.remoteText)[0] as NameAddr;
  }

  /**
   * The UAS side (§12.1.1): from the request and the response with our To tag. The
   * route set is the Record-Route of the request, in order.
   */
  static asUas(request: SipRequest, localTag: string, localContact: NameAddr): Dialog {
    const contact = request.contacts[0];
    if (!contact || contact.star) throw new TypeError('a dialog-creating request needs a Contact');
    // Our URI carries the tag we put in To (§12.1.1): requests we send in the dialog have it in From.
    const localUri = request.to.clone();
    localUri.params.set('tag', localTag);
    return new Dialog({
      id: new DialogId(request.callId, localTag, request.from.tag ?? '').compact(),
      routeSet: request.getAll<NameAddr>('Record-Route').map(String),
      remoteTarget: contact.uri.toString(),
      localContact: localContact.toString(),
      localUri: localUri.toString(),
      remoteUri: request.from.toString(),
      localSeq: 0,
      remoteSeq: request.cseq.seq,
      secure: request.uri.isSecure,
      early: false,
    });
  }

  /**
   * The UAC side (§12.1.2): from our request and a response with a To tag. The route
   * set is the Record-Route of the response, reversed.
   */
  static asUac(request: SipRequest, response: SipResponse): Dialog {
    const contact = response.contacts[0];
    return new Dialog({
      id: new DialogId(request.callId, request.from.tag ?? '', response.to.tag ?? '').compact(),
      routeSet: response.getAll<NameAddr>('Record-Route').map(String).reverse(),
      remoteTarget: (contact && !contact.star ? contact.uri : request.uri).toString(),
      localContact: (request.contacts[0] ?? new NameAddr(request.from.uri.clone())).toString(),
      localUri: request.from.toString(),
      remoteUri: response.to.toString(),
      localSeq: request.cseq.seq,
      remoteSeq: undefined,
      secure: request.uri.isSecure,
      early: response.status < 200,
    });
  }

  /** Build a request within the dialog (§12.2.1.1); ACK and CANCEL reuse a CSeq, so pass it. */
  makeRequest(
    method: string,
    options?: { cseq?: number; body?: Uint8Array | string; contentType?: string },
  ): SipRequest {
    const cseq = options?.cseq ?? ++this.localSeq;
    let uri: Uri | string = this.target;
    let routes: string[] = this.routes as string[];
    const first = this.routes[0];
    if (first !== undefined) {
      const firstUri = (parseHeader<NameAddr>('Route', first)[0] as NameAddr).uri;
      if (!firstUri.params.has('lr')) {
        // Strict routing: the first route becomes the Request-URI and the remote target
        // goes last in Route (§12.2.1.1).
        uri = firstUri;
        routes = [...this.routes.slice(1), `<${this.target}>`];
      }
    }
    const headers: [string, string][] = routes.map((r) => ['Route', r]);
    const req = createRequest({
      method,
      uri,
      from: this.localText,
      to: this.remoteText,
      callId: this.id.callId,
      cseq,
      contact: this.contactText,
      headers,
      ...(options?.body !== undefined ? { body: options.body } : {}),
      ...(options?.contentType !== undefined ? { contentType: options.contentType } : {}),
    });
    return req;
  }

  /**
   * Check a request received within the dialog (§12.2.2): a CSeq lower than the last one
   * is out of order (500). A target refresh updates the remote target. Returns the
   * status to answer with when it must be refused.
   */
  receiveRequest(request: SipRequest, targetRefresh: boolean): number | undefined {
    const seq = request.cseq.seq;
    if (request.method !== 'ACK' && request.method !== 'CANCEL') {
      if (this.remoteSeq !== undefined && seq <= this.remoteSeq) return 500;
      this.remoteSeq = seq;
    }
    if (targetRefresh) {
      const c = request.contacts[0];
      if (c && !c.star) this.target = flat(c.uri.toString());
    }
    return undefined;
  }

  /** A response to a target refresh updates the remote target (§12.2.1.2). */
  receiveTargetRefreshResponse(response: SipResponse): void {
    const c = response.contacts[0];
    if (c && !c.star && response.status >= 200 && response.status < 300)
      this.target = flat(c.uri.toString());
  }

  /** A Contact header value for this dialog, parsed. */
  static contact(text: string): NameAddr {
    return parseHeader<NameAddr>('Contact', text)[0] as NameAddr;
  }
}

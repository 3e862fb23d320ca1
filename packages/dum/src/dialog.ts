import {
  createRequest,
  NameAddr,
  parseHeader,
  type SipRequest,
  type SipResponse,
  type Uri,
} from '@sipworks/message';
import { DialogId } from './ids.ts';

/**
 * A dialog (RFC 3261 §12): its id, the route set, local and remote sequence numbers,
 * the remote target, and how requests within it are built.
 */
export class Dialog {
  readonly id: DialogId;
  /** The route set, in the order requests use it. */
  routeSet: NameAddr[];
  /** The peer's Contact: where requests go. */
  remoteTarget: Uri;
  /** Our Contact. */
  localContact: NameAddr;
  readonly localUri: NameAddr;
  readonly remoteUri: NameAddr;
  /** Last CSeq number we used; incremented for each request we send. */
  localSeq: number;
  /** Last CSeq number received from the peer, or undefined before the first request. */
  remoteSeq: number | undefined;
  /** A sips Request-URI or Contact started it (§12.1.1). */
  readonly secure: boolean;
  early: boolean;

  private constructor(init: {
    id: DialogId;
    routeSet: NameAddr[];
    remoteTarget: Uri;
    localContact: NameAddr;
    localUri: NameAddr;
    remoteUri: NameAddr;
    localSeq: number;
    remoteSeq: number | undefined;
    secure: boolean;
    early: boolean;
  }) {
    this.id = init.id;
    this.routeSet = init.routeSet;
    this.remoteTarget = init.remoteTarget;
    this.localContact = init.localContact;
    this.localUri = init.localUri;
    this.remoteUri = init.remoteUri;
    this.localSeq = init.localSeq;
    this.remoteSeq = init.remoteSeq;
    this.secure = init.secure;
    this.early = init.early;
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
      id: new DialogId(request.callId, localTag, request.from.tag ?? ''),
      routeSet: request.getAll<NameAddr>('Record-Route').map((r) => r.clone()),
      remoteTarget: contact.uri.clone(),
      localContact,
      localUri,
      remoteUri: request.from.clone(),
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
      id: new DialogId(request.callId, request.from.tag ?? '', response.to.tag ?? ''),
      routeSet: response
        .getAll<NameAddr>('Record-Route')
        .map((r) => r.clone())
        .reverse(),
      remoteTarget: contact && !contact.star ? contact.uri.clone() : request.uri.clone(),
      localContact: request.contacts[0]?.clone() ?? new NameAddr(request.from.uri.clone()),
      localUri: request.from.clone(),
      remoteUri: response.to.clone(),
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
    let uri = this.remoteTarget;
    const routes = this.routeSet.map((r) => r.toString());
    const first = this.routeSet[0];
    if (first && !first.uri.params.has('lr')) {
      // Strict routing: the first route becomes the Request-URI and the remote target
      // goes last in Route (§12.2.1.1).
      uri = first.uri.clone();
      routes.shift();
      routes.push(`<${this.remoteTarget.toString()}>`);
    }
    const headers: [string, string][] = routes.map((r) => ['Route', r]);
    const req = createRequest({
      method,
      uri: uri.clone(),
      from: this.localUri,
      to: this.remoteUri,
      callId: this.id.callId,
      cseq,
      contact: this.localContact,
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
      if (c && !c.star) this.remoteTarget = c.uri.clone();
    }
    return undefined;
  }

  /** A response to a target refresh updates the remote target (§12.2.1.2). */
  receiveTargetRefreshResponse(response: SipResponse): void {
    const c = response.contacts[0];
    if (c && !c.star && response.status >= 200 && response.status < 300)
      this.remoteTarget = c.uri.clone();
  }

  /** A Contact header value for this dialog, parsed. */
  static contact(text: string): NameAddr {
    return parseHeader<NameAddr>('Contact', text)[0] as NameAddr;
  }
}

import type { NameAddr, SipResponse } from '@sipworks/message';
import type { DialogUsageManager } from '../dum.ts';
import type { ClientPagerMessageHandler } from '../handlers.ts';
import type { Profile } from '../profile.ts';
import { BaseUsage } from './base.ts';
import { ServerOutOfDialogReq } from './out-of-dialog.ts';

interface Page {
  body: Uint8Array;
  contentType: string;
}

/**
 * Sends pager-mode MESSAGE requests (RFC 3428) to one target, one at a time: pages
 * wait in a queue until the previous one has its final response. Each page's outcome
 * is reported; a failed page's body is handed back.
 */
export class ClientPagerMessage extends BaseUsage {
  get kind(): 'ClientPagerMessage' {
    return 'ClientPagerMessage';
  }
  readonly target: NameAddr;
  private readonly profile: Profile;
  private readonly handler: ClientPagerMessageHandler | undefined;
  private readonly queue: Page[] = [];
  private busy = false;
  private readonly callId: string;
  private readonly fromTag: string;
  private cseq = 0;

  constructor(
    dum: DialogUsageManager,
    target: NameAddr,
    profile: Profile,
    handler: ClientPagerMessageHandler | undefined,
  ) {
    super(dum);
    this.target = target;
    this.profile = profile;
    this.handler = handler;
    this.callId = dum.newCallId();
    this.fromTag = dum.newTag();
  }

  /** Pages waiting, not counting the one in flight. */
  get pending(): number {
    return this.queue.length;
  }

  /** Queue a page; it is sent when the ones before it are done. */
  page(body: string | Uint8Array, contentType = 'text/plain'): void {
    this.assertLive();
    this.queue.push({
      body: typeof body === 'string' ? new TextEncoder().encode(body) : body,
      contentType,
    });
    if (!this.busy) this.next();
  }

  /** Stop: pages still queued are dropped, and the usage ends. */
  end(): void {
    this.queue.length = 0;
    this.destroy();
  }

  private next(): void {
    const p = this.queue.shift();
    if (!p) {
      this.busy = false;
      return;
    }
    this.busy = true;
    const req = this.dum.buildRequest('MESSAGE', this.target, this.profile, {
      callId: this.callId,
      fromTag: this.fromTag,
      cseq: ++this.cseq,
      contact: false,
    });
    req.setBody(p.body, p.contentType);
    this.dum.sendClient(req, this.profile, (res) => {
      // Auth retries raise the CSeq inside the same Call-ID: keep counting from there.
      this.cseq = Math.max(this.cseq, res.cseq.seq);
      const h = this.handle();
      if (res.status < 300) this.handler?.onSuccess?.(h, res);
      else this.handler?.onFailure?.(h, res, p.body, p.contentType);
      if (!this.isEnded) this.next();
    });
  }
}

/**
 * A MESSAGE for us: `accept` or `reject` it (486 Busy Here by default). It is answered
 * like any request outside a dialog, so it is a `ServerOutOfDialogReq` of its own kind.
 */
export class ServerPagerMessage extends ServerOutOfDialogReq {
  override get kind(): 'ServerPagerMessage' {
    return 'ServerPagerMessage';
  }

  override reject(status = 486, reason?: string, headers?: [string, string][]): SipResponse {
    return super.reject(status, reason, headers);
  }
}

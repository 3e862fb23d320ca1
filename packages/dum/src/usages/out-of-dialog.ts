import { createResponse, type SipRequest, type SipResponse } from '@sipworks/message';
import type { ServerTransactionLike } from '@sipworks/stack';
import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import type { OutOfDialogHandler } from '../handlers.ts';
import type { Profile } from '../profile.ts';
import { BaseUsage } from './base.ts';

/** A request we sent outside any dialog (OPTIONS, or another method). */
export class ClientOutOfDialogReq extends BaseUsage {
  get kind(): 'ClientOutOfDialogReq' {
    return 'ClientOutOfDialogReq';
  }
  readonly request: SipRequest;
  private readonly profile: Profile;
  private readonly handler: OutOfDialogHandler | undefined;
  /** The final response, once it came. */
  response: SipResponse | undefined;

  constructor(
    dum: DialogUsageManager,
    request: SipRequest,
    profile: Profile,
    handler: OutOfDialogHandler | undefined,
  ) {
    super(dum);
    this.request = request;
    this.profile = profile;
    this.handler = handler;
  }

  /** @internal */
  start(): void {
    this.dum.sendClient(this.request, this.profile, (res) => {
      this.response = res;
      const h = this.handle();
      if (res.status < 300) this.handler?.onSuccess?.(h, res);
      else this.handler?.onFailure?.(h, res);
      this.destroy();
    });
  }
}

/** A request for us outside any dialog. Answer it with `accept` or `reject`. */
export class ServerOutOfDialogReq extends BaseUsage {
  get kind(): 'ServerOutOfDialogReq' | 'ServerPagerMessage' {
    return 'ServerOutOfDialogReq';
  }
  readonly request: SipRequest;
  private readonly tx: ServerTransactionLike;

  constructor(dum: DialogUsageManager, request: SipRequest, tx: ServerTransactionLike) {
    super(dum);
    this.request = request;
    this.tx = tx;
  }

  /** Answer 2xx (200 by default). For OPTIONS the answer carries the profile's capabilities. */
  accept(
    status = 200,
    options?: { body?: Uint8Array | string; contentType?: string; headers?: [string, string][] },
  ): SipResponse {
    if (status < 200 || status >= 300)
      throw new DumError('SIP_ERR_DUM_STATE', `accept takes a 2xx, not ${status}`);
    return this.send(status, options);
  }

  /** Answer with a failure (300-699). */
  reject(status: number, reason?: string, headers?: [string, string][]): SipResponse {
    if (status < 300 || status > 699)
      throw new DumError('SIP_ERR_DUM_STATE', `reject takes 300-699, not ${status}`);
    return this.send(status, { ...(reason ? { reason } : {}), ...(headers ? { headers } : {}) });
  }

  private send(
    status: number,
    options?: {
      body?: Uint8Array | string;
      contentType?: string;
      headers?: [string, string][];
      reason?: string;
    },
  ): SipResponse {
    this.assertLive();
    const res = createResponse(this.request, status, options?.reason, {
      toTag: this.dum.newTag(),
      ...(options?.headers ? { headers: options.headers } : {}),
      ...(options?.body !== undefined ? { body: options.body } : {}),
      ...(options?.contentType ? { contentType: options.contentType } : {}),
    });
    if (this.request.method === 'OPTIONS' && status < 300) this.dum.addCapabilities(res);
    this.dum.decorate(res);
    this.tx.respond(res);
    this.destroy();
    return res;
  }
}

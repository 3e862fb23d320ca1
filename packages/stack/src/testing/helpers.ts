import { createResponse, type SipRequest, type SipResponse } from '@sipworks/message';
import type { SipStack } from '../stack.ts';

/** Send a request and resolve with its final response; reject with the stack's error (timeout, transport). */
export function sendAndWait(stack: SipStack, request: SipRequest): Promise<SipResponse> {
  return new Promise((resolve, reject) => {
    stack.sendRequest(request, {
      onResponse: (res) => {
        if (res.status >= 200) resolve(res);
      },
      onError: reject,
    });
  });
}

/** Make the stack's TU answer every request with `status` (recording them in `seen`). */
export function answerAll(stack: SipStack, status = 200, seen?: SipRequest[]): void {
  stack.setTransactionUser({
    onRequest(req, tx) {
      seen?.push(req);
      tx?.respond(createResponse(req, status, undefined, { toTag: 'answered' }));
    },
  });
}

/** Wait in real time until `cond` holds; throw after `ms` (for tests on real sockets). */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

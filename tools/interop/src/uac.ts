import { createRequest, type SipRequest, type SipResponse } from '@sipworks/message';
import type { ClientTransactionLike, SendOptions, SipStack } from '@sipworks/stack';

export interface SendResult {
  /** The final response. */
  final: SipResponse;
  /** Every response seen before it (provisional responses), in order. */
  provisional: SipResponse[];
  /** The transaction that carried the request. */
  tx: ClientTransactionLike;
}

/**
 * Send a request in a client transaction and wait for its final response. Rejects with
 * the stack's error (timeout, transport) or after `timeoutMs`. `onResponse` also sees
 * the responses that come after the final one (2xx retransmissions, RFC 6026).
 */
export function sendAndWait(
  stack: SipStack,
  request: SipRequest,
  options: SendOptions & {
    timeoutMs?: number;
    onResponse?: (res: SipResponse) => void;
  } = {},
): Promise<SendResult> {
  const { timeoutMs = 10_000, onResponse, ...sendOptions } = options;
  return new Promise((resolve, reject) => {
    const provisional: SipResponse[] = [];
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new Error(`no final response to ${request.method} within ${timeoutMs} ms`));
    }, timeoutMs);
    stack.sendRequest(
      request,
      {
        onResponse(res, tx) {
          onResponse?.(res);
          if (settled) return;
          if (res.status < 200) {
            provisional.push(res);
            return;
          }
          settled = true;
          clearTimeout(timer);
          resolve({ final: res, provisional, tx });
        },
        onError(err) {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(err);
        },
      },
      sendOptions,
    );
  });
}

/** A fresh Call-ID or tag. */
export function token(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 2 ** 40).toString(36)}`;
}

/**
 * The tiny UAC: send OPTIONS to `target` (a SIP URI; `;transport=tcp` picks TCP) and
 * resolve with the final response.
 */
export async function sendOptions(
  stack: SipStack,
  target: string,
  options: SendOptions & { timeoutMs?: number } = {},
): Promise<SipResponse> {
  const request = createRequest({
    method: 'OPTIONS',
    uri: target,
    from: `<sip:uac@sipworks.invalid>;tag=${token('f')}`,
    to: `<${target}>`,
    callId: token('options-'),
    cseq: 1,
    headers: [['Accept', 'application/sdp']],
  });
  const { final } = await sendAndWait(stack, request, options);
  return final;
}

import { createRequest, type SipRequest, type SipResponse } from '@sipworks/message';
import type { SipStack, Transport } from '@sipworks/stack';
import { sendAndWait, token } from '../../src/uac.ts';
import { sdpAnswer } from '../../src/uas.ts';

/** What a call placed by `placeCall` saw. */
export interface CallRecord {
  invite: SipRequest;
  provisional: number[];
  ok: SipResponse;
  /** How many times the ACK was sent: once, plus once per retransmitted 2xx. */
  acksSent: number;
  ack: SipRequest;
  /** The in-dialog OPTIONS and its response, when asked for. */
  options?: { request: SipRequest; response: SipResponse };
  bye: SipRequest;
  byeResponse: SipResponse;
}

/**
 * The UAC side of one call, with just enough dialog logic (RFC 3261 §12.1.2, §13.2.2.4,
 * §15.1.1): INVITE with an SDP offer; on the 2xx, the dialog takes the remote target from
 * its Contact, the remote tag from its To, and the route set from its Record-Route
 * (reversed); the ACK (CSeq of the INVITE) and the later requests (an OPTIONS when
 * `inDialogOptions`, then the BYE, each with the next CSeq) go to that target. Each
 * retransmission of the 2xx is ACKed again (RFC 6026 §8.4: the TU sees them).
 */
export async function placeCall(
  stack: SipStack,
  transport: Transport,
  target: string,
  opts: { holdMs?: number; inDialogOptions?: boolean } = {},
): Promise<CallRecord> {
  const { holdMs = 100, inDialogOptions = false } = opts;
  const local = transport.local;
  const scheme = transport.protocol.toLowerCase();
  const contact = `<sip:uac@${local.address}:${local.port};transport=${scheme}>`;
  const from = `<sip:uac@sipworks.invalid>;tag=${token('t')}`;
  const callId = token('call-');
  const invite = createRequest({
    method: 'INVITE',
    uri: target,
    from,
    to: `<${target}>`,
    callId,
    cseq: 1,
    contact,
    headers: [['Allow', 'INVITE, ACK, BYE, CANCEL, OPTIONS']],
    body: sdpAnswer(local.address),
    contentType: 'application/sdp',
  });

  let ack: SipRequest | undefined;
  let acksSent = 0;
  const sendAck = (res: SipResponse): void => {
    ack ??= buildInDialog('ACK', invite, res, invite.cseq.seq);
    acksSent++;
    stack.sendRequest(ack, { onResponse: () => {} });
  };
  const { final, provisional } = await sendAndWait(stack, invite, {
    onResponse: (res) => {
      if (res.status >= 200 && res.status < 300) sendAck(res);
    },
  });
  if (final.status < 200 || final.status >= 300)
    throw new Error(`INVITE was answered ${final.status} ${final.reason}`);
  if (!ack) throw new Error('no ACK was built');
  let cseq = invite.cseq.seq;
  let options: CallRecord['options'];
  if (inDialogOptions) {
    const request = buildInDialog('OPTIONS', invite, final, ++cseq);
    options = { request, response: (await sendAndWait(stack, request)).final };
  }
  await new Promise((r) => setTimeout(r, holdMs));
  const bye = buildInDialog('BYE', invite, final, ++cseq);
  const { final: byeResponse } = await sendAndWait(stack, bye);
  return {
    invite,
    provisional: provisional.map((r) => r.status),
    ok: final,
    acksSent,
    ack,
    ...(options ? { options } : {}),
    bye,
    byeResponse,
  };
}

/** A request in the dialog that a 2xx to `invite` set up (§12.2.1.1). */
function buildInDialog(
  method: 'ACK' | 'OPTIONS' | 'BYE',
  invite: SipRequest,
  ok: SipResponse,
  cseq: number,
): SipRequest {
  const remoteTarget = ok.contacts[0];
  if (!remoteTarget || remoteTarget.star) throw new Error('the 2xx has no Contact');
  if (ok.to.tag === undefined) throw new Error('the 2xx has no To tag');
  const routes = ok.headers('Record-Route').reverse();
  return createRequest({
    method,
    uri: remoteTarget.uri,
    from: invite.from,
    to: ok.to,
    callId: invite.callId,
    cseq,
    headers: routes.map((r): [string, string] => ['Route', r]),
  });
}

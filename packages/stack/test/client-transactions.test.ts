import { createResponse } from '@sipworks/message';
import { describe, expect, it } from 'vitest';
import { RecordingHandler, requestToPeer, responseText, world } from './harness.ts';

const T1 = 500;
const T2 = 4000;
const T4 = 5000;

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  it('§17.1.2.2 Timer E retransmits at T1, doubling up to T2, over UDP', async () => {
    const w = await world();
    const h = new RecordingHandler();
    w.stack.sendRequest(requestToPeer('OPTIONS'), h);
    w.clock.advance(20_000);
    const times = w.peer.times('OPTIONS');
    // Sent at 0, then after 500, 1000, 2000, 4000, 4000 ... ms.
    expect(times.slice(0, 7)).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500]);
    await w.stack.stop();
  });

  it('§17.1.2.2 Timer F: no response in 64*T1 is one timeout for the TU, then Terminated', async () => {
    const w = await world();
    const h = new RecordingHandler();
    const r = w.stack.sendRequest(requestToPeer('OPTIONS'), h);
    w.clock.advance(64 * T1 - 1);
    expect(h.errors).toHaveLength(0);
    w.clock.advance(1);
    expect(h.errors.map((e) => e.code)).toEqual(['SIP_ERR_TX_TIMEOUT']);
    expect(r.transaction?.state).toBe('terminated');
    expect(h.terminated).toBe(1);
    expect(w.stack.transactionCount.client).toBe(0);
    expect(w.clock.pending).toBe(0);
    await w.stack.stop();
  });

  it('§17.1.2.2 1xx moves to Proceeding, where Timer E fires every T2', async () => {
    const w = await world();
    const h = new RecordingHandler();
    w.stack.sendRequest(requestToPeer('MESSAGE'), h);
    w.clock.advance(600); // two sends
    const req = w.peer.requests('MESSAGE')[0];
    if (!req) throw new Error('no request');
    w.peer.send(responseText(req, 100, 'Trying'), w.address);
    w.clock.advance(1); // deliver
    expect(h.responses.map((r) => r.status)).toEqual([100]);
    const before = w.peer.times('MESSAGE').length;
    w.clock.advance(3 * T2);
    const times = w.peer.times('MESSAGE').slice(before);
    for (let i = 1; i < times.length; i++)
      expect((times[i] as number) - (times[i - 1] as number)).toBe(T2);
    await w.stack.stop();
  });

  it('§17.1.2.2 a final response goes to the TU once; Completed absorbs retransmissions; Timer K = T4', async () => {
    const w = await world();
    const h = new RecordingHandler();
    const r = w.stack.sendRequest(requestToPeer('OPTIONS'), h);
    w.clock.advance(0);
    const req = w.peer.requests('OPTIONS')[0];
    if (!req) throw new Error('no request');
    w.peer.send(responseText(req, 200, 'OK'), w.address);
    w.clock.advance(0);
    expect(r.transaction?.state).toBe('completed');
    w.peer.send(responseText(req, 200, 'OK'), w.address);
    w.clock.advance(T4 - 1);
    expect(h.responses).toHaveLength(1);
    expect(r.transaction?.state).toBe('completed');
    w.clock.advance(1);
    expect(r.transaction?.state).toBe('terminated');
    expect(h.outcomes).toBe(1);
    // No retransmission after the final response.
    expect(w.peer.times('OPTIONS')).toEqual([0]);
    await w.stack.stop();
  });

  it('§17.1.2.2 over a reliable transport: no retransmission, Timer K is 0', async () => {
    const w = await world({ reliable: true });
    const h = new RecordingHandler();
    const r = w.stack.sendRequest(requestToPeer('OPTIONS', { transport: 'tcp' }), h);
    w.clock.advance(10_000);
    expect(w.peer.times('OPTIONS')).toEqual([0]);
    const req = w.peer.requests('OPTIONS')[0];
    if (!req) throw new Error('no request');
    w.peer.send(responseText(req, 486, 'Busy Here'), w.address);
    w.clock.advance(0);
    w.clock.advance(0);
    expect(r.transaction?.state).toBe('terminated');
    expect(h.responses.map((x) => x.status)).toEqual([486]);
    await w.stack.stop();
  });

  it('§17.1.4 a transport error is reported to the TU once', async () => {
    const w = await world({ reliable: true });
    const h = new RecordingHandler();
    const req = requestToPeer('OPTIONS', { transport: 'tcp' });
    req.uri = req.uri.with({ port: 5999 }); // nobody listens there: connection refused
    w.stack.sendRequest(req, h);
    await Promise.resolve();
    await Promise.resolve();
    w.clock.advance(0);
    expect(h.errors.map((e) => e.code)).toEqual(['SIP_ERR_TRANSPORT']);
    w.clock.advance(64 * T1);
    expect(h.errors).toHaveLength(1);
    expect(w.stack.transactionCount.client).toBe(0);
    await w.stack.stop();
  });
});

describe('INVITE client transaction (RFC 3261 §17.1.1, RFC 6026)', () => {
  it('§17.1.1.2 Timer A doubles each time; Timer B ends it after 64*T1', async () => {
    const w = await world();
    const h = new RecordingHandler();
    w.stack.sendRequest(requestToPeer('INVITE'), h);
    w.clock.advance(64 * T1);
    expect(w.peer.times('INVITE')).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(h.errors.map((e) => e.code)).toEqual(['SIP_ERR_TX_TIMEOUT']);
    expect(w.clock.pending).toBe(0);
    await w.stack.stop();
  });

  it('§17.1.1.2 a provisional response stops the retransmissions', async () => {
    const w = await world();
    const h = new RecordingHandler();
    const r = w.stack.sendRequest(requestToPeer('INVITE'), h);
    w.clock.advance(0);
    const inv = w.peer.requests('INVITE')[0];
    if (!inv) throw new Error('no INVITE');
    w.peer.send(responseText(inv, 180, 'Ringing'), w.address);
    w.clock.advance(100_000);
    expect(w.peer.times('INVITE')).toEqual([0]);
    expect(r.transaction?.state).toBe('proceeding');
    expect(h.responses.map((x) => x.status)).toEqual([180]);
    await w.stack.stop();
  });

  it('§17.1.1.3 a 300-699 response is ACKed by the transaction, and the ACK resent on retransmission; Timer D', async () => {
    const w = await world();
    const h = new RecordingHandler();
    const r = w.stack.sendRequest(
      requestToPeer('INVITE', { headers: { Route: '<sip:127.0.0.1:5070;lr>' } }),
      h,
    );
    w.clock.advance(0);
    const inv = w.peer.requests('INVITE')[0];
    if (!inv) throw new Error('no INVITE');
    w.peer.send(responseText(inv, 486, 'Busy Here'), w.address);
    w.clock.advance(0);
    const acks = w.peer.requests('ACK');
    expect(acks).toHaveLength(1);
    const ack = acks[0];
    if (!ack) throw new Error('no ACK');
    // ACK: same Request-URI, Call-ID, From, CSeq number, Route and top Via; To from the response.
    expect(ack.uri.toString()).toBe(inv.uri.toString());
    expect(ack.callId).toBe(inv.callId);
    expect(ack.from.tag).toBe(inv.from.tag);
    expect(ack.cseq.seq).toBe(inv.cseq.seq);
    expect(ack.cseq.method).toBe('ACK');
    expect(ack.to.tag).toBe('peer1');
    expect(ack.via).toHaveLength(1);
    expect(ack.via[0]?.branch).toBe(inv.via[0]?.branch);
    expect(ack.headers('Route')).toEqual(inv.headers('Route'));
    w.peer.send(responseText(inv, 486, 'Busy Here'), w.address);
    w.clock.advance(0);
    expect(w.peer.requests('ACK')).toHaveLength(2);
    expect(h.responses.map((x) => x.status)).toEqual([486]);
    expect(r.transaction?.state).toBe('completed');
    w.clock.advance(32_000);
    expect(r.transaction?.state).toBe('terminated');
    await w.stack.stop();
  });

  it('RFC 6026 §8.4 a 2xx moves to Accepted; 2xx retransmissions reach the TU; Timer M ends it', async () => {
    const w = await world();
    const h = new RecordingHandler();
    const r = w.stack.sendRequest(requestToPeer('INVITE'), h);
    w.clock.advance(0);
    const inv = w.peer.requests('INVITE')[0];
    if (!inv) throw new Error('no INVITE');
    w.peer.send(responseText(inv, 200, 'OK'), w.address);
    w.clock.advance(0);
    expect(r.transaction?.state).toBe('accepted');
    w.peer.send(responseText(inv, 200, 'OK'), w.address);
    w.clock.advance(0);
    expect(h.responses.map((x) => x.status)).toEqual([200, 200]);
    // The transaction does not ACK a 2xx: that is the TU's (§13.2.2.4).
    expect(w.peer.requests('ACK')).toHaveLength(0);
    w.clock.advance(64 * T1);
    expect(r.transaction?.state).toBe('terminated');
    expect(h.outcomes).toBe(2);
    expect(h.errors).toHaveLength(0);
    await w.stack.stop();
  });

  it('§9.1 CANCEL reuses the INVITE branch and reaches the same destination', async () => {
    const w = await world();
    const h = new RecordingHandler();
    const r = w.stack.sendRequest(requestToPeer('INVITE'), h);
    w.clock.advance(0);
    const inv = w.peer.requests('INVITE')[0];
    if (!inv || !r.transaction) throw new Error('no INVITE');
    w.peer.send(responseText(inv, 180, 'Ringing'), w.address);
    w.clock.advance(0);
    const ch = new RecordingHandler();
    w.stack.cancel(r.transaction, ch);
    w.clock.advance(0);
    const cancel = w.peer.requests('CANCEL')[0];
    expect(cancel?.via[0]?.branch).toBe(inv.via[0]?.branch);
    expect(cancel?.cseq.seq).toBe(inv.cseq.seq);
    expect(cancel?.uri.toString()).toBe(inv.uri.toString());
    if (!cancel) throw new Error('no CANCEL');
    w.peer.send(responseText(cancel, 200, 'OK'), w.address);
    w.peer.send(responseText(inv, 487, 'Request Terminated'), w.address);
    w.clock.advance(0);
    expect(ch.responses.map((x) => x.status)).toEqual([200]);
    expect(h.responses.map((x) => x.status)).toEqual([180, 487]);
    await w.stack.stop();
  });

  it('§9.1 an INVITE with no final response within 64*T1 of its CANCEL ends with a timeout', async () => {
    const w = await world();
    const h = new RecordingHandler();
    const r = w.stack.sendRequest(requestToPeer('INVITE'), h);
    w.clock.advance(0);
    const inv = w.peer.requests('INVITE')[0];
    if (!inv || !r.transaction) throw new Error('no INVITE');
    w.peer.send(responseText(inv, 180, 'Ringing'), w.address);
    w.clock.advance(0);
    w.stack.cancel(r.transaction, new RecordingHandler());
    w.clock.advance(64 * T1 - 1);
    expect(h.errors).toHaveLength(0);
    w.clock.advance(1);
    expect(h.errors.map((e) => e.code)).toEqual(['SIP_ERR_TX_TIMEOUT']);
    await w.stack.stop();
  });

  it('stop() ends a waiting client transaction with one error for its handler', async () => {
    const w = await world();
    const h = new RecordingHandler();
    w.stack.sendRequest(requestToPeer('OPTIONS'), h);
    w.clock.advance(0);
    await w.stack.stop();
    expect(h.errors.map((e) => e.code)).toEqual(['SIP_ERR_STACK_STATE']);
    expect(h.outcomes).toBe(1);
  });

  it('a response whose branch matches nothing goes to the TU as stray', async () => {
    const w = await world();
    const req = requestToPeer('OPTIONS');
    req.setHeader('Via', 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnothing');
    w.peer.send(createResponse(req, 200).toString(), w.address);
    w.clock.advance(0);
    expect(w.tu.stray.map((x) => x.status)).toEqual([200]);
    await w.stack.stop();
  });
});

import { createResponse } from '@sipworks/message';
import { describe, expect, it } from 'vitest';
import { RawPeer, requestText, world } from './harness.ts';

const T1 = 500;
const T2 = 4000;
const T4 = 5000;

describe('INVITE server transaction (RFC 3261 §17.2.1, RFC 6026)', () => {
  it('§17.2.1 sends 100 Trying when the TU is silent for 200 ms, not before', async () => {
    const w = await world();
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKa1', callId: 'c1' }), w.address);
    w.clock.advance(199);
    expect(w.peer.responses()).toHaveLength(0);
    w.clock.advance(1);
    expect(w.peer.responses().map((r) => r.status)).toEqual([100]);
    expect(w.tu.requests).toHaveLength(1);
    await w.stack.stop();
  });

  it('§17.2.1 no 100 Trying when the TU answers at once; a retransmitted INVITE gets the last provisional again', async () => {
    const w = await world();
    w.tu.answer = (req, tx) => tx?.respond(createResponse(req, 180, undefined, { toTag: 'uas' }));
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKa2', callId: 'c2' }), w.address);
    w.clock.advance(1000);
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKa2', callId: 'c2' }), w.address);
    w.clock.advance(0);
    expect(w.peer.responses().map((r) => r.status)).toEqual([180, 180]);
    expect(w.tu.requests).toHaveLength(1);
    await w.stack.stop();
  });

  it('§17.2.1 300-699: Timer G retransmits (T1 doubling to T2) until the ACK; ACK => Confirmed; Timer I', async () => {
    const w = await world();
    let server: { state: string } | undefined;
    w.tu.answer = (req, tx) => {
      server = tx;
      tx?.respond(createResponse(req, 486, undefined, { toTag: 'uas' }));
    };
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKa3', callId: 'c3' }), w.address);
    w.clock.advance(0);
    w.clock.advance(7500);
    const at = w.peer.received.filter((r) => !r.message.isRequest).map((r) => r.at);
    expect(at).toEqual([0, 500, 1500, 3500, 7500]);
    expect(server?.state).toBe('completed');
    w.peer.send(requestText('ACK', { branch: 'z9hG4bKa3', callId: 'c3', toTag: 'uas' }), w.address);
    w.clock.advance(0);
    expect(server?.state).toBe('confirmed');
    const n = w.peer.responses().length;
    w.clock.advance(T2);
    expect(w.peer.responses()).toHaveLength(n);
    w.clock.advance(T4 - T2);
    expect(server?.state).toBe('terminated');
    // The ACK for a non-2xx is absorbed by the transaction, never given to the TU.
    expect(w.tu.requests.map((r) => r.request.method)).toEqual(['INVITE']);
    await w.stack.stop();
  });

  it('§17.2.1 Timer H: no ACK within 64*T1 tells the TU and ends the transaction', async () => {
    const w = await world();
    let timedOut = 0;
    w.tu.answer = (req, tx) => {
      if (!tx) return;
      tx.handler = { onAckTimeout: () => timedOut++ };
      tx.respond(createResponse(req, 603, undefined, { toTag: 'uas' }));
    };
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKa4', callId: 'c4' }), w.address);
    w.clock.advance(64 * T1);
    expect(timedOut).toBe(1);
    expect(w.stack.transactionCount.server).toBe(0);
    expect(w.clock.pending).toBe(0);
    await w.stack.stop();
  });

  it('RFC 6026 §7.1 2xx => Accepted: INVITE retransmissions are absorbed, the TU may resend the 2xx; Timer L', async () => {
    const w = await world();
    let server: { state: string; respond(r: ReturnType<typeof createResponse>): void } | undefined;
    w.tu.answer = (req, tx) => {
      if (!tx || req.method !== 'INVITE') return;
      server = tx;
      tx.respond(createResponse(req, 200, undefined, { toTag: 'uas' }));
    };
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKa5', callId: 'c5' }), w.address);
    w.clock.advance(0);
    expect(server?.state).toBe('accepted');
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKa5', callId: 'c5' }), w.address);
    w.clock.advance(0);
    expect(w.peer.responses().map((r) => r.status)).toEqual([200]);
    const inv = w.tu.requests[0]?.request;
    if (!inv) throw new Error('no INVITE');
    server?.respond(createResponse(inv, 200, undefined, { toTag: 'uas' }));
    w.clock.advance(0);
    expect(w.peer.responses().map((r) => r.status)).toEqual([200, 200]);
    // The ACK for the 2xx has its own branch and goes to the TU (§17.2.3).
    w.peer.send(
      requestText('ACK', { branch: 'z9hG4bKack5', callId: 'c5', toTag: 'uas' }),
      w.address,
    );
    w.clock.advance(0);
    expect(w.tu.requests.map((r) => [r.request.method, r.tx === undefined])).toEqual([
      ['INVITE', false],
      ['ACK', true],
    ]);
    w.clock.advance(64 * T1);
    expect(server?.state).toBe('terminated');
    await w.stack.stop();
  });

  it('RFC 6026 §7.1 an ACK that reuses the INVITE branch, in Accepted, goes to the TU', async () => {
    const w = await world();
    w.tu.answer = (req, tx) => {
      if (req.method === 'INVITE')
        tx?.respond(createResponse(req, 200, undefined, { toTag: 'uas' }));
    };
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKsame', callId: 'c7' }), w.address);
    w.clock.advance(0);
    w.peer.send(
      requestText('ACK', { branch: 'z9hG4bKsame', callId: 'c7', toTag: 'uas', cseqMethod: 'ACK' }),
      w.address,
    );
    w.clock.advance(0);
    expect(w.tu.requests.map((r) => [r.request.method, r.tx === undefined])).toEqual([
      ['INVITE', false],
      ['ACK', true],
    ]);
    await w.stack.stop();
  });

  it('a response the state does not allow throws SIP_ERR_TX_STATE (misuse, not a protocol failure)', async () => {
    const w = await world();
    let error: unknown;
    w.tu.answer = (req, tx) => {
      tx?.respond(createResponse(req, 486, undefined, { toTag: 'x' }));
      try {
        tx?.respond(createResponse(req, 200, undefined, { toTag: 'x' }));
      } catch (e) {
        error = e;
      }
    };
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKa6', callId: 'c6' }), w.address);
    w.clock.advance(0);
    expect((error as { code: string }).code).toBe('SIP_ERR_TX_STATE');
    await w.stack.stop();
  });
});

describe('non-INVITE server transaction (RFC 3261 §17.2.2)', () => {
  it('Trying absorbs retransmissions; Proceeding resends the provisional; Completed the final; Timer J', async () => {
    const w = await world();
    let server: { state: string; respond(r: ReturnType<typeof createResponse>): void } | undefined;
    w.tu.answer = (_req, tx) => {
      server = tx;
    };
    const text = requestText('MESSAGE', { branch: 'z9hG4bKb1', callId: 'd1' });
    w.peer.send(text, w.address);
    w.clock.advance(0);
    w.peer.send(text, w.address);
    w.clock.advance(0);
    expect(w.peer.responses()).toHaveLength(0);
    expect(w.tu.requests).toHaveLength(1);
    const req = w.tu.requests[0]?.request;
    if (!req || !server) throw new Error('no request');
    server.respond(createResponse(req, 100));
    w.peer.send(text, w.address);
    w.clock.advance(0);
    expect(w.peer.responses().map((r) => r.status)).toEqual([100, 100]);
    server.respond(createResponse(req, 202, undefined, { toTag: 'a' }));
    w.peer.send(text, w.address);
    w.clock.advance(0);
    expect(w.peer.responses().map((r) => r.status)).toEqual([100, 100, 202, 202]);
    expect(server.state).toBe('completed');
    w.clock.advance(64 * T1 - 1);
    expect(server.state).toBe('completed');
    w.clock.advance(1);
    expect(server.state).toBe('terminated');
    expect(() => server?.respond(createResponse(req, 200))).toThrow(/terminated/);
    await w.stack.stop();
  });

  it('Timer J is 0 over a reliable transport', async () => {
    const w = await world({ reliable: true });
    w.tu.answer = (req, tx) => tx?.respond(createResponse(req, 200, undefined, { toTag: 'a' }));
    w.peer.send(requestText('OPTIONS', { branch: 'z9hG4bKb2', callId: 'd2' }), w.address);
    w.clock.advance(0);
    w.clock.advance(0);
    expect(w.stack.transactionCount.server).toBe(0);
    expect(w.peer.responses().map((r) => r.status)).toEqual([200]);
    await w.stack.stop();
  });
});

describe('around the transactions', () => {
  it('§9.2 CANCEL: 200 for the CANCEL, 487 for the INVITE (no onCancel); 481 when nothing matches', async () => {
    const w = await world();
    w.tu.answer = (req, tx) => {
      if (req.method === 'INVITE')
        tx?.respond(createResponse(req, 180, undefined, { toTag: 'uas' }));
    };
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKc1', callId: 'e1' }), w.address);
    w.clock.advance(0);
    w.peer.send(requestText('CANCEL', { branch: 'z9hG4bKc1', callId: 'e1' }), w.address);
    w.clock.advance(0);
    const statuses = w.peer.responses().map((r) => `${r.status} ${r.cseq.method}`);
    expect(statuses).toEqual(['180 INVITE', '200 CANCEL', '487 INVITE']);
    // §9.2: the 200 to the CANCEL and the 487 carry the To tag of the provisional response.
    expect(w.peer.responses().map((r) => r.to.tag)).toEqual(['uas', 'uas', 'uas']);
    w.peer.send(requestText('CANCEL', { branch: 'z9hG4bKnone', callId: 'e2' }), w.address);
    w.clock.advance(0);
    expect(w.peer.responses(481)).toHaveLength(1);
    await w.stack.stop();
  });

  it('§8.2.2.2 a merged request (same From tag, Call-ID, CSeq, other branch, no To tag) gets 482', async () => {
    const w = await world();
    w.peer.send(requestText('OPTIONS', { branch: 'z9hG4bKm1', callId: 'f1' }), w.address);
    w.peer.send(requestText('OPTIONS', { branch: 'z9hG4bKm2', callId: 'f1' }), w.address);
    w.clock.advance(0);
    expect(w.peer.responses().map((r) => r.status)).toEqual([482]);
    expect(w.tu.requests).toHaveLength(1);
    await w.stack.stop();
  });

  it('overload: past maxTransactions new requests get 503 with Retry-After', async () => {
    const w = await world({ stack: { maxTransactions: 2, retryAfter: 7 } });
    for (let i = 0; i < 3; i++)
      w.peer.send(requestText('OPTIONS', { branch: `z9hG4bKo${i}`, callId: `g${i}` }), w.address);
    w.clock.advance(0);
    const r = w.peer.responses();
    expect(r.map((x) => x.status)).toEqual([503]);
    expect(r[0]?.header('Retry-After')).toBe('7');
    expect(w.tu.requests).toHaveLength(2);
    await w.stack.stop();
  });

  it('RFC 3261 §21.5.4 flood: past maxTransactionsPerSource one source gets 503 with Retry-After, others are served', async () => {
    const w = await world({ stack: { maxTransactionsPerSource: 3, retryAfter: 9 } });
    const other = new RawPeer(w.network, w.clock, 5070, 'UDP', false, '127.0.0.2');
    await other.start();
    // The TU answers nothing: each request holds its transaction open.
    for (let i = 0; i < 10; i++)
      w.peer.send(requestText('OPTIONS', { branch: `z9hG4bKf${i}`, callId: `fl${i}` }), w.address);
    other.send(requestText('OPTIONS', { branch: 'z9hG4bKo1', callId: 'fo1' }), w.address);
    w.clock.advance(0);
    const refused = w.peer.responses(503);
    expect(refused).toHaveLength(7);
    expect(refused[0]?.header('Retry-After')).toBe('9');
    expect(other.responses()).toHaveLength(0);
    expect(w.tu.requests.map((r) => r.received.source.address)).toEqual([
      '127.0.0.1',
      '127.0.0.1',
      '127.0.0.1',
      '127.0.0.2',
    ]);
    expect(w.stack.transactionCount.server).toBe(4);
    // Answered and ended (Timer J), the source's transactions free its slots again.
    for (const { request, tx } of w.tu.requests)
      tx?.respond(createResponse(request, 200, undefined, { toTag: 'ok' }));
    w.clock.advance(64 * 500 + 1);
    expect(w.stack.transactionCount.server).toBe(0);
    w.peer.send(requestText('OPTIONS', { branch: 'z9hG4bKf99', callId: 'fl99' }), w.address);
    w.clock.advance(0);
    expect(w.tu.requests).toHaveLength(5);
    expect(w.peer.responses(503)).toHaveLength(7);
    await other.transport.stop();
    await w.stack.stop();
  });

  it('§9.2 at its per-source limit, a source may still CANCEL its pending INVITE; a CANCEL matching nothing gets 503', async () => {
    const w = await world({ stack: { maxTransactionsPerSource: 2 } });
    w.tu.answer = (req, tx) => {
      if (req.method === 'INVITE')
        tx?.respond(createResponse(req, 180, undefined, { toTag: 'uas' }));
    };
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKpc1', callId: 'pc1' }), w.address);
    w.peer.send(requestText('OPTIONS', { branch: 'z9hG4bKpc2', callId: 'pc2' }), w.address);
    w.clock.advance(0);
    w.peer.send(requestText('CANCEL', { branch: 'z9hG4bKpc1', callId: 'pc1' }), w.address);
    w.peer.send(requestText('CANCEL', { branch: 'z9hG4bKpc9', callId: 'pc9' }), w.address);
    w.clock.advance(0);
    const statuses = w.peer.responses().map((r) => `${r.status} ${r.cseq.method}`);
    expect(statuses).toEqual(['180 INVITE', '200 CANCEL', '487 INVITE', '503 CANCEL']);
    await w.stack.stop();
  });

  it('§18.2.1 / RFC 3581: received and rport are added to the top Via, and the response goes there', async () => {
    const w = await world();
    w.tu.answer = (req, tx) => tx?.respond(createResponse(req, 200, undefined, { toTag: 'a' }));
    const text = requestText('OPTIONS', { branch: 'z9hG4bKr1', callId: 'h1' }).replace(
      'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr1',
      'Via: SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bKr1;rport',
    );
    w.peer.send(text, w.address);
    w.clock.advance(0);
    const res = w.peer.responses(200)[0];
    expect(res?.via[0]?.received).toBe('127.0.0.1');
    expect(res?.via[0]?.rport).toBe(5070);
    await w.stack.stop();
  });

  it('a transport that fails to start is not kept by the stack', async () => {
    const w = await world();
    const broken = {
      protocol: 'TCP',
      reliable: true,
      secure: false,
      local: { address: '127.0.0.1', port: 1, family: 'IPv4' as const },
      start: async () => {
        throw new Error('EADDRINUSE');
      },
      stop: async () => {},
      send: async () => undefined,
    };
    await expect(w.stack.addTransport(broken)).rejects.toThrow('EADDRINUSE');
    expect(w.stack.transports).not.toContain(broken);
    await w.stack.stop();
  });

  it('stop() ends every transaction and timer', async () => {
    const w = await world();
    w.peer.send(requestText('INVITE', { branch: 'z9hG4bKs1', callId: 's1' }), w.address);
    w.clock.advance(0);
    await w.stack.stop();
    expect(w.stack.transactionCount).toEqual({ client: 0, server: 0 });
    expect(w.clock.pending).toBe(0);
  });
});

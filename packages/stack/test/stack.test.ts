import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createRequest, createResponse, parseMessage, type SipRequest } from '@sipworks/message';
import { describe, expect, it } from 'vitest';
import {
  CHANNELS,
  type DnsResolver,
  type NaptrRecord,
  SipStack,
  type SrvRecord,
  type TransactionStateEvent,
  type TransportMessageEvent,
} from '../src/index.ts';
import { MemoryNetwork, MemoryTransport, VirtualClock } from '../src/testing/index.ts';
import {
  ClosableMemoryTransport,
  RawPeer,
  RecordingHandler,
  requestText,
  requestToPeer,
  responseText,
  settle,
  world,
} from './harness.ts';

const T1 = 500;

function noRecords(): Promise<never> {
  return Promise.reject(Object.assign(new Error('no data'), { code: 'ENODATA' }));
}

/** A DNS that knows SRV and A records for example.test, and records every query. */
function fakeDns(srv: Record<string, SrvRecord[]>, a: Record<string, string[]>) {
  const queries: string[] = [];
  const resolver: DnsResolver = {
    resolveNaptr(name): Promise<NaptrRecord[]> {
      queries.push(`NAPTR ${name}`);
      return noRecords();
    },
    resolveSrv(name) {
      queries.push(`SRV ${name}`);
      const r = srv[name];
      return r ? Promise.resolve(r) : noRecords();
    },
    resolve4(name) {
      queries.push(`A ${name}`);
      const r = a[name];
      return r ? Promise.resolve(r) : noRecords();
    },
    resolve6(name) {
      queries.push(`AAAA ${name}`);
      return noRecords();
    },
  };
  return { resolver, queries };
}

/** `_sip._<proto>.example.test`: first a.example.test (10.0.0.1), then b.example.test (10.0.0.2). */
function twoTargets(proto: 'udp' | 'tcp') {
  return fakeDns(
    {
      [`_sip._${proto}.example.test`]: [
        { priority: 10, weight: 0, port: 5060, name: 'a.example.test' },
        { priority: 20, weight: 0, port: 5060, name: 'b.example.test' },
      ],
    },
    { 'a.example.test': ['10.0.0.1'], 'b.example.test': ['10.0.0.2'] },
  );
}

let calls = 0;

function requestTo(uri: string, method = 'OPTIONS'): SipRequest {
  return createRequest({
    method,
    uri,
    from: '<sip:stack@127.0.0.1>;tag=f1',
    to: `<${uri.split(';')[0]}>`,
    callId: `failover-${++calls}@test`,
    cseq: 1,
  });
}

/** Record the messages published on `sip:transport:send` while `fn` runs. */
async function recordSends<T>(
  fn: (sent: TransportMessageEvent[]) => Promise<T>,
): Promise<{ sent: TransportMessageEvent[]; value: T }> {
  const sent: TransportMessageEvent[] = [];
  const on = (m: unknown) => sent.push(m as TransportMessageEvent);
  subscribe(CHANNELS.send, on);
  try {
    const value = await fn(sent);
    return { sent, value };
  } finally {
    unsubscribe(CHANNELS.send, on);
  }
}

describe('RFC 3263 §4.3 failover to the next target', () => {
  it('§4.3 over UDP: the first SRV target never answers (Timer F), the second does', async () => {
    const dns = twoTargets('udp');
    const w = await world({ stack: { resolver: dns.resolver } });
    const b = new RawPeer(w.network, w.clock, 5060, 'UDP', false, '10.0.0.2');
    await b.start();
    const h = new RecordingHandler();
    const { sent } = await recordSends(async () => {
      w.stack.sendRequest(requestTo('sip:svc@example.test'), h);
      await settle(w.clock);
      w.clock.advance(64 * T1 - 1);
      expect(b.requests()).toHaveLength(0);
      w.clock.advance(1);
      await settle(w.clock);
      const req = b.requests('OPTIONS')[0];
      if (!req) throw new Error('the second target got nothing');
      b.send(responseText(req, 200, 'OK'), w.address);
      w.clock.advance(0);
    });
    expect(dns.queries[0]).toBe('NAPTR example.test');
    expect(dns.queries).toContain('SRV _sip._udp.example.test');
    const targets = sent
      .filter((e) => e.message.isRequest)
      .map((e) => `${e.remote.address}:${e.remote.port}`);
    // Retransmissions to the first target for 64*T1, then the second.
    expect(targets[0]).toBe('10.0.0.1:5060');
    expect(targets.indexOf('10.0.0.2:5060')).toBeGreaterThan(0);
    expect(targets.slice(targets.indexOf('10.0.0.2:5060'))).not.toContain('10.0.0.1:5060');
    expect(h.responses.map((r) => r.status)).toEqual([200]);
    expect(h.errors).toEqual([]);
    // A new branch for the new target (§4.3: a new client transaction).
    const branches = new Set(
      sent.filter((e) => e.message.isRequest).map((e) => parseMessage(e.bytes).via[0]?.branch),
    );
    expect(branches.size).toBe(2);
    await w.stack.stop();
  });

  it('§4.3 over a reliable transport: the first target refuses the connection, the second answers at once', async () => {
    const dns = twoTargets('tcp');
    const w = await world({ reliable: true, stack: { resolver: dns.resolver } });
    const b = new RawPeer(w.network, w.clock, 5060, 'TCP', true, '10.0.0.2');
    await b.start();
    const h = new RecordingHandler();
    const { sent } = await recordSends(async () => {
      w.stack.sendRequest(requestTo('sip:svc@example.test;transport=tcp'), h);
      await settle(w.clock);
      const req = b.requests('OPTIONS')[0];
      if (!req) throw new Error('the second target got nothing');
      expect(w.clock.now()).toBe(0); // no timer had to fire
      b.send(responseText(req, 200, 'OK'), w.address);
      await settle(w.clock);
    });
    expect(sent.filter((e) => e.message.isRequest).map((e) => e.remote.address)).toEqual([
      '10.0.0.1',
      '10.0.0.2',
    ]);
    expect(h.responses.map((r) => r.status)).toEqual([200]);
    expect(h.errors).toEqual([]);
    await w.stack.stop();
  });

  it('§4.3 a 503 from the first target fails over to the second; the TU sees only the second answer', async () => {
    const dns = twoTargets('udp');
    const w = await world({ stack: { resolver: dns.resolver } });
    const a = new RawPeer(w.network, w.clock, 5060, 'UDP', false, '10.0.0.1');
    const b = new RawPeer(w.network, w.clock, 5060, 'UDP', false, '10.0.0.2');
    await a.start();
    await b.start();
    const h = new RecordingHandler();
    const sent = w.stack.sendRequest(requestTo('sip:svc@example.test'), h);
    await settle(w.clock);
    const firstTx = sent.transaction;
    const first = a.requests('OPTIONS')[0];
    if (!first || !firstTx) throw new Error('the first target got nothing');
    expect(b.requests()).toHaveLength(0);
    a.send(responseText(first, 503, 'Service Unavailable'), w.address);
    await settle(w.clock);
    const second = b.requests('OPTIONS')[0];
    if (!second) throw new Error('no failover after 503');
    expect(second.via[0]?.branch).not.toBe(first.via[0]?.branch);
    // Each transaction keeps its own request: the first still shows its own branch.
    expect(firstTx.request.via[0]?.branch).toBe(first.via[0]?.branch);
    expect(sent.transaction?.request.via[0]?.branch).toBe(second.via[0]?.branch);
    b.send(responseText(second, 202, 'Accepted'), w.address);
    await settle(w.clock);
    w.clock.advance(10_000);
    expect(h.responses.map((r) => r.status)).toEqual([202]);
    expect(h.errors).toEqual([]);
    // onTerminated once: for the transaction whose answer the TU got.
    expect(h.terminated).toBe(1);
    await w.stack.stop();
  });

  it('§4.3 every target failing ends in one error for the TU', async () => {
    const dns = twoTargets('tcp');
    const w = await world({ reliable: true, stack: { resolver: dns.resolver } });
    const h = new RecordingHandler();
    w.stack.sendRequest(requestTo('sip:svc@example.test;transport=tcp'), h);
    await settle(w.clock);
    expect(h.errors.map((e) => e.code)).toEqual(['SIP_ERR_TRANSPORT']);
    expect(h.responses).toEqual([]);
    await w.stack.stop();
  });
});

describe('transports at runtime', () => {
  it('a transport added after start() is started and used', async () => {
    const w = await world();
    const tcp = new MemoryTransport({
      network: w.network,
      port: 5060,
      protocol: 'TCP',
      reliable: true,
    });
    await w.stack.addTransport(tcp);
    expect(w.stack.transports).toContain(tcp);
    const peer = new RawPeer(w.network, w.clock, 5070, 'TCP', true);
    await peer.start();
    const h = new RecordingHandler();
    w.stack.sendRequest(requestToPeer('OPTIONS', { transport: 'tcp' }), h);
    await settle(w.clock);
    const req = peer.requests('OPTIONS')[0];
    expect(req?.via[0]?.transport.toUpperCase()).toBe('TCP');
    if (!req) throw new Error('nothing over TCP');
    // It receives too: the response comes back over it.
    void peer.transport.send(new TextEncoder().encode(responseText(req, 200, 'OK')), {
      address: '127.0.0.1',
      port: 5060,
    });
    await settle(w.clock);
    expect(h.responses.map((r) => r.status)).toEqual([200]);
    await w.stack.stop();
  });

  it('§17.1.4 removing a transport fails its pending transactions with SIP_ERR_TRANSPORT; later sends find no transport', async () => {
    const w = await world();
    const h = new RecordingHandler();
    const r = w.stack.sendRequest(requestToPeer('INVITE'), h);
    w.clock.advance(0);
    expect(r.transaction?.state).toBe('calling');
    await w.stack.removeTransport(w.transport);
    expect(w.stack.transports).toEqual([]);
    expect(h.errors.map((e) => e.code)).toEqual(['SIP_ERR_TRANSPORT']);
    expect(h.outcomes).toBe(1);
    expect(r.transaction?.state).toBe('terminated');
    expect(w.stack.transactionCount.client).toBe(0);
    // No retransmission after the removal.
    const sent = w.peer.requests('INVITE').length;
    w.clock.advance(64 * T1);
    expect(w.peer.requests('INVITE')).toHaveLength(sent);
    expect(h.errors).toHaveLength(1);
    // The removed transport no longer receives.
    w.peer.send(requestText('OPTIONS', { branch: 'z9hG4bKgone', callId: 'gone' }), w.address);
    w.clock.advance(0);
    expect(w.tu.requests).toEqual([]);
    const h2 = new RecordingHandler();
    w.stack.sendRequest(requestToPeer('OPTIONS'), h2);
    expect(h2.errors.map((e) => e.code)).toEqual(['SIP_ERR_NO_TRANSPORT']);
    await w.stack.stop();
    expect(w.clock.pending).toBe(0);
  });

  it('Transport rule 3: a lost connection fails its pending client transaction at once, not after Timer F', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const stack = new SipStack({ clock, random: () => 0.25 });
    const tcp = new ClosableMemoryTransport({
      network,
      port: 5060,
      protocol: 'TCP',
      reliable: true,
    });
    await stack.addTransport(tcp);
    await stack.start();
    const peer = new RawPeer(network, clock, 5070, 'TCP', true);
    await peer.start();
    const h = new RecordingHandler();
    const r = stack.sendRequest(requestToPeer('MESSAGE', { transport: 'tcp' }), h);
    await settle(clock);
    expect(peer.requests('MESSAGE')).toHaveLength(1);
    const id = r.transaction?.flow.destination.connectionId;
    expect(id).toBe('127.0.0.1:5070');
    // Another connection closing leaves it alone.
    tcp.closeConnection('192.0.2.9:5060');
    expect(h.errors).toEqual([]);
    tcp.closeConnection(id as string, new Error('ECONNRESET'));
    expect(clock.now()).toBe(0);
    expect(h.errors.map((e) => e.code)).toEqual(['SIP_ERR_TRANSPORT']);
    expect(h.errors[0]?.message).toMatch(/ECONNRESET/);
    expect(r.transaction?.state).toBe('terminated');
    expect(stack.transactionCount.client).toBe(0);
    clock.advance(64 * T1);
    expect(h.errors).toHaveLength(1);
    await stack.stop();
    expect(clock.pending).toBe(0);
  });
});

describe('RFC 3261 §18.1.1 message size', () => {
  async function twoTransports() {
    const w = await world();
    await w.stack.addTransport(
      new MemoryTransport({ network: w.network, port: 5060, protocol: 'TCP', reliable: true }),
    );
    const tcpPeer = new RawPeer(w.network, w.clock, 5070, 'TCP', true);
    await tcpPeer.start();
    return { ...w, tcpPeer };
  }

  it('§18.1.1 a request over 1300 bytes to a numeric host without a transport parameter goes over TCP', async () => {
    const w = await twoTransports();
    const big = requestToPeer('MESSAGE', { body: 'x'.repeat(1400) });
    expect(big.serialize().length).toBeGreaterThan(1300);
    w.stack.sendRequest(big, new RecordingHandler());
    await settle(w.clock);
    expect(w.tcpPeer.requests('MESSAGE')).toHaveLength(1);
    expect(w.peer.requests('MESSAGE')).toHaveLength(0);
    expect(w.tcpPeer.requests('MESSAGE')[0]?.via[0]?.transport.toUpperCase()).toBe('TCP');
    await w.stack.stop();
  });

  it('§18.1.1 a small request stays on UDP; so does a large one whose URI says transport=udp', async () => {
    const w = await twoTransports();
    w.stack.sendRequest(requestToPeer('MESSAGE', { body: 'small' }), new RecordingHandler());
    w.stack.sendRequest(
      requestToPeer('MESSAGE', { body: 'x'.repeat(1400), transport: 'udp' }),
      new RecordingHandler(),
    );
    await settle(w.clock);
    expect(w.peer.requests('MESSAGE')).toHaveLength(2);
    expect(w.tcpPeer.requests()).toHaveLength(0);
    await w.stack.stop();
  });

  it('§18.1.1 without a TCP transport the large request goes over UDP', async () => {
    const w = await world();
    w.stack.sendRequest(
      requestToPeer('MESSAGE', { body: 'x'.repeat(1400) }),
      new RecordingHandler(),
    );
    w.clock.advance(0);
    expect(w.peer.requests('MESSAGE')).toHaveLength(1);
    await w.stack.stop();
  });
});

describe('observability (node:diagnostics_channel)', () => {
  it('sip:transport:send and sip:transport:receive carry the message, bytes, protocol and both addresses', async () => {
    const w = await world();
    const received: TransportMessageEvent[] = [];
    const onReceive = (m: unknown) => received.push(m as TransportMessageEvent);
    subscribe(CHANNELS.receive, onReceive);
    try {
      const { sent } = await recordSends(async () => {
        w.stack.sendRequest(requestToPeer('OPTIONS'), new RecordingHandler());
        w.clock.advance(0);
        const req = w.peer.requests('OPTIONS')[0];
        if (!req) throw new Error('nothing sent');
        w.peer.send(responseText(req, 200, 'OK'), w.address);
        w.clock.advance(0);
      });
      const s = sent[0] as TransportMessageEvent;
      expect(s.direction).toBe('send');
      expect(s.message.isRequest && s.message.method).toBe('OPTIONS');
      expect(new TextDecoder().decode(s.bytes)).toBe(s.message.toString());
      expect(s.protocol).toBe('UDP');
      expect(s.local).toEqual({ address: '127.0.0.1', port: 5060 });
      expect(s.remote).toEqual({ address: '127.0.0.1', port: 5070 });
      expect(typeof s.time).toBe('number');
      const r = received[0] as TransportMessageEvent;
      expect(r.direction).toBe('receive');
      expect(!r.message.isRequest && r.message.status).toBe(200);
      expect(r.bytes.length).toBeGreaterThan(0);
      expect(r.protocol).toBe('UDP');
      expect(r.local).toEqual({ address: '127.0.0.1', port: 5060 });
      expect(r.remote).toEqual({ address: '127.0.0.1', port: 5070 });
      expect(typeof r.time).toBe('number');
    } finally {
      unsubscribe(CHANNELS.receive, onReceive);
    }
    await w.stack.stop();
  });

  it('a retransmission is published too, parsed from its bytes', async () => {
    const w = await world();
    const { sent } = await recordSends(async () => {
      w.stack.sendRequest(requestToPeer('OPTIONS'), new RecordingHandler());
      w.clock.advance(T1);
    });
    expect(sent).toHaveLength(2);
    expect(sent[1]?.message.toString()).toBe(sent[0]?.message.toString());
    await w.stack.stop();
  });

  it('sip:transaction:state follows each transaction from start to Terminated (§17.1.2, §17.2.2)', async () => {
    const w = await world();
    const events: TransactionStateEvent[] = [];
    const on = (m: unknown) => events.push(m as TransactionStateEvent);
    subscribe(CHANNELS.transactionState, on);
    try {
      w.tu.answer = (req, tx) => tx?.respond(createResponse(req, 200, undefined, { toTag: 'obs' }));
      const r = w.stack.sendRequest(requestToPeer('OPTIONS'), new RecordingHandler());
      w.clock.advance(0);
      const req = w.peer.requests('OPTIONS')[0];
      if (!req) throw new Error('nothing sent');
      w.peer.send(responseText(req, 200, 'OK'), w.address);
      w.peer.send(requestText('OPTIONS', { branch: 'z9hG4bKobs', callId: 'obs' }), w.address);
      w.clock.advance(64 * T1);
      const client = events.filter((e) => e.id === r.transaction?.id);
      expect(client.map((e) => [e.event, e.from, e.to])).toEqual([
        ['start', 'trying', 'trying'],
        ['response200to699', 'trying', 'completed'],
        ['timerK', 'completed', 'terminated'],
      ]);
      for (const e of client) {
        expect(e.kind).toBe('non-invite-client');
        expect(e.method).toBe('OPTIONS');
        expect(e.state).toBe(e.to);
        expect(typeof e.time).toBe('number');
      }
      const server = events.filter((e) => e.kind === 'non-invite-server');
      expect(server.map((e) => [e.event, e.from, e.to])).toEqual([
        ['start', 'trying', 'trying'],
        ['response200to699', 'trying', 'completed'],
        ['timerJ', 'completed', 'terminated'],
      ]);
    } finally {
      unsubscribe(CHANNELS.transactionState, on);
    }
    await w.stack.stop();
  });
});

describe('bad input and misuse', () => {
  it('§8.2.6 / §21.4.1 a request whose CSeq number is out of range gets a stateless 400 naming the problem', async () => {
    const w = await world();
    const text = requestText('OPTIONS', { branch: 'z9hG4bKcseq', callId: 'cseq' }).replace(
      'CSeq: 1 OPTIONS',
      'CSeq: 4294967296 OPTIONS',
    );
    w.peer.send(text, w.address);
    w.clock.advance(0);
    const res = w.peer.responses();
    expect(res.map((r) => r.status)).toEqual([400]);
    expect(res[0]?.reason).toMatch(/^Bad Request \(.*CSeq.*out of range/);
    expect(w.tu.requests).toEqual([]);
    await w.stack.stop();
  });

  it('§8.1.1.5 a request without CSeq is answered with 400 that says so', async () => {
    const w = await world();
    const text = requestText('OPTIONS', { branch: 'z9hG4bKnocseq', callId: 'nocseq' }).replace(
      'CSeq: 1 OPTIONS\r\n',
      '',
    );
    w.peer.send(text, w.address);
    w.clock.advance(0);
    expect(w.peer.responses().map((r) => [r.status, r.reason])).toEqual([
      [400, expect.stringMatching(/CSeq/)],
    ]);
    await w.stack.stop();
  });

  it('sendRequest before start() throws SIP_ERR_STACK_STATE synchronously; so does it after stop()', async () => {
    const clock = new VirtualClock();
    const stack = new SipStack({ clock });
    await stack.addTransport(new MemoryTransport({ network: new MemoryNetwork({ clock }) }));
    const h = new RecordingHandler();
    expect(() => stack.sendRequest(requestToPeer('OPTIONS'), h)).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_STACK_STATE', initiator: 'user' }),
    );
    expect(h.errors).toEqual([]);
    await stack.start();
    await stack.stop();
    expect(() => stack.sendRequest(requestToPeer('OPTIONS'), h)).toThrow(
      expect.objectContaining({ code: 'SIP_ERR_STACK_STATE' }),
    );
    await expect(stack.start()).rejects.toMatchObject({ code: 'SIP_ERR_STACK_STATE' });
    expect(clock.pending).toBe(0);
  });
});

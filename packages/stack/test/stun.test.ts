import { describe, expect, it } from 'vitest';
import { SipStack } from '../src/index.ts';
import { bindingRequest, bindingSuccess, isStun, parseStun } from '../src/stun.ts';
import { MemoryNetwork, MemoryTransport, VirtualClock } from '../src/testing/index.ts';

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('STUN Binding messages (RFC 5389) for keep-alives on datagram flows (RFC 5626 §4.4.2)', () => {
  it('RFC 5769 §2.2: XOR-MAPPED-ADDRESS of 192.0.2.1:32853 with transaction id b7e7a701bc34d686fa87dfae', () => {
    const tid = 'b7e7a701bc34d686fa87dfae';
    const res = bindingSuccess(tid, { address: '192.0.2.1', port: 32853 });
    // Header: Binding success (0x0101), length 12, magic cookie, transaction id.
    expect(hexOf(res.subarray(0, 20))).toBe(`0101000c2112a442${tid}`);
    // The attribute as RFC 5769 prints it: type 0x0020, length 8, family 1, port and address XORed.
    expect(hexOf(res.subarray(20))).toBe('0020000800' + '01' + 'a147' + 'e112a643');
    expect(parseStun(res)).toEqual({
      kind: 'success',
      transactionId: tid,
      mapped: { address: '192.0.2.1', port: 32853 },
    });
  });

  it('an IPv6 reflexive address goes through XOR with cookie and transaction id, and back', () => {
    const tid = '0123456789abcdef01234567';
    for (const address of ['2001:db8:1234:5678:11:2233:4455:6677', '::1', '[2001:db8::5]']) {
      const m = parseStun(bindingSuccess(tid, { address, port: 5060 }));
      expect(m?.kind).toBe('success');
      expect(m?.mapped?.port).toBe(5060);
      const expected = {
        '2001:db8:1234:5678:11:2233:4455:6677': '2001:db8:1234:5678:11:2233:4455:6677',
        '::1': '0:0:0:0:0:0:0:1',
        '[2001:db8::5]': '2001:db8:0:0:0:0:0:5',
      }[address];
      expect(m?.mapped?.address).toBe(expected);
    }
  });

  it('a Binding request is 20 bytes with the magic cookie; SIP text and short or odd data are not STUN', () => {
    const req = bindingRequest('000102030405060708090a0b');
    expect(hexOf(req)).toBe('000100002112a442000102030405060708090a0b');
    expect(isStun(req)).toBe(true);
    expect(parseStun(req)).toEqual({
      kind: 'request',
      transactionId: '000102030405060708090a0b',
      mapped: undefined,
    });
    expect(isStun(new TextEncoder().encode('OPTIONS sip:a@b SIP/2.0\r\n\r\n'))).toBe(false);
    expect(isStun(req.subarray(0, 19))).toBe(false);
    const badLength = Uint8Array.from(req);
    badLength[3] = 4;
    expect(isStun(badLength)).toBe(false);
    expect(() => bindingRequest('xyz')).toThrow(RangeError);
  });

  it('random and truncated attribute bytes never throw', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed & 0xff;
    };
    for (let i = 0; i < 2000; i++) {
      const len = 4 * (rnd() % 8);
      const b = new Uint8Array(20 + len);
      b.set(bindingRequest('00112233445566778899aabb'));
      b[0] = rnd() & 0x01;
      b[1] = rnd();
      b[2] = 0;
      b[3] = len;
      for (let j = 20; j < b.length; j++) b[j] = rnd();
      expect(() => parseStun(b)).not.toThrow();
    }
  });
});

describe('SipStack.sendKeepAlive on a datagram flow: STUN (RFC 5626 §4.4.2, §8)', () => {
  async function pair(options?: { stunServer?: boolean }) {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 9 });
    const a = new SipStack({ clock });
    const at = new MemoryTransport({ network, port: 5061 });
    await a.addTransport(at);
    await a.start();
    const b = new SipStack({ clock, ...(options ?? {}) });
    await b.addTransport(new MemoryTransport({ network, port: 5062 }));
    await b.start();
    const flow = { transport: at, destination: { address: '127.0.0.1', port: 5062 } };
    return { clock, network, a, b, flow };
  }

  async function settle(clock: VirtualClock, p: Promise<boolean>, ms: number): Promise<boolean> {
    let done: boolean | undefined;
    void p.then((v) => (done = v));
    for (let t = 0; t < ms && done === undefined; t += 50) {
      clock.advance(50);
      await new Promise((r) => setImmediate(r));
    }
    if (done === undefined) throw new Error('the keep-alive did not settle');
    return done;
  }

  it('the SIP server answers the Binding request on its SIP port: the keep-alive succeeds', async () => {
    const { clock, a, b, flow } = await pair();
    expect(await settle(clock, a.sendKeepAlive(flow, 10_000), 2000)).toBe(true);
    expect(await settle(clock, a.sendKeepAlive(flow, 10_000), 2000)).toBe(true);
    await a.stop();
    await b.stop();
  });

  it('no answer (stunServer: false, or nobody there): false at the deadline, after retransmissions', async () => {
    const { clock, network, a, b, flow } = await pair({ stunServer: false });
    const before = network.stats.sent;
    expect(await settle(clock, a.sendKeepAlive(flow, 4000), 6000)).toBe(false);
    // Sent at 0, 0.5, 1.5 and 3.5 s: retransmitted with a doubling interval (RFC 5389 §7.2.1).
    expect(network.stats.sent - before).toBe(4);
    await b.stop();
    const gone = { ...flow, destination: { address: '127.0.0.1', port: 5099 } };
    expect(await settle(clock, a.sendKeepAlive(gone, 1000), 3000)).toBe(false);
    await a.stop();
  });

  it('a 30% lossy network: the retransmitted request still gets its answer', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, seed: 5, conditions: { drop: 0.3 } });
    const a = new SipStack({ clock });
    const at = new MemoryTransport({ network, port: 5061 });
    await a.addTransport(at);
    await a.start();
    const b = new SipStack({ clock });
    await b.addTransport(new MemoryTransport({ network, port: 5062 }));
    await b.start();
    const flow = { transport: at, destination: { address: '127.0.0.1', port: 5062 } };
    let ok = 0;
    for (let i = 0; i < 10; i++)
      if (await settle(clock, a.sendKeepAlive(flow, 10_000), 12_000)) ok++;
    expect(ok).toBeGreaterThanOrEqual(9);
    expect(network.stats.dropped).toBeGreaterThan(0);
    await a.stop();
    await b.stop();
  });
});

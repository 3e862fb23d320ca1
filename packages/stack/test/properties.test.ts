// Properties of the transaction layer (RFC 3261 §17, RFC 6026) over a lossy network:
// a UAC stack and a UAS stack on a MemoryNetwork that drops, duplicates and reorders.
import {
  createRequest,
  createResponse,
  type SipRequest,
  type SipResponse,
} from '@sipworks/message';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ServerTransactionLike, SipStack } from '../src/index.ts';
import {
  MemoryNetwork,
  MemoryTransport,
  type NetworkConditions,
  seeded,
  VirtualClock,
} from '../src/testing/index.ts';
import { RecordingHandler } from './harness.ts';

const T1 = 500;
const T2 = 4000;
const TEN_MINUTES = 600_000;

const NON_INVITE = ['OPTIONS', 'MESSAGE', 'REGISTER', 'INFO', 'PUBLISH', 'SUBSCRIBE'] as const;

interface Plan {
  method: string;
  /** The final status the UAS answers with. */
  final: number;
  /** When the UAC sends it (ms). */
  at: number;
  /** How long the UAS rings before the final response (INVITE only, ms). */
  ring: number;
}

const planArb: fc.Arbitrary<Plan> = fc.oneof(
  fc.record({
    method: fc.constant('INVITE'),
    final: fc.constantFrom(200, 200, 202, 302, 404, 486, 500, 603),
    at: fc.integer({ min: 0, max: 5000 }),
    ring: fc.integer({ min: 0, max: 3000 }),
  }),
  fc.record({
    method: fc.constantFrom(...NON_INVITE),
    final: fc.constantFrom(200, 202, 301, 404, 481, 500, 503, 606),
    at: fc.integer({ min: 0, max: 5000 }),
    ring: fc.constant(0),
  }),
);

const delayArb: fc.Arbitrary<NetworkConditions['delay']> = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: 0, max: 150 }),
  fc
    .tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 300 }))
    .map(([a, b]): [number, number] => [a, a + b]),
);

function conditions(drop: fc.Arbitrary<number>): fc.Arbitrary<NetworkConditions> {
  return fc
    .record({ drop, duplicate: fc.double({ min: 0, max: 0.3, noNaN: true }), delay: delayArb })
    .map(({ delay, ...rest }) => (delay === undefined ? rest : { ...rest, delay }));
}

const lossyArb = conditions(fc.double({ min: 0, max: 0.5, noNaN: true }));
const losslessArb = conditions(fc.constant(0));

interface Sent {
  plan: Plan;
  handler: RecordingHandler;
  callId: string;
}

/**
 * The UAS core: 180 then the planned final for an INVITE (after `ring` ms), the final at
 * once for anything else. Like any UAS core it retransmits its 2xx to an INVITE until the
 * ACK comes, at T1 doubling to T2, for 64*T1 (RFC 3261 §13.3.1.4).
 */
class UasCore {
  readonly seen = new Map<string, number>();
  readonly acked = new Set<string>();
  readonly errors: unknown[] = [];
  private readonly timers = new Set<unknown>();
  private readonly clock: VirtualClock;
  private readonly plans: Map<string, Plan>;
  constructor(clock: VirtualClock, plans: Map<string, Plan>) {
    this.clock = clock;
    this.plans = plans;
  }

  onRequest(request: SipRequest, tx: ServerTransactionLike | undefined): void {
    const key = `${request.callId}|${request.method}`;
    this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
    if (request.method === 'ACK') {
      this.acked.add(request.callId);
      return;
    }
    const plan = this.plans.get(request.callId);
    if (!tx || !plan) return;
    const toTag = `uas-${request.callId.split('@')[0]}`;
    const final = createResponse(request, plan.final, undefined, { toTag });
    if (request.method !== 'INVITE') {
      this.respond(tx, final);
      return;
    }
    this.respond(tx, createResponse(request, 180, undefined, { toTag }));
    this.later(plan.ring, () => {
      this.respond(tx, final);
      if (plan.final < 300) this.retransmit2xx(tx, final, T1, this.clock.now());
    });
  }

  private retransmit2xx(tx: ServerTransactionLike, res: SipResponse, gap: number, since: number) {
    this.later(gap, () => {
      if (this.acked.has(res.callId) || tx.state === 'terminated') return;
      if (this.clock.now() - since >= 64 * T1) return;
      this.respond(tx, res);
      this.retransmit2xx(tx, res, Math.min(2 * gap, T2), since);
    });
  }

  private respond(tx: ServerTransactionLike, res: SipResponse): void {
    try {
      tx.respond(res);
    } catch (e) {
      this.errors.push(e);
    }
  }

  private later(ms: number, fn: () => void): void {
    const h = this.clock.setTimeout(() => {
      this.timers.delete(h);
      fn();
    }, ms);
    this.timers.add(h);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }
}

/** Run one scenario; returns what each side saw. */
async function scenario(conditions: NetworkConditions, seed: number, plans: Plan[]) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, seed, conditions });
  const uac = new SipStack({ clock, random: seeded(seed ^ 0x5a5a) });
  const uas = new SipStack({ clock, random: seeded(seed ^ 0xa5a5) });
  await uac.addTransport(new MemoryTransport({ network, port: 5070 }));
  await uas.addTransport(new MemoryTransport({ network, port: 5060 }));
  await uac.start();
  await uas.start();
  const byCallId = new Map<string, Plan>();
  const core = new UasCore(clock, byCallId);
  uas.setTransactionUser(core);
  // The UAC core only receives stray responses (2xx retransmitted after Timer M).
  uac.setTransactionUser({ onRequest() {} });

  const sent: Sent[] = plans.map((plan, i) => {
    const callId = `p${seed}-${i}@prop`;
    byCallId.set(callId, plan);
    return { plan, handler: new RecordingHandler(), callId };
  });
  let acksSent = 0;
  for (const s of sent) {
    clock.setTimeout(() => {
      const req = createRequest({
        method: s.plan.method,
        uri: 'sip:uas@127.0.0.1:5060',
        from: `<sip:uac@127.0.0.1>;tag=${s.callId.split('@')[0]}`,
        to: '<sip:uas@127.0.0.1>',
        callId: s.callId,
        cseq: 1,
      });
      const h = s.handler;
      const onResponse = h.onResponse.bind(h);
      // The UAC core ACKs every 2xx to an INVITE it gets, retransmissions included (§13.2.2.4).
      h.onResponse = (res, tx) => {
        onResponse(res, tx);
        if (req.method !== 'INVITE' || res.status < 200 || res.status >= 300) return;
        const ack = createRequest({
          method: 'ACK',
          uri: req.uri,
          from: req.from,
          to: res.to,
          callId: req.callId,
          cseq: req.cseq.seq,
        });
        uac.sendRequest(ack, { onResponse() {} });
        acksSent++;
      };
      uac.sendRequest(req, h);
    }, s.plan.at);
  }
  clock.runAll(TEN_MINUTES);
  const counts = { uac: uac.transactionCount, uas: uas.transactionCount };
  const pendingBeforeStop = clock.pending;
  await uac.stop();
  await uas.stop();
  return {
    sent,
    core,
    counts,
    pendingBeforeStop,
    pendingAfterStop: clock.pending,
    acksSent,
    stats: network.stats,
  };
}

/** The first final response a handler got (2xx retransmissions may follow it). */
function firstFinal(h: RecordingHandler): SipResponse | undefined {
  return h.responses.find((r) => r.status >= 200);
}

describe('transaction properties over a lossy network (RFC 3261 §17, RFC 6026)', () => {
  it('§17.1 every client transaction ends with exactly one outcome; §17.2 every server transaction terminates; no timer is left', async () => {
    // What the runs went through, so the property is known to reach the lossy paths.
    const seen = { timeouts: 0, repeated2xx: 0, dropped: 0, duplicated: 0 };
    await fc.assert(
      fc.asyncProperty(
        lossyArb,
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.array(planArb, { minLength: 1, maxLength: 8 }),
        async (conditions, seed, plans) => {
          const r = await scenario(conditions, seed, plans);
          seen.dropped += r.stats.dropped;
          seen.duplicated += r.stats.duplicated;
          for (const { plan, handler } of r.sent) {
            const first = firstFinal(handler);
            seen.timeouts += handler.errors.length;
            if (handler.responses.filter((x) => x.status >= 200).length > 1) seen.repeated2xx++;
            // One outcome: a first final response, or one error, never both.
            expect(handler.errors.length + (first ? 1 : 0)).toBe(1);
            expect(handler.errors.length).toBeLessThanOrEqual(1);
            if (first) expect(first.status).toBe(plan.final);
            else expect(handler.errors[0]?.code).toBe('SIP_ERR_TX_TIMEOUT');
            // Only 2xx to an INVITE may come again (RFC 6026 §7.2); the rest once.
            const finals = handler.responses.filter((x) => x.status >= 200);
            if (plan.method !== 'INVITE' || plan.final >= 300)
              expect(finals.length).toBe(1 - handler.errors.length);
            else for (const f of finals) expect(f.status).toBe(plan.final);
            expect(handler.terminated).toBe(1);
          }
          // The server transactions absorb retransmissions and duplicates: the UAS core
          // sees each request at most once.
          for (const { plan, callId } of r.sent)
            expect(r.core.seen.get(`${callId}|${plan.method}`) ?? 0).toBeLessThanOrEqual(1);
          expect(r.core.errors).toEqual([]);
          expect(r.counts.uac).toEqual({ client: 0, server: 0 });
          expect(r.counts.uas).toEqual({ client: 0, server: 0 });
          expect(r.core.pendingTimers).toBe(0);
          expect(r.pendingBeforeStop).toBe(0);
          expect(r.pendingAfterStop).toBe(0);
        },
      ),
      { numRuns: 150, seed: 4475, endOnFailure: true },
    );
    expect(seen.timeouts).toBeGreaterThan(0);
    expect(seen.repeated2xx).toBeGreaterThan(0);
    expect(seen.dropped).toBeGreaterThan(0);
    expect(seen.duplicated).toBeGreaterThan(0);
  });

  it('§17.1 without loss (duplicates and reordering only) every request gets its planned final, and every 2xx is ACKed', async () => {
    await fc.assert(
      fc.asyncProperty(
        losslessArb,
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.array(planArb, { minLength: 1, maxLength: 8 }),
        async (conditions, seed, plans) => {
          const r = await scenario(conditions, seed, plans);
          for (const { plan, handler, callId } of r.sent) {
            expect(handler.errors).toEqual([]);
            expect(firstFinal(handler)?.status).toBe(plan.final);
            expect(r.core.seen.get(`${callId}|${plan.method}`)).toBe(1);
            if (plan.method === 'INVITE') {
              // The 180 came first, unless reordering put it after the final.
              expect(handler.responses.map((x) => x.status)).toContain(plan.final);
              // §17.1.1.3 / §13.2.2.4: the non-2xx ACK is the transaction's and never reaches
              // the core; the 2xx ACK is the UAC core's and always does.
              expect(r.core.acked.has(callId)).toBe(plan.final < 300);
            }
          }
          expect(r.stats.dropped).toBe(0);
          expect(r.counts.uac).toEqual({ client: 0, server: 0 });
          expect(r.counts.uas).toEqual({ client: 0, server: 0 });
          expect(r.pendingAfterStop).toBe(0);
        },
      ),
      { numRuns: 100, seed: 3261, endOnFailure: true },
    );
  });
});

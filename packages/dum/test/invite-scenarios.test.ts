import diagnosticsChannel from 'node:diagnostics_channel';
import type { SipRequest, SipResponse } from '@sipworks/message';
import { CHANNELS, type TransportMessageEvent } from '@sipworks/stack';
import type { MemoryNetwork } from '@sipworks/stack/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientInviteSession } from '../src/index.ts';
import { establish, sdp, sessionPair, until } from './support.ts';

/** Every message the stacks of a test sent, by the local port that sent it. */
class Sent {
  readonly entries: Array<{ port: number; message: SipRequest | SipResponse }> = [];
  private readonly listener = (event: unknown): void => {
    const e = event as TransportMessageEvent;
    this.entries.push({ port: e.local.port, message: e.message });
  };
  constructor() {
    diagnosticsChannel.subscribe(CHANNELS.send, this.listener);
  }
  stop(): void {
    diagnosticsChannel.unsubscribe(CHANNELS.send, this.listener);
  }
  /** Requests of `method` sent from `port`. */
  requests(port: number, method: string): SipRequest[] {
    return this.entries
      .filter((e) => e.port === port && e.message.isRequest)
      .map((e) => e.message as SipRequest)
      .filter((m) => m.method === method);
  }
  /** Statuses of the responses to `method` sent from `port`. */
  responses(port: number, method: string): number[] {
    return this.entries
      .filter((e) => e.port === port && !e.message.isRequest && e.message.cseq.method === method)
      .map((e) => (e.message as SipResponse).status);
  }
}

/** Drop the datagrams `match` picks (up to `count`), whatever the network's conditions. */
function dropMatching(
  network: MemoryNetwork,
  match: (text: string) => boolean,
  count = 1,
): () => number {
  const deliver = network.deliver.bind(network);
  let dropped = 0;
  network.deliver = (from, data, to) => {
    if (dropped < count && match(new TextDecoder().decode(data))) {
      dropped++;
      return;
    }
    deliver(from, data, to);
  };
  return () => dropped;
}

let sent: Sent | undefined;
afterEach(() => {
  sent?.stop();
  sent = undefined;
});

describe('invite session scenarios between two DUMs (RFC 3261)', () => {
  it('§15.1 crossed BYEs: both sides hang up at once; both BYEs answered 200, each session ends once', async () => {
    const { a, b, clock } = await sessionPair();
    const { caller, callee } = await establish(a, b, clock);
    sent = new Sent();
    caller.get().end();
    callee.get().end();
    await until(clock, () => !caller.isValid() && !callee.isValid());
    expect(a.rec.events.filter((e) => e.startsWith('terminated'))).toEqual([
      'terminated:local-bye',
    ]);
    expect(b.rec.events.filter((e) => e.startsWith('terminated'))).toEqual([
      'terminated:local-bye',
    ]);
    expect(sent.requests(a.port, 'BYE')).toHaveLength(1);
    expect(sent.requests(b.port, 'BYE')).toHaveLength(1);
    // §15.1.2: each BYE reached a dialog that still existed and got 200 (not 481).
    expect(sent.responses(a.port, 'BYE')).toEqual([200]);
    expect(sent.responses(b.port, 'BYE')).toEqual([200]);
    expect(a.dum.dialogCount).toBe(0);
    expect(b.dum.dialogCount).toBe(0);
  });

  it('§13.3.1.4 + §13.2.2.4 the ACK is lost: the callee retransmits its 2xx at T1, the caller ACKs it again, the session is up once', async () => {
    const { a, b, clock, network } = await sessionPair();
    sent = new Sent();
    const dropped = dropMatching(network, (t) => t.startsWith('ACK '));
    const { caller, callee } = await establish(a, b, clock);
    await until(clock, () => b.rec.has('connected'));
    expect(dropped()).toBe(1);
    // The first 2xx and at least one retransmission; two ACKs, the same request again.
    const oks = sent.responses(b.port, 'INVITE').filter((s) => s === 200);
    expect(oks.length).toBeGreaterThanOrEqual(2);
    const acks = sent.requests(a.port, 'ACK');
    expect(acks).toHaveLength(2);
    expect(acks[1]?.cseq.seq).toBe(acks[0]?.cseq.seq);
    expect(acks[1]?.header('Via')).toBe(acks[0]?.header('Via'));
    expect(a.rec.count('connected')).toBe(1);
    expect(b.rec.count('connected')).toBe(1);
    // Once the ACK arrived, the 2xx is no longer sent.
    const before = sent.responses(b.port, 'INVITE').length;
    await until(clock, () => false, { steps: 400 }).catch(() => undefined);
    expect(sent.responses(b.port, 'INVITE').length).toBe(before);
    expect(b.rec.events.some((e) => e.startsWith('terminated'))).toBe(false);
    caller.get().end();
    await until(clock, () => !callee.isValid() && !caller.isValid());
  });

  for (const drop of [0.1, 0.3]) {
    it(`§17.1.1.2 + §17.1.2.2 + §13.3.1.4 a call over a network losing ${drop * 100}% of datagrams both ways completes within 64*T1 per transaction`, async () => {
      let dropped = 0;
      let sentTotal = 0;
      for (let seed = 1; seed <= 10; seed++) {
        const { a, b, clock, network } = await sessionPair(seed);
        network.conditions = { drop };
        b.rec.onIncoming = (h) => h.get().accept({ body: sdp('bob', 5000) });
        const t1 = a.dum.stack.timers.t1;
        const start = clock.now();
        const caller = a.dum.send<ClientInviteSession>(
          a.dum.makeInviteSession(`sip:bob@127.0.0.1:${b.port}`, a.profile, {
            body: sdp('alice', 4000),
          }),
        );
        // Timer B (64*T1) bounds the INVITE; the 2xx is retransmitted until the ACK (Timer H, 64*T1).
        await until(clock, () => a.rec.has('connected') && b.rec.has('connected'), {
          steps: (64 * t1) / 10,
        });
        expect(clock.now() - start, `seed ${seed}`).toBeLessThanOrEqual(64 * t1);
        const byeAt = clock.now();
        caller.get().end();
        // Timer F (64*T1) bounds the BYE.
        await until(clock, () => !caller.isValid() && a.rec.has('terminated:local-bye'), {
          steps: (64 * t1) / 10 + 10,
        });
        await until(clock, () => b.rec.has('terminated:remote-bye'), { steps: 100 });
        expect(clock.now() - byeAt, `seed ${seed}`).toBeLessThanOrEqual(64 * t1 + 100);
        expect(a.rec.count('connected')).toBe(1);
        expect(b.rec.count('connected')).toBe(1);
        expect(b.rec.has('terminated:timeout')).toBe(false);
        dropped += network.stats.dropped;
        sentTotal += network.stats.sent;
        await a.dum.stack.stop();
        await b.dum.stack.stop();
      }
      // The loss really happened, near the rate asked for (10 calls, a few hundred datagrams).
      expect(dropped).toBeGreaterThan(0);
      expect(dropped / sentTotal).toBeGreaterThan(drop / 3);
      expect(dropped / sentTotal).toBeLessThan(drop * 2);
    });
  }
});

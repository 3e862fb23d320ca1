import { afterEach, describe, expect, it } from 'vitest';
import { FuzzSender, type FuzzTarget, Mutator } from '../src/fuzz.ts';
import { UdpProbe } from '../src/probe.ts';
import { ServeProcess } from '../src/serve-process.ts';

/** Mutated messages per transport; `SIPWORKS_FUZZ_ITERATIONS` raises it for a longer run. */
const ITERATIONS = Number(process.env.SIPWORKS_FUZZ_ITERATIONS ?? 500);
const SEED = Number(process.env.SIPWORKS_FUZZ_SEED ?? 20261125);
const WARM_UP = 150;
const HEALTH_EVERY = 50;

let server: ServeProcess | undefined;
let probe: UdpProbe | undefined;
const senders: FuzzSender[] = [];

afterEach(async () => {
  for (const s of senders.splice(0)) await s.close();
  await probe?.close();
  probe = undefined;
  await server?.stop();
  server = undefined;
});

describe('fuzzing `sipworks serve` (RFC 3261 §16.3/§18.3: bad input is answered or dropped, never fatal)', () => {
  it(`${ITERATIONS} mutated real messages over each of UDP, TCP and WebSocket: no crash, OPTIONS answered within 100 ms, flat heap`, async () => {
    server = await ServeProcess.start({
      inspect: true,
      args: [
        '--listen',
        'udp:127.0.0.1:0',
        '--listen',
        'tcp:127.0.0.1:0',
        '--listen',
        'ws:127.0.0.1:0',
        '--answer',
        'busy',
      ],
    });
    const s = server;
    const udp = s.listener('udp');
    probe = new UdpProbe();
    await probe.open();
    const p = probe;
    for (const protocol of ['udp', 'tcp', 'ws'] as const) {
      const l = s.listener(protocol);
      senders.push(new FuzzSender({ protocol, address: l.address, port: l.port } as FuzzTarget));
    }
    const mutator = new Mutator(SEED);
    const latencies: number[] = [];
    const health = async (): Promise<void> => {
      const r = await p.options(udp, 2000);
      expect(r.status).toBe(200);
      latencies.push(r.ms);
    };
    const round = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        for (const sender of senders) await sender.send(mutator);
        if (i % HEALTH_EVERY === HEALTH_EVERY - 1) {
          // Let the server drain what is queued, as a real peer's request would wait its turn.
          await new Promise((r) => setImmediate(r));
          await health();
          expect(s.running, s.output()).toBe(true);
        }
      }
    };

    await round(WARM_UP);
    await health();
    const before = await s.heapAfterGc();
    await round(ITERATIONS);
    await health();
    const after = await s.heapAfterGc();

    expect(s.running, s.output()).toBe(true);
    expect(senders.reduce((n, x) => n + x.sent, 0)).toBe(3 * (WARM_UP + ITERATIONS));
    // The health OPTIONS is answered promptly all through the run.
    const worst = Math.max(...latencies);
    expect(
      worst,
      `OPTIONS round trips: ${latencies.map((x) => x.toFixed(1)).join(' ')}`,
    ).toBeLessThan(100);
    // Heap after GC: transactions of the run are still in their Timer J / H wait
    // (32 s), so some growth is expected; a leak of even a few KiB per message is not.
    const growth = after - before;
    console.log(
      `[fuzz] ${3 * ITERATIONS} messages (seed ${SEED}); heap after GC ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB; OPTIONS worst ${worst.toFixed(1)} ms; connections closed by the server: tcp ${senders[1]?.closedByServer}, ws ${senders[2]?.closedByServer}`,
    );
    expect(growth).toBeLessThan(Math.max(0.1 * before, 2 * 2 ** 20) + ITERATIONS * 1024);
  }, Math.max(60_000, ITERATIONS * 50));
});

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { peerGate } from '@sipworks/interop/peer';
import {
  freePort,
  type SippProcess,
  sippInfo,
  startSipp,
  waitForListen,
} from '@sipworks/interop/sipp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ServeProcess } from '../src/serve-process.ts';

const SCENARIOS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'scenarios');
const info = sippInfo();
const gate = peerGate('SIPp', info, 'sip-tester');

let server: ServeProcess | undefined;
const sipps: SippProcess[] = [];

afterEach(async (ctx) => {
  const failed = ctx.task.result?.state === 'fail';
  for (const s of sipps.splice(0)) {
    await s.stop();
    if (failed) console.warn(`[reliability] SIPp traces kept in ${s.dir}`);
    else fs.rmSync(s.dir, { recursive: true, force: true });
  }
  await server?.stop();
  server = undefined;
});

/**
 * SIPp calls and registers with `sipworks serve` over UDP and loses a share of the
 * datagrams it sends and receives (`-lost`), so both directions lose. SIPp retransmits as
 * RFC 3261 §17.1.1.2 and §17.1.2.2 allow (7 INVITE and 11 non-INVITE retransmissions:
 * Timer B and F), serve retransmits its 2xx until the ACK (§13.3.1.4) and answers
 * retransmitted requests from its transactions: every call and registration completes.
 * Subscriptions too: SIPp subscribes and unsubscribes (scenarios/subscribe-uac.xml) and
 * answers every NOTIFY, wherever it arrives, with -aa; a NOTIFY crossing the 2xx, or sent
 * again when its 200 was lost, does not derail the scenario.
 */
describe.skipIf(gate.skip)(
  'SIPp calls, registrations and subscriptions with packet loss (RFC 3261 §17 retransmissions, RFC 6665)',
  () => {
    beforeAll(() => gate.require());

    it.each([
      { flow: 'call', lost: 10, calls: 10 },
      { flow: 'call', lost: 30, calls: 4 },
      { flow: 'register', lost: 10, calls: 10 },
      { flow: 'register', lost: 30, calls: 5 },
      { flow: 'subscribe', lost: 10, calls: 10 },
      { flow: 'subscribe', lost: 30, calls: 5 },
    ] as const)(
      '$flow with $lost% of datagrams lost: all $calls complete, none failed',
      async ({ flow, lost, calls }) => {
        server = await ServeProcess.start({
          args: ['--listen', 'udp:127.0.0.1:0', '--answer', 'auto', '--answer-delay', '0'],
        });
        const udp = server.listener('udp');
        const port = await freePort();
        const sipp = await startSipp({
          scenario:
            flow === 'call'
              ? { builtin: 'uac' }
              : { file: path.join(SCENARIOS, `${flow}-uac.xml`) },
          transport: 'u1',
          port,
          remote: `${udp.address}:${udp.port}`,
          calls,
          timeoutSeconds: 90,
          extra: [
            '-r',
            '10',
            '-l',
            String(calls),
            '-lost',
            String(lost),
            '-max_invite_retrans',
            '7',
            '-max_non_invite_retrans',
            '11',
            '-d',
            '100',
            // NOTIFYs (first, retransmitted, final) are answered 200 wherever they arrive.
            ...(flow === 'subscribe' ? ['-aa'] : []),
          ],
        });
        sipps.push(sipp);
        await waitForListen(port, 'udp', sipp);
        const exit = await sipp.wait(95_000);
        expect(exit.stats, sipp.traces()).toBeDefined();
        expect(exit.stats?.successful, sipp.traces()).toBe(calls);
        expect(exit.stats?.failed, sipp.traces()).toBe(0);
        expect(exit.code, sipp.traces()).toBe(0);
        expect(server.running).toBe(true);
        if (flow === 'subscribe') {
          // RFC 6665 §4.2.1: every subscription got NOTIFYs; SIPp received them (retransmissions too).
          const log = fs.readFileSync(path.join(sipp.dir, 'messages.log'), 'utf8');
          const notifies = new Set(
            [...log.matchAll(/^NOTIFY sip:[^\n]*\n(?:[^\n]+\n)*?Call-ID: *(\S+)/gim)].map(
              (m) => m[1],
            ),
          );
          expect(notifies.size, sipp.traces()).toBe(calls);
        }
        console.log(
          `[sipp-loss] ${flow}, ${lost}% lost: ${exit.stats?.successful}/${calls} complete, ${exit.stats?.retransmissions} retransmissions by SIPp`,
        );
      },
      100_000,
    );
  },
);

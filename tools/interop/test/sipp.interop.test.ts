import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SipStack, type Transport } from '@sipworks/stack';
import { TcpTransport } from '@sipworks/transport-tcp';
import { UdpTransport } from '@sipworks/transport-udp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { peerGate } from '../src/peer.ts';
import {
  freePort,
  SIPP_BINARY,
  type SippProcess,
  type SippTransport,
  sippInfo,
  startSipp,
  waitForListen,
} from '../src/sipp.ts';
import { sendOptions } from '../src/uac.ts';
import { TinyUas } from '../src/uas.ts';
import { placeCall } from './support/call.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const OPTIONS_SCENARIO = path.join(here, '..', 'scenarios', 'options-uac.xml');
const OPTIONS_UAS_SCENARIO = path.join(here, '..', 'scenarios', 'options-uas.xml');

const info = sippInfo();
const gate = peerGate('SIPp', info, 'sip-tester');
if (info.available && !info.tls)
  console.warn(
    `[interop] SIPp TLS case skipped: ${info.version} was built without TLS (Debian's sip-tester has no OpenSSL); ` +
      'this is a property of the build, not a missing install',
  );

type Proto = 'UDP' | 'TCP';
const MODES: Array<{ proto: Proto; sipp: SippTransport }> = [
  { proto: 'UDP', sipp: 'u1' },
  { proto: 'TCP', sipp: 't1' },
];

const stacks: SipStack[] = [];
const uases: TinyUas[] = [];
const sipps: SippProcess[] = [];

/** Kill SIPp if still running, stop the stacks; keep SIPp's traces only when the test failed. */
async function cleanup(failed = false): Promise<void> {
  const done = sipps.splice(0);
  await Promise.all(done.map((s) => s.stop()));
  for (const u of uases.splice(0)) u.close();
  await Promise.all(stacks.splice(0).map((s) => s.stop()));
  for (const s of done) {
    if (failed) console.warn(`[interop] SIPp traces kept in ${s.dir}`);
    else fs.rmSync(s.dir, { recursive: true, force: true });
  }
}

/** A started stack; the transport is added afterwards, at runtime. */
async function stackWith(proto: Proto): Promise<{ stack: SipStack; transport: Transport }> {
  const stack = new SipStack();
  stacks.push(stack);
  await stack.start();
  const transport =
    proto === 'UDP'
      ? new UdpTransport({ address: '127.0.0.1', port: 0 })
      : new TcpTransport({ address: '127.0.0.1', port: 0 });
  await stack.addTransport(transport);
  return { stack, transport };
}

async function uasStack(proto: Proto): Promise<{ uas: TinyUas; remote: string }> {
  const { stack, transport } = await stackWith(proto);
  const uas = new TinyUas(stack).attach();
  uases.push(uas);
  return { uas, remote: `127.0.0.1:${transport.local.port}` };
}

function failureReport(sipp: SippProcess): string {
  return `\n${sipp.traces()}`;
}

function count(uas: TinyUas, method: string, withTransaction?: boolean): number {
  return uas.events.filter(
    (e) =>
      e.method === method && (withTransaction === undefined || e.transaction === withTransaction),
  ).length;
}

describe.skipIf(gate.skip)(`SIPp interop (${info.version || 'SIPp'})`, { timeout: 40_000 }, () => {
  beforeAll(() => gate.require());
  afterEach((ctx) => cleanup(ctx.task.result?.state === 'fail'));
  afterAll(() => cleanup());

  describe('SIPp as UAC, the stack as UAS', () => {
    for (const mode of MODES) {
      it(`built-in uac: 3 calls INVITE/180/200/ACK/BYE over ${mode.proto} (-t ${mode.sipp})`, async () => {
        const { uas, remote } = await uasStack(mode.proto);
        const sipp = await startSipp({
          scenario: { builtin: 'uac' },
          transport: mode.sipp,
          port: await freePort(),
          remote,
          calls: 3,
          extra: ['-d', '100', '-r', '10'],
        });
        sipps.push(sipp);
        const exit = await sipp.wait(25_000);
        expect(exit.code, failureReport(sipp)).toBe(0);
        expect(exit.stats?.successful, failureReport(sipp)).toBe(3);
        expect(exit.stats?.failed).toBe(0);
        expect(count(uas, 'INVITE', true)).toBe(3);
        // The ACK for a 2xx is its own transaction: it reaches the TU without one (§17.2.3).
        expect(count(uas, 'ACK', false)).toBe(3);
        expect(count(uas, 'BYE', true)).toBe(3);
        expect(uas.pendingAcks).toBe(0);
        expect(new Set(uas.events.map((e) => e.protocol))).toEqual(new Set([mode.proto]));
      });
    }

    for (const mode of MODES) {
      it(`options-uac.xml: 5 OPTIONS answered 200 with Allow over ${mode.proto} (-t ${mode.sipp})`, async () => {
        const { uas, remote } = await uasStack(mode.proto);
        const sipp = await startSipp({
          scenario: { file: OPTIONS_SCENARIO },
          transport: mode.sipp,
          port: await freePort(),
          remote,
          calls: 5,
          extra: ['-r', '20'],
        });
        sipps.push(sipp);
        const exit = await sipp.wait(25_000);
        expect(exit.code, failureReport(sipp)).toBe(0);
        expect(exit.stats?.successful, failureReport(sipp)).toBe(5);
        expect(exit.stats?.failed).toBe(0);
        expect(count(uas, 'OPTIONS', true)).toBe(5);
      });
    }
  });

  describe('the stack as UAC, SIPp as UAS', () => {
    for (const mode of MODES) {
      it(`options-uas.xml: 3 OPTIONS from the stack answered 200 over ${mode.proto} (-t ${mode.sipp})`, async () => {
        const { stack } = await stackWith(mode.proto);
        const port = await freePort();
        const sipp = await startSipp({
          scenario: { file: OPTIONS_UAS_SCENARIO },
          transport: mode.sipp,
          port,
          calls: 3,
        });
        sipps.push(sipp);
        await waitForListen(port, mode.proto === 'UDP' ? 'udp' : 'tcp', sipp);
        const target = `sip:service@127.0.0.1:${port}${mode.proto === 'TCP' ? ';transport=tcp' : ''}`;
        for (let i = 0; i < 3; i++) {
          const res = await sendOptions(stack, target, { timeoutMs: 5000 });
          expect(res.status, failureReport(sipp)).toBe(200);
          expect(res.headers('Allow')).toContain('OPTIONS');
        }
        const exit = await sipp.wait(25_000);
        expect(exit.code, failureReport(sipp)).toBe(0);
        expect(exit.stats?.successful, failureReport(sipp)).toBe(3);
      });
    }

    for (const mode of MODES) {
      it(`built-in uas: INVITE/180/200/ACK, in-dialog OPTIONS, BYE over ${mode.proto} (-t ${mode.sipp})`, async () => {
        const { stack, transport } = await stackWith(mode.proto);
        const port = await freePort();
        const sipp = await startSipp({
          scenario: { builtin: 'uas' },
          transport: mode.sipp,
          port,
          calls: 1,
          // -aa: SIPp answers an OPTIONS inside the call with 200 on its own.
          extra: ['-aa'],
        });
        sipps.push(sipp);
        await waitForListen(port, mode.proto === 'UDP' ? 'udp' : 'tcp', sipp);
        const target = `sip:service@127.0.0.1:${port}${mode.proto === 'TCP' ? ';transport=tcp' : ''}`;

        const call = await placeCall(stack, transport, target, { inDialogOptions: true });
        expect(call.ok.status).toBe(200);
        expect(call.ok.to.tag).toBeDefined();
        expect(call.ok.contentType?.mimeType).toBe('application/sdp');
        expect(call.provisional).toContain(180);
        // ACK and BYE go to the 2xx's Contact with its To tag; CSeq: 1 ACK, 2 OPTIONS, 3 BYE.
        const remoteTarget = call.ok.contacts[0]?.uri.toString();
        expect(call.ack.uri.toString()).toBe(remoteTarget);
        expect(call.ack.to.tag).toBe(call.ok.to.tag);
        expect(call.ack.cseq).toMatchObject({ seq: 1, method: 'ACK' });
        expect(call.options?.response.status, failureReport(sipp)).toBe(200);
        expect(call.bye.uri.toString()).toBe(remoteTarget);
        expect(call.bye.to.tag).toBe(call.ok.to.tag);
        expect(call.bye.cseq).toMatchObject({ seq: 3, method: 'BYE' });
        expect(call.byeResponse.status).toBe(200);
        expect(call.acksSent).toBeGreaterThanOrEqual(1);

        const exit = await sipp.wait(25_000);
        expect(exit.code, failureReport(sipp)).toBe(0);
        expect(exit.stats?.successful, failureReport(sipp)).toBe(1);
        expect(exit.stats?.failed).toBe(0);
        // The ACK is optional in SIPp's uas scenario: check in its trace that it arrived.
        const trace = fs.readFileSync(path.join(sipp.dir, 'messages.log'), 'utf8');
        expect(trace).toMatch(/^ACK sip:/m);
        expect(trace).toMatch(/^BYE sip:/m);
      });
    }
  });

  describe('TLS', () => {
    it('SIPp refuses -t l1 exactly when its build has no TLS', () => {
      const r = spawnSync(
        SIPP_BINARY,
        ['-sn', 'uac', '127.0.0.1:9', '-t', 'l1', '-m', '1', '-timeout', '2s', '-nostdin'],
        { encoding: 'utf8', timeout: 10_000 },
      );
      const refused = /compile SIPp with OpenSSL|TLS/i.test(`${r.stdout}${r.stderr}`);
      if (info.tls) expect(refused && r.status !== 0).toBe(false);
      else {
        expect(r.status).not.toBe(0);
        expect(refused).toBe(true);
      }
    });

    it.skipIf(!info.tls)(
      `calls over TLS (-t l1)${info.tls ? '' : ` (skipped: ${info.version} was built without TLS)`}`,
      (ctx) => {
        // Reached only with a TLS build of SIPp, which Debian does not ship.
        ctx.skip(true, 'this case is to be written against a TLS build of SIPp');
      },
    );
  });
});

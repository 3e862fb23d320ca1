/**
 * The `sipworks` command against SIPp, run as a user runs it (a separate process, from the
 * working tree): `sipworks serve` answers SIPp's built-in UAC, and `sipworks call` calls
 * SIPp's built-in UAS, over UDP and TCP (RFC 3261 §13, §15, §18).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { peerGate } from '../src/peer.ts';
import { freePort, type SippProcess, sippInfo, startSipp, waitForListen } from '../src/sipp.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(here, '..', '..', '..');
const MAIN = path.join(ROOT, 'packages', 'cli', 'src', 'main.ts');

const gate = peerGate('SIPp', sippInfo(), 'sip-tester');
const children = new Set<ChildProcess>();
const sipps: SippProcess[] = [];

/** Start `sipworks ARGS`; its output is collected as it comes. */
function sipworks(args: string[]): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

/** The exit code of a started command, killing it after `ms`. */
function exited(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) {
      resolve(child.exitCode);
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

afterEach(async (ctx) => {
  const failed = ctx.task.result?.state === 'fail';
  for (const s of sipps.splice(0)) {
    await s.stop();
    if (failed) console.warn(`[interop] SIPp traces kept in ${s.dir}\n${s.traces()}`);
    else fs.rmSync(s.dir, { recursive: true, force: true });
  }
  for (const c of [...children]) {
    c.kill('SIGTERM');
    await exited(c, 3000);
  }
});

describe.skipIf(gate.skip)('the sipworks command against SIPp', { timeout: 40_000 }, () => {
  beforeAll(() => gate.require());

  for (const { proto, sipp } of [
    { proto: 'udp', sipp: 'u1' },
    { proto: 'tcp', sipp: 't1' },
  ] as const) {
    it(`RFC 3261 §13, §15: SIPp's UAC places 5 calls to \`sipworks serve\` over ${proto}; every call completes`, async () => {
      const port = await freePort('127.0.0.1');
      const serve = sipworks([
        'serve',
        '--listen',
        `${proto}:127.0.0.1:${port}`,
        '--answer',
        'auto',
        '--answer-delay',
        '0',
      ]);
      await until(() => /listening on/.test(serve.out()), 'serve to listen');
      const uac = await startSipp({
        scenario: { builtin: 'uac' },
        transport: sipp,
        port: await freePort('127.0.0.1'),
        remote: `127.0.0.1:${port}`,
        calls: 5,
        extra: ['-r', '5', '-d', '200'],
      });
      sipps.push(uac);
      const result = await uac.wait(30_000);
      expect(result.code, uac.traces()).toBe(0);
      expect(result.stats?.successful).toBe(5);
      expect(result.stats?.failed).toBe(0);
      // serve stops cleanly on SIGTERM (exit 0).
      serve.child.kill('SIGTERM');
      expect(await exited(serve.child, 5000)).toBe(0);
    });

    it(`RFC 3261 §13, §15: \`sipworks call\` calls SIPp's UAS over ${proto}: 180, 200, ACK, BYE; exit 0 and a JSON result`, async () => {
      const port = await freePort('127.0.0.1');
      const uas = await startSipp({
        scenario: { builtin: 'uas' },
        transport: sipp,
        port,
        calls: 1,
      });
      sipps.push(uas);
      await waitForListen(port, proto, uas);
      const call = sipworks([
        'call',
        `sip:service@127.0.0.1:${port}`,
        '--transport',
        proto,
        '--duration',
        '0.5',
        '--json',
      ]);
      const code = await exited(call.child, 20_000);
      expect(code, call.err()).toBe(0);
      const events = call
        .out()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(events.find((e) => e.event === 'result')).toMatchObject({
        ok: true,
        status: 200,
        endReason: 'local-bye',
      });
      const sippResult = await uas.wait(10_000);
      expect(sippResult.code, uas.traces()).toBe(0);
      expect(sippResult.stats?.successful).toBe(1);
    });
  }
});

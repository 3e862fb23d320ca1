/**
 * `pnpm soak [--minutes N] [--rate CPS] [--hold MS]`: `sipworks serve` under steady SIPp
 * load (the built-in UAC: INVITE, 180, 200, ACK, hold, BYE, 200, over UDP) for N minutes
 * (default 10). Prints, per minute, the calls completed and failed (from SIPp's
 * statistics) and the server's heap after a full GC (read through the inspector), then
 * a verdict: no failed call, and a heap flat within 10% from minute 2 on. Exit status 0
 * when both hold, 1 otherwise, 2 when it could not run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { findExecutable, freePort } from '@sipworks/test-support';
import { ServeProcess } from './serve-process.ts';

interface Counters {
  successful: number;
  failed: number;
}

/** The last row of SIPp's `-trace_stat` file: cumulative successful and failed calls. */
function readCounters(file: string): Counters | undefined {
  if (!fs.existsSync(file)) return undefined;
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const header = lines[0]?.split(';') ?? [];
  const last = lines.length > 1 ? lines.at(-1)?.split(';') : undefined;
  if (!last) return undefined;
  const col = (name: string): number => Number(last[header.indexOf(name)] ?? Number.NaN);
  return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)') };
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      minutes: { type: 'string', default: '10' },
      rate: { type: 'string', default: '20' },
      hold: { type: 'string', default: '1000' },
    },
  });
  const minutes = Number(values.minutes);
  const rate = Number(values.rate);
  const hold = Number(values.hold);
  if (!(minutes >= 1 && rate > 0 && hold >= 0)) {
    console.error('usage: pnpm soak [--minutes N (>= 1)] [--rate CPS] [--hold MS]');
    return 2;
  }
  const sippBinary = findExecutable(process.env.SIPP ?? 'sipp');
  if (!sippBinary) {
    console.error('soak: SIPp not found (apt-get install sip-tester, or set SIPP=/path/to/sipp)');
    return 2;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipworks-soak-'));
  const stats = path.join(dir, 'stats.csv');
  const server = await ServeProcess.start({
    inspect: true,
    args: ['--listen', 'udp:127.0.0.1:0', '--answer', 'auto', '--answer-delay', '0'],
  });
  const udp = server.listener('udp');
  const port = await freePort();
  const calls = Math.round(rate * 60 * minutes);
  const args = [
    '-sn',
    'uac',
    `${udp.address}:${udp.port}`,
    '-t',
    'u1',
    '-i',
    '127.0.0.1',
    '-p',
    String(port),
    '-r',
    String(rate),
    '-m',
    String(calls),
    '-d',
    String(hold),
    '-cp',
    String(await freePort()),
    '-mp',
    String(await freePort('127.0.0.1', 2)),
    '-timeout',
    `${minutes * 60 + 60}s`,
    '-nostdin',
    '-trace_stat',
    '-stf',
    stats,
    '-fd',
    '1',
    '-trace_err',
    '-error_file',
    path.join(dir, 'errors.log'),
  ];
  console.log(
    `soak: sipworks serve on udp:${udp.address}:${udp.port}; SIPp ${rate} calls/s, ${hold} ms each, for ${minutes} min (${calls} calls)`,
  );
  const sipp: ChildProcess = spawn(sippBinary, args, { cwd: dir, stdio: 'ignore' });
  const exited = new Promise<number | null>((r) => sipp.once('exit', (code) => r(code)));
  let sippDone = false;
  void exited.then(() => {
    sippDone = true;
  });

  const heaps: number[] = [];
  let previous: Counters = { successful: 0, failed: 0 };
  const started = Date.now();
  try {
    for (let minute = 1; minute <= minutes; minute++) {
      const at = started + minute * 60_000;
      while (Date.now() < at && !sippDone && server.running)
        await new Promise((r) => setTimeout(r, 250));
      if (!server.running) throw new Error(`sipworks serve exited\n${server.output()}`);
      if (sippDone && minute < minutes) throw new Error(`SIPp exited early (see ${dir})`);
      const now = readCounters(stats) ?? previous;
      const heap = await server.heapAfterGc();
      heaps.push(heap);
      console.log(
        `minute ${String(minute).padStart(2)}: calls completed ${String(now.successful - previous.successful).padStart(5)} ` +
          `(total ${now.successful}), failed ${now.failed - previous.failed} (total ${now.failed}), heap after GC ${mib(heap)}`,
      );
      previous = now;
    }
    // SIPp has placed its last calls; let them end.
    const end = await Promise.race([
      exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), hold + 30_000)),
    ]);
    if (end === 'timeout') sipp.kill('SIGTERM');
  } finally {
    if (!sippDone) sipp.kill('SIGKILL');
    await server.stop();
  }
  const total = readCounters(stats) ?? previous;
  const steady = heaps.slice(1);
  const low = Math.min(...(steady.length > 0 ? steady : heaps));
  const high = Math.max(...(steady.length > 0 ? steady : heaps));
  const spread = (high - low) / low;
  const flat = spread <= 0.1;
  console.log(
    `total: ${total.successful} calls completed, ${total.failed} failed; heap after GC from minute 2: ` +
      `${mib(low)} .. ${mib(high)} (${(spread * 100).toFixed(1)}% spread)`,
  );
  const ok = total.failed === 0 && flat && total.successful > 0;
  console.log(
    ok
      ? 'soak: PASS (no failed call, heap flat within 10%)'
      : `soak: FAIL (${total.failed > 0 ? `${total.failed} failed calls; ` : ''}${flat ? '' : 'heap not flat; '}SIPp files in ${dir})`,
  );
  if (ok) fs.rmSync(dir, { recursive: true, force: true });
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`soak: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 2;
  },
);

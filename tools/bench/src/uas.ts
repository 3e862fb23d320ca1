/**
 * The uas section: `sipworks serve` answering calls driven by SIPp's built-in
 * UAC (INVITE, 100/180/200, ACK, BYE/200) at a fixed rate over UDP, beside
 * SIPp's own UAS (the C++ ceiling) and a minimal UAS on the `sip` npm package
 * (the JavaScript peer), each its own process, the load interleaved round by
 * round. The figure is the server's own CPU (user + system, from /proc) per
 * call; calls that SIPp counts as failed must be zero.
 */
import { type BenchConfig, type Column, formatTable, heading, type Section } from './harness.ts';
import {
  canReadProcStat,
  describeSipp,
  ensureBuilt,
  type LoadSummary,
  type LoadTarget,
  loadRounds,
  loadSettings,
  SERVE_ARGS,
  SERVE_COMMAND,
  ServerProcess,
  SIPP_BINARY,
  type SippLoad,
  sippVersion,
  summarize,
} from './load.ts';
import { type SectionReport, verdict } from './report.ts';

/**
 * What `node --cpu-prof --cpu-prof-interval 100` of serve showed under 8,000 SIPp calls
 * at 800/s, after the fixes that came with this section (pooled tags, the SDP line scan,
 * no timer for --answer-delay 0, no stack events without an observer).
 */
export const UAS_PROFILE =
  'What the profile shows (serve under 8,000 SIPp calls at 800/s, `node --cpu-prof ' +
  '--cpu-prof-interval 100`, shares of busy time): 22% sending UDP datagrams (dgram doSend, ' +
  'three sends per call: 180, 200, 200 to BYE), 15% garbage collection, about 30% building, ' +
  'serializing, parsing and validating messages in @sipworks/message (createResponse, ' +
  'setHeader, serialize, parseMessage, validateMessage), 15% the DUM routing requests and ' +
  'setting up the session and dialog, 4% the SDP answer. The sip package does less per call: ' +
  'no dialog or session state and no transaction user layer, and it does not retransmit its 2xx.';

/** Calls per core-second the issue asks of `sipworks serve`. */
export const UAS_TARGET = 3000;

const NODE = process.execPath;
const PEER = 'tools/bench/src/sip-peer.ts';

export const SIPWORKS = 'sipworks serve';
export const SIP_PEER = 'sip (npm) UAS';

/** The three servers of the call load. */
function targets(): LoadTarget[] {
  const serve = [...SERVE_ARGS, '--answer', 'auto', '--answer-delay', '0', '--quiet'];
  return [
    {
      name: SIPWORKS,
      command: `${SERVE_COMMAND} --listen udp:127.0.0.1:PORT --answer auto --answer-delay 0 --quiet`,
      start: (port) =>
        new ServerProcess(SIPWORKS, port, NODE, [...serve, '--listen', `udp:127.0.0.1:${port}`]),
    },
    {
      name: 'SIPp UAS',
      command: 'sipp -sn uas -t u1 -i 127.0.0.1 -p PORT -nostdin',
      start: (port) =>
        new ServerProcess('SIPp UAS', port, SIPP_BINARY, [
          '-sn',
          'uas',
          '-t',
          'u1',
          '-i',
          '127.0.0.1',
          '-p',
          String(port),
          '-nostdin',
        ]),
    },
    {
      name: SIP_PEER,
      command: `node --import tsx ${PEER} uas PORT`,
      start: (port) =>
        new ServerProcess(SIP_PEER, port, NODE, ['--import', 'tsx', PEER, 'uas', String(port)]),
    },
  ];
}

export const LOAD_COLUMNS: readonly Column[] = [
  { title: 'server', align: 'left' },
  { title: 'completed', align: 'right' },
  { title: 'failed', align: 'right' },
  { title: 'rate/s', align: 'right' },
  { title: 'CPU s/1k', align: 'right' },
  { title: 'per core-s', align: 'right' },
  { title: 'vs sip', align: 'right' },
  { title: 'RSS MiB', align: 'right' },
  { title: 'target', align: 'left' },
  { title: 'verdict', align: 'left' },
];

const n = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');

/** A table row; `target` applies to the sipworks row only. */
export function loadRow(s: LoadSummary, target: number | undefined, unit: string): string[] {
  const checks: string[] = [];
  if (target !== undefined) {
    const v = verdict(s.perCoreSecond, target);
    checks.push(v === 'met' ? '' : `${unit}/core-s ${v}`);
    if (!(s.ratioToReference > 1)) checks.push('not ahead of sip');
  }
  if (s.failed > 0) checks.push(`${s.failed} failed`);
  const bad = checks.filter((c) => c !== '');
  return [
    s.name,
    n(s.completed),
    n(s.failed),
    n(s.achievedRate),
    Number.isFinite(s.cpuPerThousand) ? s.cpuPerThousand.toFixed(3) : '-',
    n(s.perCoreSecond),
    Number.isFinite(s.ratioToReference) ? `${s.ratioToReference.toFixed(2)}x` : '-',
    (s.rss / 2 ** 20).toFixed(0),
    target !== undefined ? `>= ${n(target)} ${unit}/core-s, ahead of sip, 0 failed` : '0 failed',
    bad.length === 0 ? 'met' : bad.join('; '),
  ];
}

/** Whether the load sections can run here; the reason when not. */
export function loadUnavailable(): string | undefined {
  if (!canReadProcStat()) return 'no /proc/<pid>/stat to read CPU time from (Linux only)';
  if (sippVersion() === undefined) return `SIPp not found at ${SIPP_BINARY} (set SIPP)`;
  return undefined;
}

async function runUas(config: BenchConfig, report: SectionReport): Promise<void> {
  console.log(heading('uas: calls per core-second, sipworks serve vs SIPp UAS vs sip'));
  const why = loadUnavailable();
  if (why) {
    console.log(`skipped: ${why}`);
    report.note(`Not measured: ${why}.`);
    return;
  }
  const s = loadSettings(config.quick);
  ensureBuilt();
  const load: SippLoad = {
    scenario: ['-sn', 'uac'],
    calls: s.calls,
    rate: s.rate,
    processes: s.processes,
  };
  const warmup: SippLoad = { ...load, calls: Math.min(load.calls, 600) };
  const all = targets();
  console.log(`${sippVersion()}; load: ${describeSipp(load)}; ${s.rounds} rounds, 1 warm-up`);
  const results = await loadRounds(all, load, warmup, s.rounds, (r, total) =>
    console.log(`  round ${r}/${total}`),
  );
  const sums = summarize(results, SIP_PEER);
  const rows = sums.map((x) => loadRow(x, x.name === SIPWORKS ? UAS_TARGET : undefined, 'calls'));
  const title = `calls (INVITE/180/200/ACK/BYE), ${n(s.calls)} per round at ${n(s.rate)}/s, medians of ${s.rounds} rounds`;
  console.log(formatTable(LOAD_COLUMNS, rows));
  report.table({ title, columns: LOAD_COLUMNS, rows });
  report.command(describeSipp(load));
  for (const t of all) report.command(t.command);
  const me = sums.find((x) => x.name === SIPWORKS);
  report.note(
    "CPU s/1k is the server process's user+system CPU seconds (from /proc/<pid>/stat, read before " +
      'and after each round) per thousand completed calls; per core-s is completed calls per CPU second ' +
      'of the server; vs sip is that ratio against the sip package in the same round (median of rounds). ' +
      'rate/s is what SIPp achieved; SIPp runs on the same two cores. sipworks runs compiled (dist/, ' +
      'as npm installs it; the bench builds it first), its start-up outside the measured span. Timers a round ' +
      'leaves behind (Timer J/K/L of its last transactions) fire in the next round, so every round ' +
      'carries about one round of them.',
  );
  if (me && Number.isFinite(me.perCoreSecond) && me.perCoreSecond < UAS_TARGET) {
    report.note(
      `Target not met: ${n(me.perCoreSecond)} calls per core-second against ${n(UAS_TARGET)} ` +
        `(${verdict(me.perCoreSecond, UAS_TARGET)}).`,
    );
  }
  if (me && !(me.ratioToReference > 1)) report.note(UAS_PROFILE);
}

export const uasSection: Section = {
  name: 'uas',
  title: 'uas: calls per core-second under SIPp load',
  run: runUas,
};

/**
 * Load from outside the process: servers run as their own processes, SIPp
 * drives them over UDP on loopback, and each server's CPU time is read from
 * /proc/<pid>/stat before and after the load, so a server is measured as users
 * run it (its own process, its own event loop, nothing of the benchmark inside).
 *
 * What is measured per round and contender: SIPp's calls created, successful
 * and failed (its statistics file), and the server's user+system CPU seconds
 * spent between the two /proc readings. Calls per core-second are successful
 * calls divided by those seconds.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tools/bench/src/ is three levels down). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** Scenario files of the benchmark. */
export const SCENARIO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../sipp');
/** Where SIPp is looked for; `SIPP` in the environment overrides it. */
export const SIPP_BINARY = process.env.SIPP ?? '/usr/bin/sipp';

// --- CPU accounting ----------------------------------------------------------------

/** Clock ticks per second of the utime/stime fields in /proc/<pid>/stat. */
let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      ticksPerSecond = Number.NaN;
    }
    // Linux has used 100 on every architecture for decades.
    if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/** User and system CPU time of a process, in clock ticks. */
export interface CpuTicks {
  readonly user: number;
  readonly system: number;
}

/**
 * utime and stime (fields 14 and 15) of a /proc/<pid>/stat line. The command
 * name (field 2) is in parentheses and may itself hold spaces and parentheses,
 * so fields are counted from the last ')'.
 */
export function parseProcStat(text: string): CpuTicks {
  const close = text.lastIndexOf(')');
  if (close < 0)
    throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  // After ')': field 3 (state) is index 0, so field n is index n - 3.
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const user = Number(fields[14 - 3]);
  const system = Number(fields[15 - 3]);
  if (!Number.isInteger(user) || !Number.isInteger(system))
    throw new Error(`no utime/stime in /proc/<pid>/stat: ${JSON.stringify(text.slice(0, 80))}`);
  return { user, system };
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSecondsOf(pid: number): number {
  const t = parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return (t.user + t.system) / clockTicks();
}

/** True where /proc/<pid>/stat can be read (Linux). */
export function canReadProcStat(): boolean {
  try {
    parseProcStat(fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8'));
    return true;
  } catch {
    return false;
  }
}

/**
 * CPU per unit of work from two readings: seconds per thousand units, and
 * units per core-second. NaN where nothing completed or no CPU time was seen
 * (a tick is 10 ms, so short runs read coarse).
 */
export function cpuCost(
  cpuSeconds: number,
  units: number,
): { perThousand: number; perCoreSecond: number } {
  if (units <= 0 || !(cpuSeconds > 0))
    return { perThousand: Number.NaN, perCoreSecond: Number.NaN };
  return { perThousand: (cpuSeconds * 1000) / units, perCoreSecond: units / cpuSeconds };
}

// --- SIPp statistics ---------------------------------------------------------------

/** Cumulative counters from the last row of SIPp's statistics file (`-trace_stat`). */
export interface SippStats {
  readonly created: number;
  readonly successful: number;
  readonly failed: number;
  readonly retransmissions: number;
  readonly unexpected: number;
  /** `ElapsedTime(C)`, in seconds. */
  readonly elapsedSeconds: number;
}

/** `HH:MM:SS` or `HH:MM:SS:mmm` (SIPp's two duration formats) in seconds. */
export function sippDuration(text: string): number {
  const parts = text.trim().split(':').map(Number);
  if (parts.length < 3 || parts.some((p) => !Number.isFinite(p))) return Number.NaN;
  const [h, m, s, ms = 0] = parts as [number, number, number, number?];
  return h * 3600 + m * 60 + s + ms / 1000;
}

/** Parses the text of a SIPp statistics file: `;`-separated, a header row, one row per period. */
export function parseSippStats(text: string): SippStats | undefined {
  const rows = text
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(';'));
  const header = rows[0];
  const last = rows.at(-1);
  if (!header || !last || rows.length < 2) return undefined;
  const cell = (name: string): string | undefined => {
    const i = header.indexOf(name);
    return i < 0 ? undefined : last[i];
  };
  const count = (name: string): number => {
    const v = cell(name);
    return v === undefined || v === '' ? 0 : Number(v);
  };
  return {
    created: count('TotalCallCreated'),
    successful: count('SuccessfulCall(C)'),
    failed: count('FailedCall(C)'),
    retransmissions: count('Retransmissions(C)'),
    unexpected: count('FailedUnexpectedMessage(C)'),
    elapsedSeconds: sippDuration(cell('ElapsedTime(C)') ?? ''),
  };
}

/** The stats of several SIPp processes that ran side by side, added up; elapsed is the longest. */
export function sumStats(all: readonly SippStats[]): SippStats {
  return {
    created: all.reduce((a, s) => a + s.created, 0),
    successful: all.reduce((a, s) => a + s.successful, 0),
    failed: all.reduce((a, s) => a + s.failed, 0),
    retransmissions: all.reduce((a, s) => a + s.retransmissions, 0),
    unexpected: all.reduce((a, s) => a + s.unexpected, 0),
    elapsedSeconds: Math.max(0, ...all.map((s) => s.elapsedSeconds)),
  };
}

// --- processes ---------------------------------------------------------------------

/** A UDP port free on 127.0.0.1 right now (bound, read, closed). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Whether a UDP socket is bound to `port` (from /proc/net/udp, so no probe steals it). */
function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    if (!fs.existsSync(f)) continue;
    for (const line of fs.readFileSync(f, 'utf8').split('\n').slice(1)) {
      if (line.trim().split(/\s+/)[1]?.endsWith(hex)) return true;
    }
  }
  return false;
}

/** A server under test, running as its own process and listening on a UDP port. */
export class ServerProcess {
  readonly child: ChildProcess;
  private output = '';
  private exited = false;

  readonly name: string;
  readonly port: number;

  constructor(name: string, port: number, command: string, args: readonly string[]) {
    this.name = name;
    this.port = port;
    this.child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-8000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.child.once('exit', () => {
      this.exited = true;
    });
    this.child.once('error', (e) => {
      this.exited = true;
      this.output += `\nspawn failed: ${e.message}`;
    });
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error(`${this.name} did not start\n${this.output}`);
    return pid;
  }

  /** CPU seconds the server has used so far. */
  cpuSeconds(): number {
    return cpuSecondsOf(this.pid);
  }

  /** Resident set size in bytes (VmRSS). */
  rssBytes(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  }

  /** Waits (at most `ms`) until the server's UDP port is bound. */
  async ready(ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!udpBound(this.port)) {
      if (this.exited) throw new Error(`${this.name} exited before listening\n${this.output}`);
      if (Date.now() > end)
        throw new Error(`${this.name} not listening on udp ${this.port}\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Let start-up work (module loading, JIT of the first paths) finish.
    await new Promise((r) => setTimeout(r, 300));
  }

  /** Output seen so far (the tail), for failure reports. */
  tail(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** One SIPp client run: a scenario against a server at a fixed rate for a fixed count. */
export interface SippLoad {
  /** `-sn uac` or `-sf FILE`. */
  readonly scenario: readonly string[];
  readonly calls: number;
  /** Calls per second, over all processes. */
  readonly rate: number;
  /** SIPp processes sharing the load (each gets rate / processes and calls / processes). */
  readonly processes: number;
  readonly extra?: readonly string[];
}

/** The command line of one SIPp client process, for the report. */
export function sippArgs(load: SippLoad, target: string, port: number, stf: string): string[] {
  return [
    ...load.scenario,
    target,
    '-t',
    'u1',
    '-i',
    '127.0.0.1',
    '-p',
    String(port),
    '-r',
    String(load.rate / load.processes),
    '-m',
    String(Math.ceil(load.calls / load.processes)),
    '-timeout',
    '60s',
    '-nostdin',
    '-trace_stat',
    '-stf',
    stf,
    ...(load.extra ?? []),
  ];
}

/** A SIPp command line as the report prints it (the statistics file and ports left out). */
export function describeSipp(load: SippLoad): string {
  const each = Math.ceil(load.calls / load.processes);
  const r = load.rate / load.processes;
  const scenario = load.scenario.map((a) => (a.includes('/') ? path.basename(a) : a)).join(' ');
  return `${load.processes > 1 ? `${load.processes} x ` : ''}sipp ${scenario} 127.0.0.1:PORT -t u1 -r ${r} -m ${each}${load.extra?.length ? ` ${load.extra.join(' ')}` : ''}`;
}

/** Runs the load against `127.0.0.1:serverPort` and returns SIPp's counters, summed. */
export async function runSipp(load: SippLoad, serverPort: number): Promise<SippStats> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipworks-bench-sipp-'));
  try {
    const runs: Promise<SippStats>[] = [];
    for (let i = 0; i < load.processes; i++) {
      const stf = path.join(dir, `stats-${i}.csv`);
      const args = sippArgs(load, `127.0.0.1:${serverPort}`, await freeUdpPort(), stf);
      runs.push(
        new Promise((resolve, reject) => {
          const child = spawn(SIPP_BINARY, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
          let err = '';
          child.stderr?.on('data', (d: Buffer) => {
            err = (err + d.toString('utf8')).slice(-4000);
          });
          const limit = setTimeout(
            () => child.kill('SIGKILL'),
            (load.calls / load.rate) * 1000 + 90_000,
          );
          child.once('error', (e) => {
            clearTimeout(limit);
            reject(e);
          });
          child.once('exit', (code) => {
            clearTimeout(limit);
            const stats = fs.existsSync(stf)
              ? parseSippStats(fs.readFileSync(stf, 'utf8'))
              : undefined;
            if (stats) resolve(stats);
            else reject(new Error(`sipp ${args.join(' ')} exited ${code}, no statistics\n${err}`));
          });
        }),
      );
    }
    return sumStats(await Promise.all(runs));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** SIPp's version line, or undefined when it is not installed. */
export function sippVersion(): string | undefined {
  if (!fs.existsSync(SIPP_BINARY)) return undefined;
  try {
    const out = execFileSync(SIPP_BINARY, ['-v'], { encoding: 'utf8', timeout: 5000 });
    return /SIPp v\S+/.exec(out)?.[0];
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? '';
    return /SIPp v\S+/.exec(out)?.[0];
  }
}

// --- interleaved load rounds ---------------------------------------------------------

/** A server to load: how to start it. */
export interface LoadTarget {
  readonly name: string;
  /** How the report shows its command line. */
  readonly command: string;
  start(port: number): ServerProcess;
}

/** One round of the load against one server. */
export interface LoadRound {
  readonly stats: SippStats;
  readonly cpuSeconds: number;
}

export interface LoadResult {
  readonly target: LoadTarget;
  readonly rounds: LoadRound[];
  /** Peak RSS seen after a round, bytes. */
  rss: number;
}

/**
 * Starts every target, then runs `rounds` rounds (after one unmeasured warm-up
 * round); in round r the targets take the load in turn, starting with target r
 * (mod n), so a drift in the machine's load hits every target alike.
 */
export async function loadRounds(
  targets: readonly LoadTarget[],
  load: SippLoad,
  warmup: SippLoad,
  rounds: number,
  onRound?: (round: number, total: number) => void,
): Promise<LoadResult[]> {
  const servers: ServerProcess[] = [];
  try {
    for (const t of targets) servers.push(t.start(await freeUdpPort()));
    for (const s of servers) await s.ready();
    const results: LoadResult[] = targets.map((target) => ({ target, rounds: [], rss: 0 }));
    for (const s of servers) await runSipp(warmup, s.port);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < servers.length; k++) {
        const i = (round + k) % servers.length;
        const s = servers[i] as ServerProcess;
        const before = s.cpuSeconds();
        const stats = await runSipp(load, s.port);
        const cpuSeconds = s.cpuSeconds() - before;
        const r = results[i] as LoadResult;
        r.rounds.push({ stats, cpuSeconds });
        r.rss = Math.max(r.rss, s.rssBytes());
      }
      onRound?.(round + 1, rounds);
    }
    return results;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

// --- summaries -----------------------------------------------------------------------

/** What the tables show of one target's rounds. */
export interface LoadSummary {
  readonly name: string;
  readonly created: number;
  readonly completed: number;
  readonly failed: number;
  readonly retransmissions: number;
  /** Median over rounds of the server's CPU seconds per thousand completed calls. */
  readonly cpuPerThousand: number;
  /** Median over rounds of completed calls per CPU second of the server. */
  readonly perCoreSecond: number;
  /** Median over rounds of the rate SIPp achieved (completed / elapsed), calls per second. */
  readonly achievedRate: number;
  /** Median over rounds of perCoreSecond divided by the reference's of the same round. */
  readonly ratioToReference: number;
  readonly rss: number;
}

function middle(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

/** Totals and per-round medians; ratios against the target named `reference`, round by round. */
export function summarize(results: readonly LoadResult[], reference: string): LoadSummary[] {
  const ref = results.find((r) => r.target.name === reference);
  return results.map((r) => {
    const costs = r.rounds.map((x) => cpuCost(x.cpuSeconds, x.stats.successful));
    const ratios = r.rounds.map((x, i) => {
      const other = ref?.rounds[i];
      if (!other) return Number.NaN;
      return (
        cpuCost(x.cpuSeconds, x.stats.successful).perCoreSecond /
        cpuCost(other.cpuSeconds, other.stats.successful).perCoreSecond
      );
    });
    return {
      name: r.target.name,
      created: r.rounds.reduce((a, x) => a + x.stats.created, 0),
      completed: r.rounds.reduce((a, x) => a + x.stats.successful, 0),
      failed: r.rounds.reduce((a, x) => a + x.stats.failed, 0),
      retransmissions: r.rounds.reduce((a, x) => a + x.stats.retransmissions, 0),
      cpuPerThousand: middle(costs.map((c) => c.perThousand)),
      perCoreSecond: middle(costs.map((c) => c.perCoreSecond)),
      achievedRate: middle(
        r.rounds.map((x) =>
          x.stats.elapsedSeconds > 0 ? x.stats.successful / x.stats.elapsedSeconds : Number.NaN,
        ),
      ),
      ratioToReference: middle(ratios),
      rss: r.rss,
    };
  });
}

/** Load settings from the environment: BENCH_LOAD_RATE, BENCH_LOAD_CALLS, BENCH_LOAD_ROUNDS, BENCH_SIPP_PROCS. */
export function loadSettings(quick: boolean): {
  rate: number;
  calls: number;
  rounds: number;
  processes: number;
} {
  const int = (name: string, fallback: number): number => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < 1)
      throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    return v;
  };
  return {
    rate: int('BENCH_LOAD_RATE', quick ? 300 : 600),
    calls: int('BENCH_LOAD_CALLS', quick ? 600 : 4800),
    rounds: int('BENCH_LOAD_ROUNDS', quick ? 1 : 3),
    processes: int('BENCH_SIPP_PROCS', 1),
  };
}

// --- the compiled build --------------------------------------------------------------

/**
 * How `sipworks serve` runs in the load sections: the compiled CLI (dist/, what
 * npm installs), its @sipworks imports resolved to the other packages' dist/
 * by loader/published.mjs. Running from source through tsx instead costs
 * measurably more: its transform names every closure with
 * Object.defineProperty, which turns each one's properties into a dictionary.
 */
export const SERVE_ARGS: readonly string[] = [
  '--import',
  './tools/bench/loader/published.mjs',
  'packages/cli/dist/main.js',
  'serve',
];
export const SERVE_COMMAND = `node ${SERVE_ARGS.join(' ')}`;

let built = false;

/** Builds the packages (`tsc -b packages/cli`, incremental) once per run. */
export function ensureBuilt(): void {
  if (built) return;
  execFileSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-b', 'packages/cli'], {
    cwd: REPO_ROOT,
    stdio: 'inherit',
  });
  built = true;
}

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@sipworks/test-support';
import { ProcessWatch } from './process.ts';

export { freePort };

/** Where SIPp is looked for; `SIPP` in the environment overrides it. */
export const SIPP_BINARY = process.env.SIPP ?? '/usr/bin/sipp';

/** SIPp's transport modes: one socket over UDP, TCP or TLS. */
export type SippTransport = 'u1' | 't1' | 'l1';

export interface SippInfo {
  available: boolean;
  /** The version line (`SIPp v3.6.1-SCTP-PCAP-RTPSTREAM.`). */
  version: string;
  /** Whether this build has TLS (the build options in the version line name it). */
  tls: boolean;
  /** Why SIPp cannot be used, when it cannot. */
  reason?: string;
}

/** Whether SIPp is installed, its version, and whether it was built with TLS. */
export function sippInfo(binary = SIPP_BINARY): SippInfo {
  if (!fs.existsSync(binary))
    return { available: false, version: '', tls: false, reason: `${binary} not found` };
  let out: string;
  try {
    out = execFileSync(binary, ['-v'], { encoding: 'utf8', timeout: 5000 });
  } catch (e) {
    const r = e as { stdout?: string; message?: string };
    out = r.stdout ?? '';
    if (!out) return { available: false, version: '', tls: false, reason: String(r.message) };
  }
  const version = /SIPp v\S+/.exec(out)?.[0] ?? out.trim().split('\n')[0] ?? '';
  return { available: true, version, tls: /TLS/.test(version) };
}

export interface SippOptions {
  /** A built-in scenario (`-sn`) or a scenario file (`-sf`). */
  scenario: { builtin: 'uac' | 'uas' } | { file: string };
  transport: SippTransport;
  /** Local address and port SIPp binds (`-i`, `-p`). */
  address?: string;
  port: number;
  /** The peer, `host:port`, for client scenarios. */
  remote?: string;
  /** `-m`: stop after this many calls (required: every run is bounded). */
  calls: number;
  /** `-timeout` in seconds (default 20). */
  timeoutSeconds?: number;
  /** `-s`: the user part of the Request-URI (default `service`). */
  service?: string;
  /** Further arguments (`-d 100`, `-key name value`...). */
  extra?: string[];
  /** Where traces go; a fresh temporary directory by default. */
  dir?: string;
}

export interface SippStats {
  successful: number;
  failed: number;
  created: number;
  retransmissions: number;
  unexpected: number;
}

export interface SippExit {
  /** SIPp's exit code: 0 all calls succeeded, 1 some failed, 97 stopped (timeout), 99 no call, 255/254 fatal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last row of the statistics file, when SIPp wrote one. */
  stats: SippStats | undefined;
}

/** A running SIPp process. */
export class SippProcess {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly args: readonly string[];
  readonly exited: Promise<SippExit>;
  private readonly watch: ProcessWatch;
  private get output(): string {
    return this.watch.output;
  }
  private get running(): boolean {
    return this.watch.running;
  }

  constructor(binary: string, args: string[], dir: string) {
    this.dir = dir;
    this.args = args;
    this.child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.watch = new ProcessWatch(this.child, 20_000);
    this.exited = this.watch.exited.then((end) => ({
      ...end,
      stats:
        end.code === null && end.signal === null
          ? undefined
          : readStats(path.join(dir, 'stats.csv')),
    }));
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Wait for SIPp to exit, at most `ms`; then kill it and reject with its traces. */
  async wait(ms = 25_000): Promise<SippExit> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.kill();
        reject(new Error(`SIPp did not exit within ${ms} ms\n${this.traces()}`));
      }, ms);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kill SIPp if it is still running, and wait for it to exit. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.kill();
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
    if (this.running) this.child.kill('SIGKILL');
  }

  private kill(): void {
    if (this.running) this.child.kill('SIGTERM');
  }

  /** The error and message traces and the tail of the console output, for failure reports. */
  traces(): string {
    const parts = [`sipp ${this.args.join(' ')}`];
    for (const name of ['errors.log', 'messages.log']) {
      const file = path.join(this.dir, name);
      if (fs.existsSync(file))
        parts.push(`--- ${name}\n${fs.readFileSync(file, 'utf8').slice(-8000)}`);
    }
    parts.push(`--- output\n${this.output.slice(-4000)}`);
    return parts.join('\n');
  }
}

/** Start SIPp with a bounded run (`-m`, `-timeout`) and traces (`-trace_err`, `-trace_msg`, `-trace_stat`) in a temporary directory. */
export async function startSipp(options: SippOptions, binary = SIPP_BINARY): Promise<SippProcess> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sipworks-sipp-'));
  const address = options.address ?? '127.0.0.1';
  const controlPort = await freePort(address);
  const mediaPort = await freePort(address, 2);
  const args: string[] = [];
  if ('builtin' in options.scenario) args.push('-sn', options.scenario.builtin);
  else args.push('-sf', options.scenario.file);
  if (options.remote) args.push(options.remote);
  args.push(
    '-t',
    options.transport,
    '-i',
    address,
    '-p',
    String(options.port),
    '-m',
    String(options.calls),
    '-timeout',
    `${options.timeoutSeconds ?? 20}s`,
    '-cp',
    String(controlPort),
    '-mp',
    String(mediaPort),
    '-nostdin',
    '-trace_err',
    '-error_file',
    path.join(dir, 'errors.log'),
    '-trace_msg',
    '-message_file',
    path.join(dir, 'messages.log'),
    '-trace_stat',
    '-stf',
    path.join(dir, 'stats.csv'),
  );
  if (options.service) args.push('-s', options.service);
  if (options.extra) args.push(...options.extra);
  return new SippProcess(binary, args, dir);
}

/**
 * Wait until a socket listens on `port` (UDP bound, or TCP in LISTEN), by reading
 * `/proc/net`: probing with a socket of our own could steal the port from SIPp. Where
 * `/proc/net` does not exist, wait a fixed half second.
 */
export async function waitForListen(
  port: number,
  protocol: 'udp' | 'tcp',
  sipp: SippProcess,
  ms = 5000,
): Promise<void> {
  const files = [`/proc/net/${protocol}`, `/proc/net/${protocol}6`];
  if (!fs.existsSync(files[0] as string)) {
    await new Promise((r) => setTimeout(r, 500));
    return;
  }
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const end = Date.now() + ms;
  for (;;) {
    for (const f of files) {
      if (!fs.existsSync(f)) continue;
      for (const line of fs.readFileSync(f, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        const local = cols[1];
        const state = cols[3];
        if (local?.endsWith(`:${hex}`) && (protocol === 'udp' ? state === '07' : state === '0A'))
          return;
      }
    }
    if (!sipp.isRunning) throw new Error(`SIPp exited before listening\n${sipp.traces()}`);
    if (Date.now() > end)
      throw new Error(`SIPp is not listening on ${protocol} ${port}\n${sipp.traces()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The last row of SIPp's statistics file (`-trace_stat`), cumulative counters. */
export function readStats(file: string): SippStats | undefined {
  if (!fs.existsSync(file)) return undefined;
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const header = lines[0]?.split(';');
  const last = lines.at(-1)?.split(';');
  if (!header || !last || lines.length < 2) return undefined;
  const get = (name: string): number => {
    const i = header.indexOf(name);
    return i < 0 ? 0 : Number(last[i] ?? 0);
  };
  return {
    successful: get('SuccessfulCall(C)'),
    failed: get('FailedCall(C)'),
    created: get('TotalCallCreated'),
    retransmissions: get('Retransmissions(C)'),
    unexpected: get('FailedUnexpectedMessage(C)'),
  };
}

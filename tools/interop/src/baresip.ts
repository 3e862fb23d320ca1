import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessWatch } from './process.ts';

/** Where baresip is looked for; `BARESIP` in the environment overrides it. */
export const BARESIP_BINARY = process.env.BARESIP ?? '/usr/bin/baresip';

/** Where its modules are looked for; `BARESIP_MODULES` overrides it. */
export const BARESIP_MODULE_DIRS = process.env.BARESIP_MODULES
  ? [process.env.BARESIP_MODULES]
  : [
      '/usr/lib/baresip/modules',
      '/usr/lib/x86_64-linux-gnu/baresip/modules',
      '/usr/local/lib/baresip/modules',
    ];

/**
 * The modules the generated configuration loads: the stdin command line (`stdio`), the
 * command set (`menu`), the accounts file (`account`), one codec (`g711`), and an audio
 * bridge that serves as player and source without a device (`aubridge`; `ausine` takes
 * only 48 kHz and fails with G.711). No audio or video device module is loaded, so
 * nothing waits for hardware.
 */
export const BARESIP_MODULES = ['stdio', 'menu', 'account', 'g711', 'aubridge'] as const;

export interface BaresipInfo {
  available: boolean;
  /** The version line (`baresip v1.0.0 ...`). */
  version: string;
  modules: string;
  reason?: string;
}

/** Whether baresip is installed, its version, and whether the modules the tests load are there. */
export function baresipInfo(binary = BARESIP_BINARY): BaresipInfo {
  if (!fs.existsSync(binary))
    return { available: false, version: '', modules: '', reason: `${binary} not found` };
  let out = '';
  try {
    // `-h` prints the usage and exits non-zero.
    out = execFileSync(binary, ['-h'], { encoding: 'utf8', timeout: 5000, stdio: 'pipe' });
  } catch (e) {
    const r = e as { stdout?: string; stderr?: string; message?: string };
    out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    if (!out) return { available: false, version: '', modules: '', reason: String(r.message) };
  }
  const version = /baresip v\S+/.exec(out)?.[0] ?? out.trim().split('\n')[0] ?? '';
  const modules = BARESIP_MODULE_DIRS.find((d) => fs.existsSync(path.join(d, 'stdio.so'))) ?? '';
  if (!modules)
    return {
      available: false,
      version,
      modules,
      reason: `no baresip module directory in ${BARESIP_MODULE_DIRS.join(', ')}`,
    };
  for (const m of BARESIP_MODULES)
    if (!fs.existsSync(path.join(modules, `${m}.so`)))
      return {
        available: false,
        version,
        modules,
        reason: `module ${m}.so not found in ${modules}`,
      };
  return { available: true, version, modules };
}

export interface BaresipOptions {
  /** Loopback UDP port for SIP (`sip_listen`). */
  port: number;
  /**
   * One account line, e.g. `<sip:carol@127.0.0.1:5060>;regint=0` (regint=0: no
   * REGISTER); see the accounts file format of baresip.
   */
  account: string;
  modules: string;
  /** A directory for the config and accounts files; a fresh temporary one by default. */
  dir?: string;
}

/**
 * A baresip running headless: a generated config directory (`-f`) with only the
 * modules in `BARESIP_MODULES`, SIP on 127.0.0.1, RTP on high ports, driven by commands
 * written to its stdin (the stdio module reads them from the pipe: `/dial`, `/accept`,
 * `/hangup`, `/quit`), its output collected for `waitFor`.
 */
export class BaresipProcess {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly port: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly ownDir: boolean;
  private readonly watch: ProcessWatch;
  private get output(): string {
    return this.watch.output;
  }
  private get running(): boolean {
    return this.watch.running;
  }

  constructor(binary: string, options: BaresipOptions) {
    this.ownDir = options.dir === undefined;
    this.dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sipworks-baresip-'));
    this.port = options.port;
    fs.writeFileSync(path.join(this.dir, 'config'), configFile(options));
    fs.writeFileSync(path.join(this.dir, 'accounts'), `${options.account}\n`);
    // Empty contacts and uuid files, so that baresip writes no defaults of its own.
    fs.writeFileSync(path.join(this.dir, 'contacts'), '');
    this.child = spawn(binary, ['-f', this.dir], {
      cwd: this.dir,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, HOME: this.dir },
    });
    // Colour codes out, so that the patterns match plain text.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences
    this.watch = new ProcessWatch(this.child, 60_000, (t) => t.replace(/\x1b\[[0-9;]*m/g, ''));
    this.child.stdin?.on('error', () => {});
    this.exited = this.watch.exited;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** What baresip printed, colours removed (the last 60 kB). */
  get log(): string {
    return this.output;
  }

  /** Its config and output, for failure reports. */
  report(): string {
    const config = fs.existsSync(path.join(this.dir, 'config'))
      ? fs.readFileSync(path.join(this.dir, 'config'), 'utf8')
      : '';
    return `baresip -f ${this.dir}\n--- config\n${config}\n--- output\n${this.output.slice(-12_000)}`;
  }

  /** Type one command line (`/dial sip:...`) on its stdin. */
  command(line: string): void {
    if (!this.running) throw new Error(`baresip has exited; cannot run ${line}\n${this.report()}`);
    this.child.stdin?.write(`${line}\n`);
  }

  /**
   * Wait until its output, from `from` (an offset into `log`) on, matches `pattern`;
   * rejects with its output after `ms` or when it exits. Resolves with the match.
   */
  async waitFor(pattern: RegExp, ms = 8000, from = 0): Promise<RegExpExecArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = pattern.exec(this.output.slice(from));
      if (m) return m;
      if (!this.running) throw new Error(`baresip exited before ${pattern}\n${this.report()}`);
      if (Date.now() > end)
        throw new Error(`baresip did not print ${pattern} within ${ms} ms\n${this.report()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Wait for "baresip is ready." */
  ready(ms = 8000): Promise<RegExpExecArray> {
    return this.waitFor(/baresip is ready\./, ms);
  }

  /**
   * `/quit` (it unregisters and ends its calls), then SIGTERM after `graceMs`, then
   * SIGKILL; resolves when it has exited, and removes its directory.
   */
  async stop(graceMs = 1500): Promise<void> {
    if (this.running) {
      this.child.stdin?.write('/quit\n');
      const gone = (ms: number) =>
        Promise.race([
          this.exited.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
        ]);
      if (!(await gone(graceMs))) {
        this.child.kill('SIGTERM');
        if (!(await gone(1000))) {
          this.child.kill('SIGKILL');
          await gone(1000);
        }
      }
    }
    if (this.ownDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function configFile(o: BaresipOptions): string {
  return [
    '# Generated by the sipworks interop tests: headless, loopback only.',
    'poll_method epoll',
    `sip_listen 127.0.0.1:${o.port}`,
    'net_interface 127.0.0.1',
    'call_local_timeout 20',
    'call_max_calls 2',
    // The player feeds the source through an in-process bridge: no sound device.
    'audio_source aubridge,sipworks',
    'audio_player aubridge,sipworks',
    'audio_alert aubridge,sipworks',
    'rtp_ports 40000-49998',
    `module_path ${o.modules}`,
    ...BARESIP_MODULES.map((m) =>
      m === 'account' || m === 'menu' ? `module_app ${m}.so` : `module ${m}.so`,
    ),
    '',
  ].join('\n');
}

/** Start baresip with `options` (see `BaresipProcess`); wait for it with `ready()`. */
export function startBaresip(options: BaresipOptions, binary = BARESIP_BINARY): BaresipProcess {
  return new BaresipProcess(binary, options);
}

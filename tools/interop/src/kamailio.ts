import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessWatch } from './process.ts';

/** Where Kamailio is looked for; `KAMAILIO` in the environment overrides it. */
export const KAMAILIO_BINARY = process.env.KAMAILIO ?? '/usr/sbin/kamailio';

export interface KamailioInfo {
  available: boolean;
  /** The version line (`kamailio 5.6.3 (x86_64/linux)`). */
  version: string;
  /** The module directory this build searches by default (`-L`). */
  modules: string;
  /** Why Kamailio cannot be used, when it cannot. */
  reason?: string;
}

/**
 * Whether Kamailio is installed, its version, where its modules are, and whether every
 * module in `required` (default: those of message-auth.cfg) is there.
 */
export function kamailioInfo(
  binary = KAMAILIO_BINARY,
  required: readonly string[] = REQUIRED_MODULES,
): KamailioInfo {
  if (!fs.existsSync(binary))
    return { available: false, version: '', modules: '', reason: `${binary} not found` };
  let version = '';
  let help = '';
  try {
    version = execFileSync(binary, ['-v'], { encoding: 'utf8', timeout: 5000 });
  } catch (e) {
    const r = e as { stdout?: string; message?: string };
    version = r.stdout ?? '';
    if (!version) return { available: false, version: '', modules: '', reason: String(r.message) };
  }
  try {
    help = execFileSync(binary, ['-h'], { encoding: 'utf8', timeout: 5000 });
  } catch (e) {
    help = (e as { stdout?: string }).stdout ?? '';
  }
  const line = /kamailio \S+ \([^)]*\)/.exec(version)?.[0] ?? version.trim().split('\n')[0] ?? '';
  const fromHelp = /-L path\s+Modules search path \(default: ([^)]+)\)/.exec(help)?.[1];
  const modules =
    fromHelp ??
    ['/usr/lib/x86_64-linux-gnu/kamailio/modules', '/usr/lib/kamailio/modules'].find((d) =>
      fs.existsSync(d),
    ) ??
    '';
  for (const m of required) {
    if (!fs.existsSync(path.join(modules, `${m}.so`)))
      return {
        available: false,
        version: line,
        modules,
        reason: `module ${m}.so not found in ${modules || 'the module path'}`,
      };
  }
  return { available: true, version: line, modules };
}

/** The modules kamailio/message-auth.cfg loads. */
export const REQUIRED_MODULES = [
  'tm',
  'sl',
  'rr',
  'pv',
  'maxfwd',
  'textops',
  'siputils',
  'xlog',
  'sanity',
  'auth',
] as const;

/** The modules kamailio/proxy-registrar.cfg loads (the registrar: `registrar`, `usrloc`). */
export const REGISTRAR_MODULES = [...REQUIRED_MODULES, 'usrloc', 'registrar'] as const;

/**
 * The modules kamailio/presence.cfg loads: `presence` and `presence_xml` (Debian package
 * kamailio-presence-modules) and `db_text` (in the kamailio package) for its tables.
 */
export const PRESENCE_MODULES = [
  ...REQUIRED_MODULES.filter((m) => m !== 'auth'),
  'db_text',
  'presence',
  'presence_xml',
] as const;

/** Where the kamailio package keeps the db_text table files (`version`, `presentity`...). */
export const DBTEXT_SCHEMA_DIRS = [
  '/usr/share/kamailio/dbtext/kamailio',
  '/usr/local/share/kamailio/dbtext/kamailio',
];

/**
 * A fresh db_text database in `dir` holding `tables` (and `version`), copied from the
 * package's empty table files; returns the `text://` URL for `db_url`.
 */
export function makeDbtextDatabase(dir: string, tables: readonly string[]): string {
  const schema = DBTEXT_SCHEMA_DIRS.find((d) => fs.existsSync(path.join(d, 'version')));
  if (!schema) throw new Error(`no db_text schema found in ${DBTEXT_SCHEMA_DIRS.join(' or ')}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const t of ['version', ...tables]) fs.copyFileSync(path.join(schema, t), path.join(dir, t));
  return `text://${dir}`;
}

export interface KamailioOptions {
  /** The configuration file (`-f`). */
  config: string;
  /** Address and UDP port to listen on (`-l udp:address:port`). */
  address?: string;
  port: number;
  /** Preprocessor defines (`-A NAME=value`); string values are quoted for the script. */
  defines?: Record<string, string | number>;
  /** Module directory (`-L`); the build's default when not given. */
  modules?: string;
  /** A directory for the pid file and the runtime dir; a fresh temporary one by default. */
  dir?: string;
}

/**
 * A Kamailio running in the foreground (`-DD -E`): one worker (`-n 1`), logging to
 * stderr, with its pid file (`-P`) and runtime directory (`-Y`) in a temporary
 * directory, so that nothing under /var/run is touched and several can run at once.
 */
export class KamailioProcess {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly args: readonly string[];
  readonly address: string;
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

  constructor(binary: string, options: KamailioOptions) {
    this.ownDir = options.dir === undefined;
    this.dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sipworks-kamailio-'));
    this.address = options.address ?? '127.0.0.1';
    this.port = options.port;
    const runtime = path.join(this.dir, 'run');
    fs.mkdirSync(runtime, { recursive: true });
    const args = [
      '-f',
      options.config,
      '-DD',
      '-E',
      '-n',
      '1',
      '-l',
      `udp:${this.address}:${this.port}`,
      '-P',
      path.join(this.dir, 'kamailio.pid'),
      '-Y',
      runtime,
      '-w',
      this.dir,
      '-m',
      '32',
      '-M',
      '4',
    ];
    if (options.modules) args.push('-L', options.modules);
    // Running as root, Kamailio keeps root: there is no user to drop to in a test.
    for (const [name, value] of Object.entries(options.defines ?? {}))
      args.push('-A', typeof value === 'number' ? `${name}=${value}` : `${name}="${value}"`);
    this.args = args;
    // Its own process group, so that the workers it forks can be killed with it.
    this.child = spawn(binary, args, {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.watch = new ProcessWatch(this.child, 40_000);
    this.exited = this.watch.exited;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** What Kamailio wrote (stderr and stdout), the last 40 kB. */
  get log(): string {
    return this.output;
  }

  /** The command line and Kamailio's log, for failure reports. */
  report(): string {
    return `kamailio ${this.args.join(' ')}\n--- kamailio log\n${this.output.slice(-12_000)}`;
  }

  /**
   * Wait until Kamailio answers an OPTIONS probe (sent every 100 ms from a socket of our
   * own), at most `ms`; rejects with its log when it exits first or does not answer.
   */
  async ready(ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, this.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const local = socket.address();
    const callId = `probe-${process.pid}-${Date.now()}@sipworks`;
    let answered = false;
    socket.on('message', (msg) => {
      const text = msg.toString('utf8');
      if (/^SIP\/2\.0 200 /.test(text) && text.includes(callId)) answered = true;
    });
    socket.on('error', () => {});
    try {
      for (let n = 1; ; n++) {
        if (answered) return;
        if (!this.running) throw new Error(`Kamailio exited before it was ready\n${this.report()}`);
        if (Date.now() > end)
          throw new Error(`Kamailio did not answer OPTIONS within ${ms} ms\n${this.report()}`);
        const probe = [
          `OPTIONS sip:${this.address}:${this.port} SIP/2.0`,
          `Via: SIP/2.0/UDP ${local.address}:${local.port};branch=z9hG4bK-probe-${n}-${Date.now()}`,
          'Max-Forwards: 70',
          `From: <sip:probe@${local.address}:${local.port}>;tag=probe${n}`,
          `To: <sip:${this.address}:${this.port}>`,
          `Call-ID: ${callId}`,
          `CSeq: ${n} OPTIONS`,
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n');
        socket.send(probe, this.port, this.address);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await new Promise<void>((r) => socket.close(() => r()));
    }
  }

  /**
   * SIGTERM to Kamailio's process group, then SIGKILL after `graceMs`; resolves when it
   * has exited, and removes its temporary directory.
   */
  async stop(graceMs = 3000): Promise<void> {
    if (this.running) {
      this.signal('SIGTERM');
      const gone = await Promise.race([
        this.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), graceMs)),
      ]);
      if (!gone) {
        this.signal('SIGKILL');
        await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
      }
    }
    if (this.ownDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // The group is gone already.
    }
  }
}

/** Start Kamailio with `options` (see `KamailioProcess`); wait for it with `ready()`. */
export function startKamailio(options: KamailioOptions, binary = KAMAILIO_BINARY): KamailioProcess {
  return new KamailioProcess(binary, options);
}

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The CLI's entry point, run from the working tree through tsx (as `pnpm sipworks`). */
const MAIN = path.join(ROOT, 'packages', 'cli', 'src', 'main.ts');

/** One `--json` line of `sipworks serve` (`listening`, `request`, `log`...). */
export type ServeEvent = Record<string, unknown> & { event: string };

export interface ServeNodeOptions {
  /** A name for reports (`node-a`). */
  name: string;
  /** UDP port on 127.0.0.1 to listen on (fixed: the dispatcher list names it). */
  port: number;
  /** The `--store` argument (`redis://127.0.0.1:PORT?prefix=...`). */
  store: string;
  /** More `serve` arguments. */
  args?: string[];
}

/**
 * A `sipworks serve --json` child process on 127.0.0.1:`port` over UDP: one node of the
 * scale-out topology. Its events are parsed as they come; `kill('SIGKILL')` makes it die
 * as a crashed node would (no unregistering, no goodbye).
 */
export class ServeNode {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  private stdout = '';
  private stderr = '';
  private parsed: ServeEvent[] = [];
  private consumed = 0;

  constructor(options: ServeNodeOptions) {
    this.name = options.name;
    this.port = options.port;
    this.child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        MAIN,
        'serve',
        '--json',
        '--listen',
        `udp:127.0.0.1:${options.port}`,
        '--store',
        options.store,
        ...(options.args ?? []),
      ],
      { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString('utf8');
      this.parse();
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString('utf8')).slice(-20_000);
    });
    this.exited = new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
  }

  /** Every event so far. */
  get events(): readonly ServeEvent[] {
    return this.parsed;
  }

  /** The `message` of every `log` event (what the server did: registered, relayed...). */
  get logs(): string[] {
    return this.parsed.filter((e) => e.event === 'log').map((e) => String(e.message));
  }

  get isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Wait (polling every 20 ms, at most `ms`) until an event matches; rejects with the node's output. */
  async waitFor(pred: (e: ServeEvent) => boolean, what: string, ms = 10_000): Promise<ServeEvent> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.parsed.find(pred);
      if (hit) return hit;
      if (!this.isRunning || Date.now() > end)
        throw new Error(
          `${this.name}: ${what} not seen within ${ms} ms${this.isRunning ? '' : ' (exited)'}\n${this.report()}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Wait until the node listens (its `listening` event). */
  async ready(ms = 15_000): Promise<void> {
    await this.waitFor((e) => e.event === 'listening', 'listening', ms);
  }

  /** Send `signal` (SIGKILL: die like a crash) and wait for the exit, at most 5 s. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.isRunning) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Its output, for failure reports. */
  report(): string {
    return `--- ${this.name} stdout\n${this.stdout.slice(-8_000)}\n--- ${this.name} stderr\n${this.stderr}`;
  }

  private parse(): void {
    const lines = this.stdout.split('\n');
    for (; this.consumed < lines.length - 1; this.consumed++) {
      const line = lines[this.consumed] ?? '';
      if (!line.startsWith('{')) continue;
      try {
        this.parsed.push(JSON.parse(line) as ServeEvent);
      } catch {
        // Not one of serve's JSON lines: keep it in stdout only.
      }
    }
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, where `pnpm sipworks` runs. */
export const ROOT = path.join(here, '..', '..', '..');
/** The CLI's entry point, run from the working tree through tsx, as `pnpm sipworks` does. */
export const MAIN = path.join(ROOT, 'packages', 'cli', 'src', 'main.ts');

/** One `listening` line of `serve --json`. */
export interface Listener {
  transport: string;
  address: string;
  port: number;
}

export interface ServeOptions {
  /** Arguments after `serve --json`. */
  args: string[];
  /** Open the V8 inspector on a free loopback port, so `heapAfterGc()` can read the heap. */
  inspect?: boolean;
  /** How long to wait for the listeners (ms, default 15,000). */
  startTimeoutMs?: number;
}

/**
 * A `sipworks serve --json` child process, as a user runs it. Its stdout is read as it
 * comes (only the listeners and the last few KiB are kept, so a long run does not grow
 * the test's own memory), and with `inspect` its heap after a full GC can be read
 * through the inspector protocol, without any hook in the server.
 */
export class ServeProcess {
  readonly child: ChildProcess;
  readonly listeners: Listener[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Requests the server logged (`request` events). */
  requests = 0;
  private tail = '';
  private errTail = '';
  private partial = '';
  private inspectorUrl: string | undefined;
  private alive = true;
  private readonly changed = new Set<() => void>();

  private constructor(options: ServeOptions) {
    const node = [...(options.inspect ? ['--inspect=127.0.0.1:0'] : []), '--import', 'tsx'];
    this.child = spawn(process.execPath, [...node, MAIN, 'serve', '--json', ...options.args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (d: Buffer) => this.stdout(d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => {
      const text = d.toString();
      this.errTail = (this.errTail + text).slice(-4000);
      const m = /Debugger listening on (ws:\/\/\S+)/.exec(this.errTail);
      if (m) this.inspectorUrl = m[1];
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.alive = false;
        this.notify();
        resolve({ code, signal });
      });
    });
  }

  /** Start `sipworks serve` and wait until every listener is up. */
  static async start(options: ServeOptions): Promise<ServeProcess> {
    const p = new ServeProcess(options);
    try {
      // Every listener is reported once the stack runs (serve's default is UDP and TCP).
      const listens = options.args.filter((a) => a === '--listen').length;
      const wanted = listens > 0 ? listens : 2;
      await p.until(
        () => p.listeners.length >= wanted,
        options.startTimeoutMs ?? 15_000,
        'serve did not start',
      );
      if (options.inspect)
        await p.until(() => p.inspectorUrl !== undefined, 5000, 'no inspector URL');
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  get running(): boolean {
    return this.alive;
  }

  /** The first listener of a transport (`udp`, `tcp`, `ws`...). */
  listener(transport: string): Listener {
    const l = this.listeners.find((x) => x.transport === transport);
    if (!l) throw new Error(`serve has no ${transport} listener: ${this.output()}`);
    return l;
  }

  /** The V8 heap in use after a full garbage collection, in bytes (needs `inspect`). */
  async heapAfterGc(): Promise<number> {
    if (!this.inspectorUrl) throw new Error('serve was started without inspect');
    const ws = new WebSocket(this.inspectorUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    let id = 0;
    const call = (method: string): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const mine = ++id;
        const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), 10_000);
        const onMessage = (data: WebSocket.RawData): void => {
          const msg = JSON.parse(data.toString()) as {
            id?: number;
            result?: Record<string, unknown>;
            error?: unknown;
          };
          if (msg.id !== mine) return;
          ws.off('message', onMessage);
          clearTimeout(timer);
          if (msg.error) reject(new Error(`${method}: ${JSON.stringify(msg.error)}`));
          else resolve(msg.result ?? {});
        };
        ws.on('message', onMessage);
        ws.send(JSON.stringify({ id: mine, method }));
      });
    try {
      await call('HeapProfiler.collectGarbage');
      await call('HeapProfiler.collectGarbage');
      const usage = await call('Runtime.getHeapUsage');
      return Number(usage.usedSize);
    } finally {
      ws.close();
    }
  }

  /** Kill the process with `signal` and wait for it to exit (SIGKILL after 5 s). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.alive) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  /** The tail of stdout and stderr, for failure messages. */
  output(): string {
    return `--- stdout\n${this.tail}\n--- stderr\n${this.errTail}`;
  }

  private stdout(text: string): void {
    this.tail = (this.tail + text).slice(-8000);
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      if (line.includes('"event":"request"')) {
        this.requests++;
        continue;
      }
      if (!line.includes('"event":"listening"')) continue;
      const e = JSON.parse(line) as Listener;
      this.listeners.push({ transport: e.transport, address: e.address, port: e.port });
    }
    this.notify();
  }

  private notify(): void {
    for (const f of [...this.changed]) f();
  }

  private until(cond: () => boolean, ms: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (cond()) done(undefined);
        else if (!this.alive) done(new Error(`${what}: it exited\n${this.output()}`));
      };
      const timer = setTimeout(() => done(new Error(`${what} in ${ms} ms\n${this.output()}`)), ms);
      const done = (e: Error | undefined): void => {
        clearTimeout(timer);
        this.changed.delete(check);
        if (e) reject(e);
        else resolve();
      };
      this.changed.add(check);
      check();
    });
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { freePort, type PeerRequirement, peerRequirement } from './index.ts';

/**
 * Whether redis-server is installed (`REDIS_SERVER` in the environment overrides where),
 * for the suite named `suite`; see `peerRequirement`.
 */
export function redisServerRequirement(suite: string): PeerRequirement {
  return peerRequirement({
    peer: 'redis-server',
    binary: process.env.REDIS_SERVER ?? 'redis-server',
    install: 'apt-get install redis-server',
    suite,
  });
}

/**
 * A throwaway redis-server on 127.0.0.1 and a free high port, without persistence
 * (`--save '' --appendonly no`). `stop()` ends it; `start()` again starts a new one on
 * the same port (a Redis that went away and came back, empty).
 */
export class RedisServerProcess {
  readonly port: number;
  private readonly binary: string;
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(binary: string, port: number) {
    this.binary = binary;
    this.port = port;
  }

  /** Start `binary` (found by `redisServerRequirement`) and wait (at most `ms`) until it answers PING. */
  static async start(binary: string | undefined, ms = 5_000): Promise<RedisServerProcess> {
    if (binary === undefined) throw new Error('redis-server is not installed');
    const p = new RedisServerProcess(binary, await freePort());
    await p.start(ms);
    return p;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get isRunning(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  async start(ms = 5_000): Promise<void> {
    if (this.isRunning) return;
    this.output = '';
    const child = spawn(
      this.binary,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'yes',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const end = Date.now() + ms;
    for (;;) {
      if (!this.isRunning) throw new Error(`redis-server exited at start:\n${this.output}`);
      if (await ping(this.port)) return;
      if (Date.now() > end) {
        await this.stop();
        throw new Error(`redis-server did not answer PING within ${ms} ms:\n${this.output}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** End redis-server (SIGTERM, then SIGKILL after `ms`) and wait for it to exit. */
  async stop(ms = 3_000): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    await exited;
    clearTimeout(timer);
  }
}

/** One PING over a fresh connection; true on +PONG within 500 ms. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
    s.on('error', () => done(false));
  });
}

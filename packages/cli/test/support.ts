import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The CLI's entry point, run from the working tree through tsx, as `pnpm sipworks` does. */
export const MAIN = path.join(here, '..', 'src', 'main.ts');
const ROOT = path.join(here, '..', '..', '..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Every process a test started, so afterEach/afterAll can stop what is left. */
export const running = new Set<ChildProcess>();

function start(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Run `sipworks ARGS` to its end (killed after `timeoutMs`). */
export function sipworks(args: string[], timeoutMs = 15_000): Promise<CliResult> {
  const child = start(args);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** JSON lines of a `--json` run. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A long-running `sipworks serve --json`, with its output as it comes. */
export class Server {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly waiters: (() => void)[] = [];

  constructor(args: string[]) {
    this.child = start(['serve', '--json', ...args]);
    this.child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  get events(): Record<string, unknown>[] {
    return jsonLines(this.stdout);
  }

  /** Wait (bounded) until an event matches. */
  async waitFor(
    pred: (e: Record<string, unknown>) => boolean,
    timeoutMs = 10_000,
  ): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() > end || this.child.exitCode !== null)
        throw new Error(
          `serve: no matching event; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
        );
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** The port it listens on for a transport. */
  async port(transport: string): Promise<number> {
    const e = await this.waitFor((x) => x.event === 'listening' && x.transport === transport);
    return e.port as number;
  }

  /** SIGTERM, and the exit status. */
  stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return Promise.resolve(this.child.exitCode);
    return new Promise((resolve) => {
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      this.child.once('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      this.child.kill('SIGTERM');
    });
  }
}

/** Kill whatever a test left running. */
export function killAll(): void {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
}

/** Whether this run is CI's, where a missing tool fails the tests that need it. */
export const inCi = process.env.CI === 'true';

/**
 * Whether an external program runs (`name ...args` exits 0). When it does not, the tests
 * that need it skip with the reason printed, as the interop suites do, except in CI
 * (`CI=true`), where they run and fail.
 */
export function externalTool(
  name: string,
  args: string[],
  install: string,
): { available: boolean; reason: string; skip: boolean } {
  const r = spawnSync(name, args, { encoding: 'utf8', timeout: 10_000 });
  const available = !r.error && r.status === 0;
  const reason = r.error ? `${name} not found (${r.error.message})` : `${name} exited ${r.status}`;
  if (!available && !inCi)
    console.warn(
      `[cli] tests needing ${name} skipped: ${reason} (${install}); with CI=true they fail instead`,
    );
  return { available, reason, skip: !available && !inCi };
}

/**
 * Whether `expected` appears in `list` in order, other items allowed in between: a
 * ladder under load may hold retransmissions (a 2xx resent before its ACK, a reliable
 * 1xx resent before its PRACK, RFC 3261 §13.3.1.4, RFC 3262 §3), which are right too.
 */
export function inOrder(list: readonly string[], expected: readonly string[]): boolean {
  let i = 0;
  for (const item of list) if (item === expected[i]) i++;
  return i === expected.length;
}

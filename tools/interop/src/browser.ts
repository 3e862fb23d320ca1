/**
 * Headless Chromium (Debian's `chromium`, driven by playwright-core, which downloads no
 * browser) and `sipworks serve --web` for the softphone page tests.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';
import type { PeerAvailability } from './peer.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(here, '..', '..', '..');
const CLI_MAIN = path.join(ROOT, 'packages', 'cli', 'src', 'main.ts');

/** Chromium: `CHROMIUM`, else Debian's `/usr/bin/chromium`. */
export const CHROMIUM_BINARY = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Whether Chromium can run here: it is installed and answers `--version`. */
export function chromiumInfo(binary = CHROMIUM_BINARY): PeerAvailability & { version: string } {
  if (!existsSync(binary)) return { available: false, version: '', reason: `${binary} not found` };
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const version = /Chromium\s+([\d.]+)/.exec(r.stdout ?? '')?.[1];
  if (!version)
    return {
      available: false,
      version: '',
      reason: `${binary} --version failed: ${(r.stderr || r.error?.message || '').trim()}`,
    };
  return { available: true, version };
}

/**
 * Launch headless Chromium with fake media: the fake UI grants the microphone without
 * asking, the fake device plays a tone. `--no-sandbox` because CI runs as root.
 */
export function launchChromium(binary = CHROMIUM_BINARY): Promise<Browser> {
  return chromium.launch({
    executablePath: binary,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** JsSIP, bundled for a page (it defines `window.JsSIP`). */
export async function jssipBundle(): Promise<string> {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('jssip');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'JsSIP',
    write: false,
    logLevel: 'silent',
  });
  const js = result.outputFiles[0]?.text;
  if (!js) throw new Error('esbuild produced no JsSIP bundle');
  return js;
}

/** A running `sipworks serve --json`, with its JSON events as they come. */
export class ServeProcess {
  readonly child: ChildProcess;
  private stdout = '';
  private stderr = '';

  private constructor(args: string[]) {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI_MAIN, 'serve', '--json', ...args],
      {
        cwd: ROOT,
        env: { ...process.env, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  /** Start serve and wait (at most `timeoutMs`) for its `web` event: the page's URL. */
  static async start(
    args: string[],
    timeoutMs = 30_000,
  ): Promise<{ serve: ServeProcess; url: string }> {
    const serve = new ServeProcess(args);
    try {
      const e = await serve.waitFor((x) => x.event === 'web', timeoutMs);
      return { serve, url: e.url as string };
    } catch (err) {
      await serve.stop();
      throw err;
    }
  }

  get events(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Wait, polling every 100 ms up to `timeoutMs`, for an event that matches. */
  async waitFor(
    pred: (e: Record<string, unknown>) => boolean,
    timeoutMs = 10_000,
  ): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() > end || this.child.exitCode !== null)
        throw new Error(`serve: no such event; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM (SIGKILL after 5 s); resolves with the exit code. */
  stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null)
      return Promise.resolve(this.child.exitCode);
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

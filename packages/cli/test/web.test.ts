import type { Transport } from '@sipworks/stack';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.ts';
import { parseCommandLine } from '../src/options.ts';
import { startWebServer, type WebServer } from '../src/web.ts';

const servers: WebServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A started WebSocket transport, as far as the web server looks at it. */
const wsListener = (port: number) =>
  ({
    protocol: 'WS',
    local: { address: '127.0.0.1', port, family: 'IPv4' },
  }) as unknown as Transport;

describe('serve --web: the softphone page (RFC 7118 client in the browser)', () => {
  it('--web HOST:PORT is parsed for serve only', () => {
    expect(parseCommandLine(['serve', '--web', '127.0.0.1:8080']).web).toEqual({
      host: '127.0.0.1',
      port: 8080,
    });
    expect(parseCommandLine(['serve', '--web', '[::1]:0']).web).toEqual({ host: '::1', port: 0 });
    expect(() => parseCommandLine(['serve', '--web', 'nowhere'])).toThrow(UsageError);
    expect(() => parseCommandLine(['options', 'sip:a@b', '--web', '127.0.0.1:1'])).toThrow(
      /--web goes with serve/,
    );
  });

  it('serves the page, its browser bundle and the WebSocket listener to use; nothing else', async () => {
    const web = await startWebServer({
      host: '127.0.0.1',
      port: 0,
      transports: [wsListener(45678)],
      realm: 'sipworks',
      users: ['alice', 'bob'],
    });
    servers.push(web);
    const page = await fetch(web.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/page.js">');
    const config = await (await fetch(new URL('/config.json', web.url))).json();
    expect(config).toEqual({
      ws: { secure: false, port: 45678, path: '/' },
      proxy: { host: '127.0.0.1', port: 45678 },
      realm: 'sipworks',
      users: ['alice', 'bob'],
    });
    const js = await (await fetch(new URL('/page.js', web.url))).text();
    // The DUM, the WebSocket client and the WebRTC mapping, bundled with no Node module.
    expect(js).toMatch(/\bDialogUsageManager = class\b/);
    expect(js).toMatch(/\bWsClientTransport = class\b/);
    expect(js).toMatch(/\bWebRtcCalls = class\b/);
    expect(js).not.toMatch(/from\s*["']node:|require\(["']node:/);
    expect(js).not.toMatch(/\bWsTransport = class\b/);
    expect((await fetch(new URL('/nothing', web.url))).status).toBe(404);
    expect((await fetch(web.url, { method: 'POST', body: 'x' })).status).toBe(405);
  });

  it('refuses to start without a WebSocket listener for the page', async () => {
    await expect(
      startWebServer({ host: '127.0.0.1', port: 0, transports: [], realm: 'r', users: [] }),
    ).rejects.toThrow(/--listen ws:/);
  });
});

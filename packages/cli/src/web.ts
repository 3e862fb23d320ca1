import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { sentByHost, type Transport } from '@sipworks/stack';
import { CliError, UsageError } from './errors.ts';

/** What the softphone page is told (`/config.json`). */
export interface WebConfig {
  /** The SIP WebSocket listener: the page opens `ws[s]://<its own host>:<port><path>`. */
  ws: { secure: boolean; port: number; path: string };
  /** The listener's address, for the page's outbound proxy (an address: a page has no DNS). */
  proxy: { host: string; port: number };
  /** The digest realm of `--users`. */
  realm: string;
  /** The users of `--users` (names only): the page's buddy list. */
  users: string[];
}

export interface WebServer {
  /** `http://host:port/`. */
  readonly url: string;
  close(): Promise<void>;
}

/** The page's sources: `web/src/page.ts` beside this package's `src` (and `dist`). */
const PAGE_ENTRY = fileURLToPath(new URL('../web/src/page.ts', import.meta.url));
const PAGE_HTML = fileURLToPath(new URL('../web/index.html', import.meta.url));

/**
 * Bundle the page (esbuild, platform browser): `@sipworks/dum`, `stack`, `message`,
 * `transport-ws`'s WebSocket client and `@sipworks/webrtc`, with no Node module.
 */
export async function buildPage(): Promise<string> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [PAGE_ENTRY],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    sourcemap: 'inline',
    logLevel: 'silent',
  });
  const js = result.outputFiles[0]?.text;
  if (!js) throw new CliError('building the softphone page produced nothing');
  return js;
}

/**
 * Serve the softphone page for `sipworks serve --web HOST:PORT`: `/` the page, `/page.js`
 * its bundle (built once, at start), `/config.json` where the SIP WebSocket listener is.
 * Everything else is 404; only GET and HEAD are answered.
 */
export async function startWebServer(options: {
  host: string;
  port: number;
  transports: Transport[];
  realm: string;
  users: string[];
}): Promise<WebServer> {
  const ws = options.transports.find((t) => t.protocol === 'WS' || t.protocol === 'WSS');
  if (!ws)
    throw new UsageError(
      '--web needs a WebSocket listener for the page: add --listen ws:HOST:PORT (or wss: with --cert and --key)',
    );
  const config: WebConfig = {
    ws: { secure: ws.protocol === 'WSS', port: ws.local.port, path: '/' },
    proxy: {
      host: sentByHost(ws.local.address, ws.local.family),
      port: ws.local.port,
    },
    realm: options.realm,
    users: options.users,
  };
  let js: string;
  try {
    js = await buildPage();
  } catch (e) {
    throw new CliError(`cannot build the softphone page: ${(e as Error).message}`);
  }
  const html = readFileSync(PAGE_HTML, 'utf8');
  const files: Record<string, { type: string; body: string }> = {
    '/': { type: 'text/html; charset=utf-8', body: html },
    '/index.html': { type: 'text/html; charset=utf-8', body: html },
    '/page.js': { type: 'text/javascript; charset=utf-8', body: js },
    '/config.json': { type: 'application/json', body: JSON.stringify(config) },
  };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const file = files[path];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      'Content-Type': file.type,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) =>
      reject(
        new CliError(`cannot serve the page on ${options.host}:${options.port}: ${e.message}`),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

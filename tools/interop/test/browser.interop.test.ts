import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CHROMIUM_BINARY,
  chromiumInfo,
  jssipBundle,
  launchChromium,
  ServeProcess,
} from '../src/browser.ts';
import { peerGate } from '../src/peer.ts';

/**
 * The softphone page of `sipworks serve --web` in headless Chromium: the DUM running in
 * the page over SIP over WebSocket (RFC 7118) against `sipworks serve`, with WebRTC media.
 */
const info = chromiumInfo();
const gate = peerGate('Chromium', info, 'chromium');

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Where screenshots are kept (ignored by git). */
const ARTIFACTS = process.env.SIPWORKS_ARTIFACTS ?? path.join(ROOT, '.scratch', 'browser');

interface PageApi {
  peerConnections: RTCPeerConnectionLike[];
  messages: { direction: 'in' | 'out'; peer: string; text: string; status?: number }[];
  presence: Record<string, string>;
  ladder: { direction: string; line: string }[];
  errors: string[];
  sendMessage(to: string, text: string): void;
  hangup(): void;
}

interface RTCPeerConnectionLike {
  connectionState: string;
  getStats(): Promise<Map<string, Record<string, unknown>>>;
}

/** What the test reads in the page (the tests' compiler has no DOM typings). */
interface Win {
  sipworks: PageApi;
  document: { body: { dataset: Record<string, string | undefined> } };
}

let dir: string;
let browser: Browser | undefined;
let context: BrowserContext | undefined;
let serve: ServeProcess | undefined;

async function startServe(args: string[]): Promise<string> {
  const started = await ServeProcess.start([
    '--listen',
    'ws:127.0.0.1:0',
    '--listen',
    'udp:127.0.0.1:0',
    '--web',
    '127.0.0.1:0',
    ...args,
  ]);
  serve = started.serve;
  return started.url;
}

async function openPage(url: string, query: Record<string, string>): Promise<Page> {
  context ??= await (browser as Browser).newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.warn(`[page ${query.user}] ${e.message}`));
  await page.goto(`${url}?${new URLSearchParams(query)}`);
  return page;
}

function waitForDataset(
  page: Page,
  key: string,
  value: string,
  timeout = 15_000,
): Promise<unknown> {
  return page.waitForFunction(
    ([k, v]) => (globalThis as unknown as Win).document.body.dataset[k as string] === v,
    [key, value],
    {
      timeout,
      polling: 50,
    },
  );
}

/** Each peer connection's state and the RTP packets and bytes received (`getStats`). */
function media(page: Page): Promise<{ state: string; packets: number; bytes: number }[]> {
  return page.evaluate(async () => {
    const out: { state: string; packets: number; bytes: number }[] = [];
    for (const pc of (globalThis as unknown as Win).sipworks.peerConnections) {
      let packets = 0;
      let bytes = 0;
      (await pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'audio') {
          packets += Number(r.packetsReceived ?? 0);
          bytes += Number(r.bytesReceived ?? 0);
        }
      });
      out.push({ state: pc.connectionState, packets, bytes });
    }
    return out;
  });
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sipworks-browser-'));
  writeFileSync(path.join(dir, 'users'), 'alice:alice-pw\nbob:bob-pw\ncarol:carol-pw\n');
  mkdirSync(ARTIFACTS, { recursive: true });
  return () => rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await context?.close();
  context = undefined;
  await serve?.stop();
  serve = undefined;
});

afterAll(async () => {
  await browser?.close();
  browser = undefined;
});

describe.skipIf(gate.skip)(
  `the softphone page in headless Chromium ${info.version} against sipworks serve (RFC 7118, RFC 3261 §10, RFC 3428, RFC 3264)`,
  () => {
    beforeAll(async () => {
      gate.require();
      browser = await launchChromium(CHROMIUM_BINARY);
    }, 60_000);

    it('alice and bob register with digest auth, see each other online, exchange a MESSAGE, call with audio through the B2BUA and hang up', async () => {
      const url = await startServe(['--users', path.join(dir, 'users')]);
      const bob = await openPage(url, { user: 'bob', password: 'bob-pw', answer: 'auto' });
      await waitForDataset(bob, 'registration', 'registered');
      // alice calls bob as soon as she is registered and sees him online.
      const alice = await openPage(url, { user: 'alice', password: 'alice-pw', call: 'bob' });
      await waitForDataset(alice, 'registration', 'registered');

      // RFC 3261 §22: the REGISTER was challenged and answered (SHA-256 with WebCrypto).
      const aliceLadder = await alice.evaluate(() =>
        (globalThis as unknown as Win).sipworks.ladder.map((l) => l.line),
      );
      expect(aliceLadder).toContain('401 Unauthorized (REGISTER)');
      expect(aliceLadder).toContain('200 OK (REGISTER)');

      // RFC 3856 presence through the server's PUBLISH and SUBSCRIBE/NOTIFY.
      await alice.waitForFunction(
        () => (globalThis as unknown as Win).sipworks.presence.bob === 'open',
        null,
        {
          timeout: 10_000,
        },
      );

      // RFC 3428 MESSAGE, relayed by the server to the other page's WebSocket flow.
      await alice.evaluate(() =>
        (globalThis as unknown as Win).sipworks.sendMessage('bob', 'hello bob, from alice'),
      );
      await bob.waitForFunction(
        () =>
          (globalThis as unknown as Win).sipworks.messages.some(
            (m) => m.direction === 'in' && m.text === 'hello bob, from alice',
          ),
        null,
        { timeout: 10_000 },
      );
      await alice.waitForFunction(
        () =>
          (globalThis as unknown as Win).sipworks.messages.some(
            (m) => m.direction === 'out' && m.status === 200,
          ),
        null,
        { timeout: 10_000 },
      );
      const got = await bob.evaluate(() =>
        (globalThis as unknown as Win).sipworks.messages.find((m) => m.direction === 'in'),
      );
      expect(got?.peer).toBe('alice');

      // The call: INVITE with the page's offer (ICE gathered), bridged by serve to bob.
      await waitForDataset(alice, 'call', 'connected', 20_000);
      await waitForDataset(bob, 'call', 'connected', 20_000);
      // Both RTCPeerConnections connect, and audio packets arrive at both ends.
      let a = await media(alice);
      let b = await media(bob);
      for (
        let i = 0;
        i < 100 && !(a[0]?.packets && b[0]?.packets && a[0].packets > 20 && b[0].packets > 20);
        i++
      ) {
        await new Promise((r) => setTimeout(r, 100));
        a = await media(alice);
        b = await media(bob);
      }
      expect(a).toHaveLength(1);
      expect(b).toHaveLength(1);
      expect(a[0]?.state).toBe('connected');
      expect(b[0]?.state).toBe('connected');
      expect(a[0]?.packets).toBeGreaterThan(20);
      expect(b[0]?.packets).toBeGreaterThan(20);
      expect(a[0]?.bytes).toBeGreaterThan(0);

      const shot = path.join(ARTIFACTS, 'softphone-alice-in-call.png');
      await alice.screenshot({ path: shot, fullPage: true });
      expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');

      // Hang up (BYE): both pages end the call and close their peer connections.
      await alice.evaluate(() => (globalThis as unknown as Win).sipworks.hangup());
      await waitForDataset(alice, 'call', 'ended');
      await waitForDataset(bob, 'call', 'ended');
      const bobLadder = await bob.evaluate(() =>
        (globalThis as unknown as Win).sipworks.ladder.map((l) => l.line),
      );
      expect(bobLadder.some((l) => l.startsWith('BYE '))).toBe(true);
      expect(await alice.evaluate(() => (globalThis as unknown as Win).sipworks.errors)).toEqual(
        [],
      );
      expect(await bob.evaluate(() => (globalThis as unknown as Win).sipworks.errors)).toEqual([]);
      await serve?.waitFor((e) => e.event === 'log' && e.message === 'call bridged');
    }, 90_000);

    it('JsSIP in the same page registers over the same WebSocket server, exchanges MESSAGEs with the sipworks user there, and calls it (standard SIP over WebSocket)', async () => {
      // JsSIP 3.13 answers only an MD5 challenge and reads only the first WWW-Authenticate,
      // so this server challenges with MD5 alone (--digest MD5); both users authenticate.
      const url = await startServe(['--users', path.join(dir, 'users'), '--digest', 'MD5']);
      const page = await openPage(url, { user: 'alice', password: 'alice-pw', answer: 'auto' });
      await waitForDataset(page, 'registration', 'registered');
      const wsPort = (await serve?.waitFor((e) => e.event === 'listening' && e.transport === 'ws'))
        ?.port as number;
      await page.addScriptTag({ content: await jssipBundle() });
      const registered = await page.evaluate(
        (port) =>
          new Promise<string>((resolve) => {
            const J = (globalThis as unknown as { JsSIP: JsSipGlobal }).JsSIP;
            const ua = new J.UA({
              sockets: [new J.WebSocketInterface(`ws://127.0.0.1:${port}/`)],
              uri: 'sip:carol@127.0.0.1',
              password: 'carol-pw',
              register: true,
              session_timers: false,
            });
            const w = globalThis as unknown as JsSipPage;
            w.jssip = { ua, messages: [], calls: [] };
            ua.on('newMessage', (e: { originator: string; request: { body: string } }) => {
              if (e.originator === 'remote') w.jssip.messages.push(e.request.body);
            });
            ua.on('registered', () => resolve('registered'));
            ua.on('registrationFailed', (e: { cause: string }) => resolve(`failed: ${e.cause}`));
            ua.start();
            setTimeout(() => resolve('timeout'), 10_000);
          }),
        wsPort,
      );
      expect(registered).toBe('registered');
      await serve?.waitFor(
        (e) =>
          e.event === 'log' &&
          typeof e.message === 'string' &&
          e.message.startsWith('registered sip:carol@'),
      );

      // sipworks -> JsSIP, relayed to JsSIP's .invalid Contact over its WebSocket flow.
      await page.evaluate(() =>
        (globalThis as unknown as Win).sipworks.sendMessage('carol', 'hello JsSIP'),
      );
      await page.waitForFunction(
        () => (globalThis as unknown as JsSipPage).jssip.messages.includes('hello JsSIP'),
        null,
        { timeout: 10_000 },
      );
      // JsSIP -> sipworks.
      const sent = await page.evaluate(
        () =>
          new Promise<string>((resolve) => {
            (globalThis as unknown as JsSipPage).jssip.ua.sendMessage(
              'sip:alice@127.0.0.1',
              'hello sipworks',
              {
                eventHandlers: {
                  succeeded: () => resolve('succeeded'),
                  failed: (e: { cause: string }) => resolve(`failed: ${e.cause}`),
                },
              },
            );
          }),
      );
      expect(sent).toBe('succeeded');
      await page.waitForFunction(
        () =>
          (globalThis as unknown as Win).sipworks.messages.some(
            (m) => m.direction === 'in' && m.text === 'hello sipworks',
          ),
        null,
        { timeout: 10_000 },
      );

      // JsSIP calls the sipworks user (answer=auto) through serve: WebRTC on both ends.
      const outcome = await page.evaluate(
        () =>
          new Promise<string>((resolve) => {
            const w = globalThis as unknown as JsSipPage;
            const session = w.jssip.ua.call('sip:alice@127.0.0.1', {
              mediaConstraints: { audio: true, video: false },
              eventHandlers: {
                confirmed: () => resolve('confirmed'),
                failed: (e: { cause: string }) => resolve(`failed: ${e.cause}`),
              },
            });
            w.jssip.calls.push(session);
            setTimeout(() => resolve('timeout'), 20_000);
          }),
      );
      expect(outcome).toBe('confirmed');
      await waitForDataset(page, 'call', 'connected');
      let m = await media(page);
      for (let i = 0; i < 100 && !((m[0]?.packets ?? 0) > 20); i++) {
        await new Promise((r) => setTimeout(r, 100));
        m = await media(page);
      }
      expect(m[0]?.state).toBe('connected');
      expect(m[0]?.packets).toBeGreaterThan(20);
      // JsSIP hangs up with BYE; the sipworks side ends too.
      await page.evaluate(() => (globalThis as unknown as JsSipPage).jssip.calls[0]?.terminate());
      await waitForDataset(page, 'call', 'ended');
      await page.evaluate(() => (globalThis as unknown as JsSipPage).jssip.ua.stop());
    }, 90_000);
  },
);

/** The parts of JsSIP's browser API the test uses. */
interface JsSipUa {
  on(event: string, listener: (e: never) => void): void;
  start(): void;
  stop(): void;
  sendMessage(target: string, body: string, options: object): void;
  call(target: string, options: object): { terminate(): void };
}

interface JsSipGlobal {
  UA: new (config: object) => JsSipUa;
  WebSocketInterface: new (url: string) => object;
}

interface JsSipPage {
  jssip: { ua: JsSipUa; messages: string[]; calls: { terminate(): void }[] };
}

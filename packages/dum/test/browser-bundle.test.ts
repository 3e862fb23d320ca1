import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { build, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';

const entry = fileURLToPath(new URL('./fixtures/browser-entry.ts', import.meta.url));

/** What a browser page bundle of message + stack + dum holds (esbuild, platform browser). */
async function bundle(): Promise<{ text: string; metafile: Metafile }> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'sipworks',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  return { text: result.outputFiles[0]?.text ?? '', metafile: result.metafile };
}

/** The node:... modules and Node built-in names (bare: 'crypto', 'dns' ...) a bundle imports. */
const NODE_BUILTIN =
  /^(node:|(assert|buffer|crypto|dgram|diagnostics_channel|dns|events|fs|net|os|path|stream|tls|url|util|worker_threads)(\/|$))/;

describe('@sipworks/message, stack and dum in a browser (DESIGN.md: Node-only modules behind injectable interfaces)', () => {
  it('bundle for platform browser with no externals and no Node built-in in the output', async () => {
    const { text, metafile } = await bundle();
    expect(text.length).toBeGreaterThan(10_000);
    const imported = Object.values(metafile.inputs).flatMap((i) => i.imports.map((x) => x.path));
    expect(imported.filter((p) => NODE_BUILTIN.test(p))).toEqual([]);
    const inputs = Object.keys(metafile.inputs);
    expect(inputs.some((p) => p.endsWith('platform/browser.ts'))).toBe(true);
    expect(inputs.filter((p) => p.endsWith('platform/node.ts'))).toEqual([]);
    // Nothing that names a Node module survives: no node: specifier, no require().
    expect(text.match(/["']node:[a-z_/]+["']/g) ?? []).toEqual([]);
    expect(text).not.toMatch(/\brequire\(/);
    expect(text).not.toMatch(/getBuiltinModule/);
  });

  it('the bundle runs where there is no process, Buffer or require: parses, hashes, builds a DUM', async () => {
    const { text } = await bundle();
    // The globals a page has that the packages use, and nothing of Node's.
    const page: Record<string, unknown> = {
      TextEncoder,
      TextDecoder,
      crypto: globalThis.crypto,
      setTimeout,
      clearTimeout,
      setInterval,
      clearInterval,
      queueMicrotask,
      console,
      URL,
      performance,
    };
    page.globalThis = page;
    page.window = page;
    const lib = runInNewContext(`${text}; sipworks`, page) as {
      message: { parseMessage(text: string): { method?: string; callId: string } };
      stack: { SipStack: new (o?: object) => object };
      dum: {
        DialogUsageManager: new (o: object) => { clientAuthManager: { isAsync: boolean } };
        webHasher(a: string, d: string): Promise<string>;
      };
    };
    expect(page.process).toBeUndefined();
    const m = lib.message.parseMessage(
      'OPTIONS sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\n' +
        'From: <sip:alice@example.test>;tag=1\r\nTo: <sip:bob@example.test>\r\n' +
        'Call-ID: page-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
    );
    expect(m.method).toBe('OPTIONS');
    expect(m.callId).toBe('page-1');
    // RFC 7616 §3.9.1's H(A1) input, hashed with WebCrypto's SHA-256 and the bundled MD5.
    expect(await lib.dum.webHasher('MD5', 'abc')).toBe('900150983cd24fb0d6963f7d28e17f72');
    expect(await lib.dum.webHasher('SHA-256', 'abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    const dum = new lib.dum.DialogUsageManager({ stack: new lib.stack.SipStack() });
    // No node:crypto here: the DUM answers challenges with the asynchronous web hasher.
    expect(dum.clientAuthManager.isAsync).toBe(true);
  });
});

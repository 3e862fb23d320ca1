import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

describe('@sipworks/transport-ws in a browser build (RFC 7118 client on the page WebSocket)', () => {
  it('the browser condition gives the client alone: no ws package and no Node built-in', async () => {
    const result = await build({
      entryPoints: [fileURLToPath(new URL('./fixtures/browser-entry.ts', import.meta.url))],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((p) => p.endsWith('transport-ws/src/client.ts'))).toBe(true);
    expect(
      inputs.filter(
        (p) => p.includes('node_modules/ws/') || p.endsWith('transport-ws/src/index.ts'),
      ),
    ).toEqual([]);
    const imported = Object.values(result.metafile.inputs).flatMap((i) =>
      i.imports.map((x) => x.path),
    );
    expect(imported.filter((p) => p.startsWith('node:'))).toEqual([]);
    const text = result.outputFiles[0]?.text ?? '';
    expect(text.match(/["']node:[a-z_/]+["']/g) ?? []).toEqual([]);
    expect(text).toContain('WsClientTransport');
  });
});

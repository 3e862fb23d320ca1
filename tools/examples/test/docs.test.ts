import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../..');

/** Every `.ts` file under `dir`, recursively. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(p));
    else if (entry.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('docs/errors.md lists the error codes the packages use', () => {
  const used = new Set<string>();
  for (const pkg of fs.readdirSync(path.join(root, 'packages'))) {
    const src = path.join(root, 'packages', pkg, 'src');
    if (!fs.existsSync(src)) continue;
    for (const file of sources(src))
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/'(SIP_ERR_[A-Z_]+)'/g))
        used.add(m[1] as string);
  }
  const doc = fs.readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/`(SIP_ERR_[A-Z_]+)`/g)].map((m) => m[1] as string));

  it('finds the codes in the sources (the scan works)', () => {
    expect(used.has('SIP_ERR_PARSE_HEADER')).toBe(true);
    expect(used.has('SIP_ERR_TX_TIMEOUT')).toBe(true);
    expect(used.has('SIP_ERR_DUM_STALE_HANDLE')).toBe(true);
  });

  it('every code in the sources has a row', () => {
    expect([...used].filter((c) => !documented.has(c)).sort()).toEqual([]);
  });

  it('every row names a code that exists', () => {
    expect([...documented].filter((c) => !used.has(c)).sort()).toEqual([]);
  });
});

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

/** The documentation pages checked below: docs/*.md and the root README. */
const pages = [
  ...fs
    .readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join(root, 'docs', f)),
  path.join(root, 'README.md'),
];

describe('docs/*.md and the README: every relative link points at a file that exists', () => {
  it('finds the pages and their links (the scan works)', () => {
    const names = pages.map((p) => path.relative(root, p));
    for (const page of [
      'docs/README.md',
      'docs/getting-started.md',
      'docs/dum-concepts.md',
      'docs/custom-transport.md',
      'docs/testing-and-benchmarks.md',
      'docs/errors.md',
      'README.md',
    ])
      expect(names).toContain(page);
    expect(links(path.join(root, 'docs/README.md'))).toContain('errors.md');
  });

  it.each(pages.map((p) => [path.relative(root, p), p]))('%s', (_name, page) => {
    const broken = links(page).filter((target) => {
      const file = decodeURIComponent(target.split('#')[0] as string);
      return file !== '' && !fs.existsSync(path.resolve(path.dirname(page), file));
    });
    expect(broken).toEqual([]);
  });
});

/** The relative targets of a page's Markdown links and images (code blocks left out). */
function links(page: string): string[] {
  const text = fs.readFileSync(page, 'utf8').replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((m) => m[1] as string)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'));
}

describe('the twenty-line examples in the docs are the tested files, verbatim', () => {
  for (const file of ['user-agent.ts', 'registrar.ts']) {
    const code = fs.readFileSync(path.join(root, 'tools/examples/src', file), 'utf8').trimEnd();
    it(`${file} is in docs/getting-started.md and the README`, () => {
      expect(code.split('\n').length).toBeLessThanOrEqual(26);
      for (const page of ['docs/getting-started.md', 'README.md'])
        expect(fs.readFileSync(path.join(root, page), 'utf8')).toContain(
          `\`\`\`ts\n${code}\n\`\`\``,
        );
    });
  }
});

describe('docs/dum-concepts.md lists every callback of each handler interface in packages/dum/src/handlers.ts', () => {
  const source = fs.readFileSync(path.join(root, 'packages/dum/src/handlers.ts'), 'utf8');
  const doc = fs.readFileSync(path.join(root, 'docs/dum-concepts.md'), 'utf8');
  const interfaces = [
    ...source.matchAll(
      /export interface (\w+Handler|RegistrationPersistenceManager) \{(.*?)\n\}/gs,
    ),
  ].map((m) => ({
    name: m[1] as string,
    callbacks: [...(m[2] as string).matchAll(/^ {2}(\w+)\??\(/gm)].map((c) => c[1] as string),
  }));

  it('finds the interfaces (the scan works)', () => {
    expect(interfaces.map((i) => i.name)).toContain('InviteSessionHandler');
    expect(interfaces.find((i) => i.name === 'InviteSessionHandler')?.callbacks).toContain(
      'onReferProgress',
    );
  });

  it.each(interfaces.map((i) => [i.name, i.callbacks]))('%s', (name, callbacks) => {
    const at = doc.indexOf(`### ${name}`);
    expect(at, `a "### ${name}" section`).toBeGreaterThan(0);
    const next = doc.indexOf('\n### ', at + 1);
    const section = doc.slice(at, next === -1 ? undefined : next);
    expect((callbacks as string[]).filter((c) => !section.includes(`\`${c}\``))).toEqual([]);
  });
});

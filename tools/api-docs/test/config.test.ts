/**
 * The TypeDoc configuration of `pnpm run docs` covers the published packages as they export
 * themselves. TypeDoc itself runs in `.ci/run` as its own step after the tests (it takes
 * 15-40 s on a two-core machine, too long for the test suite); this keeps its
 * configuration from drifting away from the packages in between.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const here = path.resolve(import.meta.dirname, '..');
const root = path.resolve(here, '../..');
const config = JSON.parse(fs.readFileSync(path.join(here, 'typedoc.json'), 'utf8')) as {
  entryPoints: string[];
  out: string;
  plugin: string[];
  treatWarningsAsErrors: boolean;
};

/** Every published package's exported source files (exports map, package.json and null entries aside; the `default` of conditional ones). */
function exportedEntries(): string[] {
  const out: string[] = [];
  for (const dir of fs.readdirSync(path.join(root, 'packages'))) {
    const file = path.join(root, 'packages', dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      private?: boolean;
      exports?: Record<string, string | null | Record<string, string>>;
    };
    if (pkg.private) continue;
    for (const [key, value] of Object.entries(pkg.exports ?? {})) {
      // Conditional exports (browser / default): the default one is what Node users get.
      const target = typeof value === 'string' || value === null ? value : value.default;
      if (target && key !== './package.json' && target.endsWith('.ts'))
        out.push(path.join(root, 'packages', dir, target));
    }
  }
  return out.sort();
}

describe('pnpm run docs: the TypeDoc configuration', () => {
  it('documents exactly the entry points the published packages export', () => {
    const configured = config.entryPoints.map((e) => path.resolve(here, e)).sort();
    const exported = exportedEntries();
    expect(exported.length).toBeGreaterThanOrEqual(10);
    expect(configured).toEqual(exported);
    for (const e of configured) expect(fs.existsSync(e), e).toBe(true);
  });

  it('writes to the git-ignored docs/api, fails on warnings, and loads its plugin', () => {
    expect(path.resolve(here, config.out)).toBe(path.join(root, 'docs/api'));
    expect(fs.readFileSync(path.join(root, '.gitignore'), 'utf8')).toMatch(/^docs\/api\/$/m);
    expect(config.treatWarningsAsErrors).toBe(true);
    for (const p of config.plugin) expect(fs.existsSync(path.resolve(here, p))).toBe(true);
  });

  it('is run by `pnpm run docs` at the root and by .ci/run after the tests', () => {
    const scripts = (
      JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    expect(scripts.docs).toBe('pnpm --filter @sipworks/api-docs run docs');
    const ci = fs.readFileSync(path.join(root, '.ci/run'), 'utf8');
    const tests = ci.search(/^bash -c "\$\{TEST_COMMAND\}"$/m);
    expect(tests).toBeGreaterThan(0);
    expect(ci.search(/^pnpm run docs$/m)).toBeGreaterThan(tests);
  });
});

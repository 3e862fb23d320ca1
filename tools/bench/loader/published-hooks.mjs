// The resolve hook behind published.mjs: `@sipworks/NAME[/SUBPATH]` becomes
// packages/NAME/ + the `default` of publishConfig.exports["./SUBPATH" or "."].
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const packages = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../packages');
const cache = new Map();

function exportsOf(name) {
  if (!cache.has(name)) {
    const file = path.join(packages, name, 'package.json');
    const pkg = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
    cache.set(name, pkg?.publishConfig?.exports);
  }
  return cache.get(name);
}

export async function resolve(specifier, context, next) {
  const m = /^@sipworks\/([^/]+)(\/.*)?$/.exec(specifier);
  const exp = m ? exportsOf(m[1]) : undefined;
  if (!m || !exp) return next(specifier, context);
  const entry = exp[m[2] ? `.${m[2]}` : '.'];
  const target = typeof entry === 'string' ? entry : entry?.default;
  if (!target) return next(specifier, context);
  const file = path.join(packages, m[1], target);
  if (!fs.existsSync(file))
    throw new Error(`${specifier}: ${file} is not built; run pnpm build (tsc -b) first`);
  return { url: pathToFileURL(file).href, shortCircuit: true };
}

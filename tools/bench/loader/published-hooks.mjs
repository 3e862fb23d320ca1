// The resolve hook behind published.mjs: `@sipworks/NAME[/SUBPATH]` becomes
// packages/NAME/ + the `default` of publishConfig.exports["./SUBPATH" or "."], and a
// `#SUBPATH` import from a package's compiled files the `default` of its
// publishConfig.imports["#SUBPATH"], as the published package.json maps them.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const packages = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../packages');
const cache = new Map();

function publishConfigOf(name) {
  if (!cache.has(name)) {
    const file = path.join(packages, name, 'package.json');
    const pkg = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
    cache.set(name, pkg?.publishConfig);
  }
  return cache.get(name);
}

function exportsOf(name) {
  return publishConfigOf(name)?.exports;
}

/** `#SUBPATH` from packages/NAME/dist/...: the published imports map's `default` target. */
function resolveImport(specifier, parentURL) {
  if (!parentURL?.startsWith('file:')) return undefined;
  const rel = path.relative(packages, fileURLToPath(parentURL));
  const m = /^([^/\\]+)[/\\]dist[/\\]/.exec(rel);
  const entry = m ? publishConfigOf(m[1])?.imports?.[specifier] : undefined;
  const target = typeof entry === 'string' ? entry : entry?.default;
  return target ? pathToFileURL(path.join(packages, m[1], target)).href : undefined;
}

export async function resolve(specifier, context, next) {
  if (specifier.startsWith('#')) {
    const url = resolveImport(specifier, context.parentURL);
    if (url) return { url, shortCircuit: true };
    return next(specifier, context);
  }
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

// `node --import ./tools/bench/loader/published.mjs ...`: resolve @sipworks/* the way the
// published packages resolve, to the compiled dist/ files their publishConfig exports name,
// instead of the src/*.ts files the workspace links to. The benchmarks run the servers
// (and the memory section) on that compiled code, as users get it from npm.
import { register } from 'node:module';

register('./published-hooks.mjs', import.meta.url);

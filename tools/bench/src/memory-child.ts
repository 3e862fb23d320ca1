/**
 * One case of the memory section in its own process:
 *   node --expose-gc --import ./tools/bench/loader/published.mjs --import tsx \
 *     tools/bench/src/memory-child.ts call|binding COUNT
 * prints the measurement as one JSON line.
 */
import { canCollect } from './harness.ts';
import { measure } from './memory.ts';

const [kind, countText] = process.argv.slice(2);
const count = Number(countText);
if ((kind !== 'call' && kind !== 'binding') || !Number.isInteger(count) || count < 1) {
  console.error('usage: memory-child.ts call|binding COUNT');
  process.exit(2);
}
if (!canCollect()) {
  console.error('memory-child.ts needs node --expose-gc');
  process.exit(2);
}
console.log(JSON.stringify(await measure(kind, count)));
process.exit(0);

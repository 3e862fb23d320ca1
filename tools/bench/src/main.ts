/**
 * `pnpm bench`: runs every benchmark section, or only those named on the
 * command line (`pnpm bench parse`, `pnpm bench transactions`,
 * `pnpm bench transports`).
 *
 * Environment: BENCH_QUICK=1 (short smoke run), BENCH_ROUNDS, BENCH_SLICE_MS,
 * BENCH_RETAIN (see harness.ts).
 */
import { canCollect, configFromEnv, describeConfig, machineInfo, type Section } from './harness.ts';
import { parseSection } from './parse.ts';
import { transactionsSection } from './transactions.ts';
import { transportsSection } from './transports.ts';

const sections: readonly Section[] = [parseSection, transactionsSection, transportsSection];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => a !== '--');
  const unknown = wanted.filter((w) => !sections.some((s) => s.name === w));
  if (unknown.length > 0) {
    console.error(
      `unknown section ${unknown.join(', ')}; sections: ${sections.map((s) => s.name).join(', ')}`,
    );
    process.exitCode = 2;
    return;
  }
  const selected = wanted.length === 0 ? sections : sections.filter((s) => wanted.includes(s.name));
  const config = configFromEnv();

  console.log('sipworks bench');
  for (const line of machineInfo()) console.log(line);
  console.log(describeConfig(config));
  if (!canCollect()) console.log('note: no --expose-gc, so heap is not measured');

  const started = performance.now();
  for (const section of selected) await section.run(config);
  console.log(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await main();

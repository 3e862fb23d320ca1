/**
 * `pnpm bench`: runs every benchmark section, or only those named on the
 * command line (`pnpm bench parse`, `pnpm bench uas register memory`...), and
 * writes what it measured to docs/benchmarks.md (the blocks of the sections
 * that ran; see report.ts).
 *
 * Environment: BENCH_QUICK=1 (short smoke run), BENCH_ROUNDS, BENCH_SLICE_MS,
 * BENCH_RETAIN (see harness.ts); BENCH_LOAD_RATE, BENCH_LOAD_CALLS,
 * BENCH_LOAD_ROUNDS, BENCH_SIPP_PROCS (load.ts); BENCH_MEMORY_COUNTS
 * (memory.ts); BENCH_NO_REPORT=1 leaves docs/benchmarks.md alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { canCollect, configFromEnv, describeConfig, machineInfo, type Section } from './harness.ts';
import { REPO_ROOT } from './load.ts';
import { memorySection } from './memory.ts';
import { parseSection } from './parse.ts';
import { registerSection } from './register.ts';
import { mergeReport, renderBlock, SectionReport } from './report.ts';
import { transactionsSection } from './transactions.ts';
import { transportsSection } from './transports.ts';
import { uasSection } from './uas.ts';

const sections: readonly Section[] = [
  parseSection,
  transactionsSection,
  transportsSection,
  uasSection,
  registerSection,
  memorySection,
];

const REPORT_FILE = path.join(REPO_ROOT, 'docs', 'benchmarks.md');

/** Runs a section with console.log also copied into its report. */
async function runCaptured(
  section: Section,
  report: SectionReport,
  config: ReturnType<typeof configFromEnv>,
): Promise<void> {
  const log = console.log;
  console.log = (...args: unknown[]): void => {
    log(...args);
    report.output.push(args.map(String).join(' '));
  };
  try {
    await section.run(config, report);
  } finally {
    console.log = log;
  }
}

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
  const fresh = new Map<string, string>();
  const commandLine = `pnpm bench${wanted.length > 0 ? ` ${wanted.join(' ')}` : ''}`;
  for (const section of selected) {
    const report = new SectionReport();
    await runCaptured(section, report, config);
    const env = Object.entries(process.env)
      .filter(([k]) => k.startsWith('BENCH_'))
      .map(([k, v]) => `${k}=${v} `)
      .join('');
    fresh.set(
      section.name,
      renderBlock(
        section.name,
        section.title,
        {
          date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
          machine: [...machineInfo(), describeConfig(config)],
          commandLine: `${env}${commandLine}`,
        },
        report,
      ),
    );
  }
  console.log(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (process.env.BENCH_NO_REPORT === '1') return;
  const existing = fs.existsSync(REPORT_FILE) ? fs.readFileSync(REPORT_FILE, 'utf8') : '';
  fs.writeFileSync(
    REPORT_FILE,
    mergeReport(
      existing,
      fresh,
      sections.map((s) => s.name),
    ),
  );
  console.log(`wrote ${path.relative(process.cwd(), REPORT_FILE)}`);
}

await main();

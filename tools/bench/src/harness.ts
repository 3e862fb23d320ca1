/**
 * Shared machinery of the benchmark sections: run configuration, interleaved
 * timing rounds, medians, retained-heap measurement and plain-text tables.
 *
 * The machine this runs on is small and noisy, so no section compares numbers
 * taken minutes apart: every contender runs once per round for the same time
 * slice, the order rotates from round to round, and comparisons are made
 * between contenders of the same round before taking medians.
 */
import os from 'node:os';
import type { SectionReport } from './report.ts';

/** How long and how hard a run measures. */
export interface BenchConfig {
  /** BENCH_QUICK=1: short rounds for a smoke test. */
  readonly quick: boolean;
  /** Measured rounds (BENCH_ROUNDS). */
  readonly rounds: number;
  /** Unmeasured rounds run first so every contender is compiled and warm. */
  readonly warmupRounds: number;
  /** How long each contender runs in one round (BENCH_SLICE_MS). */
  readonly sliceMs: number;
  /** How many results the retained-heap measurement keeps alive (BENCH_RETAIN). */
  readonly retainCount: number;
}

/** A part of the benchmark (parse, transactions, transports...). */
export interface Section {
  readonly name: string;
  readonly title: string;
  /** Prints its tables; sections with targets also hand them to `report` for docs/benchmarks.md. */
  run(config: BenchConfig, report: SectionReport): Promise<void>;
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function configFromEnv(): BenchConfig {
  const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
  return {
    quick,
    rounds: positiveInt('BENCH_ROUNDS', quick ? 3 : 7),
    warmupRounds: 2,
    sliceMs: positiveInt('BENCH_SLICE_MS', quick ? 100 : 300),
    retainCount: positiveInt('BENCH_RETAIN', quick ? 2_000 : 20_000),
  };
}

export function describeConfig(config: BenchConfig): string {
  const mode = config.quick ? 'BENCH_QUICK=1: ' : '';
  return (
    `${mode}${config.rounds} rounds x ${config.sliceMs} ms per contender, ` +
    `${config.warmupRounds} warm-up round${config.warmupRounds === 1 ? '' : 's'}, ` +
    `retained heap over ${config.retainCount.toLocaleString('en-US')} messages`
  );
}

export function machineInfo(): string[] {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown cpu';
  const gib = (os.totalmem() / 2 ** 30).toFixed(1);
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return [
    `cpu: ${model}, ${cpus.length} cores, ${gib} GiB, ${os.platform()} ${os.arch()}`,
    `node ${process.version} (V8 ${process.versions.v8}), load average ${load}`,
  ];
}

// --- garbage collection ----------------------------------------------------

const gcFn: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

/** True when the process runs with --expose-gc. */
export function canCollect(): boolean {
  return gcFn !== undefined;
}

/** A full collection, run twice so objects freed by finalization go too. */
export function collect(): void {
  if (gcFn === undefined) return;
  gcFn();
  gcFn();
}

// --- timing ----------------------------------------------------------------

/**
 * Something timed: `batch()` does a fixed amount of work (`unitsPerBatch`
 * units, e.g. messages parsed) and returns a number derived from everything it
 * read, which the harness accumulates into `sink` so no work can be dropped.
 */
export interface Timed {
  readonly name: string;
  readonly unitsPerBatch: number;
  batch(): number;
}

export interface TimedResult {
  readonly name: string;
  /** Units per second, one entry per measured round, in round order. */
  readonly rates: number[];
  /** Sum of everything `batch()` returned while measured. */
  sink: number;
  /** How many batches ran while measured. */
  batches: number;
}

function runSlice(t: Timed, sliceMs: number): { rate: number; sink: number; batches: number } {
  let sink = 0;
  let batches = 0;
  const start = performance.now();
  const deadline = start + sliceMs;
  let now = start;
  do {
    sink += t.batch();
    batches++;
    now = performance.now();
  } while (now < deadline);
  return { rate: (batches * t.unitsPerBatch * 1000) / (now - start), sink, batches };
}

/**
 * Runs warm-up rounds, then `config.rounds` measured rounds. In round r every
 * contender runs once for `config.sliceMs`, starting with contender r (mod n).
 *
 * No collection is forced between slices: a forced full GC before each slice
 * was measured to slow the next slice far more (up to 5x on 100 ms slices)
 * than the garbage a neighbour leaves behind, which rotation spreads evenly.
 */
export function interleavedRounds(
  contenders: readonly Timed[],
  config: BenchConfig,
  onRound?: (round: number, total: number) => void,
): TimedResult[] {
  const n = contenders.length;
  const results: TimedResult[] = contenders.map((c) => ({
    name: c.name,
    rates: [],
    sink: 0,
    batches: 0,
  }));
  const total = config.warmupRounds + config.rounds;
  for (let round = 0; round < total; round++) {
    const measured = round >= config.warmupRounds;
    for (let k = 0; k < n; k++) {
      const i = (round + k) % n;
      const slice = runSlice(contenders[i], config.sliceMs);
      if (measured) {
        const r = results[i];
        r.rates.push(slice.rate);
        r.sink += slice.sink;
        r.batches += slice.batches;
      }
    }
    onRound?.(round + 1, total);
  }
  return results;
}

/**
 * Something timed whose work completes asynchronously (timers, I/O): `slice`
 * runs it for about `sliceMs` and reports how many units completed in how many
 * milliseconds. Setting up and tearing down around the measured span is the
 * contender's business and is not part of `ms`.
 */
export interface AsyncTimed {
  readonly name: string;
  slice(sliceMs: number): Promise<{ readonly units: number; readonly ms: number }>;
}

export interface AsyncTimedResult {
  readonly name: string;
  /** Units per second, one entry per measured round, in round order. */
  readonly rates: number[];
  /** Units completed while measured. */
  units: number;
}

/** `interleavedRounds` for contenders whose work is asynchronous. */
export async function interleavedRoundsAsync(
  contenders: readonly AsyncTimed[],
  config: BenchConfig,
  onRound?: (round: number, total: number) => void,
): Promise<AsyncTimedResult[]> {
  const n = contenders.length;
  const results: AsyncTimedResult[] = contenders.map((c) => ({
    name: c.name,
    rates: [],
    units: 0,
  }));
  const total = config.warmupRounds + config.rounds;
  for (let round = 0; round < total; round++) {
    const measured = round >= config.warmupRounds;
    for (let k = 0; k < n; k++) {
      const i = (round + k) % n;
      const slice = await contenders[i].slice(config.sliceMs);
      if (measured) {
        const r = results[i];
        r.rates.push((slice.units * 1000) / slice.ms);
        r.units += slice.units;
      }
    }
    onRound?.(round + 1, total);
  }
  return results;
}

// --- statistics ------------------------------------------------------------

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * For each round, `rates[round] / reference(round)`; NaN where the reference
 * is missing. Take the median of the result to compare two contenders.
 */
export function perRoundRatios(
  rates: readonly number[],
  reference: (round: number) => number,
): number[] {
  return rates.map((rate, round) => rate / reference(round));
}

// --- retained heap ---------------------------------------------------------

/** Bytes the process holds: V8 heap plus ArrayBuffer backing stores. */
function heldBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Bytes the process holds now: V8 heap plus ArrayBuffer backing stores. */
export function heldHeapBytes(): number {
  return heldBytes();
}

let keepAlive = 0;

/**
 * Retained bytes per result: all `count` inputs are made first and are part of
 * the "before" snapshot, then every input is consumed and each result is kept
 * in a preallocated array; after a full collection the growth, divided by
 * `count`, is what the results hold beyond their inputs.
 *
 * Returns undefined without --expose-gc.
 */
export function retainedPerResult<I>(
  count: number,
  makeInput: (i: number) => I,
  consume: (input: I) => unknown,
): number | undefined {
  if (!canCollect()) return undefined;
  const inputs: I[] = new Array(count);
  for (let i = 0; i < count; i++) inputs[i] = makeInput(i);
  const results: unknown[] = new Array(count).fill(null);
  collect();
  const before = heldBytes();
  for (let i = 0; i < count; i++) results[i] = consume(inputs[i]);
  collect();
  const after = heldBytes();
  // Touch both arrays after the snapshot so they are live through it.
  keepAlive += results.length + inputs.length + (results[count - 1] === null ? 1 : 0);
  return (after - before) / count;
}

/** Reads the keep-alive counter so it is observable (and not dead code). */
export function keepAliveToken(): number {
  return keepAlive;
}

// --- output ----------------------------------------------------------------

export type Align = 'left' | 'right';

export interface Column {
  readonly title: string;
  readonly align: Align;
}

/** Lays rows out as a plain-text table with a rule under the header. */
export function formatTable(
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
): string {
  const widths = columns.map((c, i) =>
    Math.max(c.title.length, ...rows.map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? '';
        return c.align === 'right' ? cell.padStart(widths[i]) : cell.padEnd(widths[i]);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(columns.map((c) => c.title)), rule, ...rows.map(line)].join('\n');
}

export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '-';
  return Math.round(perSecond).toLocaleString('en-US');
}

export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-';
  if (ratio >= 10) return `${ratio.toFixed(1)}x`;
  if (ratio >= 0.1) return `${ratio.toFixed(2)}x`;
  return `${ratio.toPrecision(2)}x`;
}

/** A rate in few characters: 5,319k, 45.2k, 770. */
export function formatRateShort(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '-';
  if (perSecond >= 100_000) return `${Math.round(perSecond / 1000).toLocaleString('en-US')}k`;
  if (perSecond >= 10_000) return `${(perSecond / 1000).toFixed(1)}k`;
  return Math.round(perSecond).toLocaleString('en-US');
}

/** Bytes per item; within the measurement's noise of zero it prints ~0. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return '-';
  if (Math.abs(bytes) < 16) return '~0';
  return Math.round(bytes).toLocaleString('en-US');
}

export function heading(text: string): string {
  return `\n== ${text} ${'='.repeat(Math.max(3, 76 - text.length))}`;
}

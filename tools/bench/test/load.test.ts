import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  cpuCost,
  cpuSecondsOf,
  describeSipp,
  type LoadResult,
  parseProcStat,
  parseSippStats,
  sippArgs,
  sippDuration,
  summarize,
  sumStats,
} from '../src/load.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
/** A statistics file SIPp 3.6.1 wrote (-trace_stat) for 3,000 calls of `-sn uac`. */
const fixture = fs.readFileSync(path.join(here, 'fixtures', 'sipp-stats.csv'), 'utf8');

/** The fixture with the cells of its last row replaced. */
function withCells(cells: Record<string, string>): string {
  const lines = fixture.trim().split('\n');
  const header = (lines[0] as string).split(';');
  const last = (lines.at(-1) as string).split(';');
  for (const [k, v] of Object.entries(cells)) last[header.indexOf(k)] = v;
  return [...lines.slice(0, -1), last.join(';')].join('\n');
}

describe('CPU accounting from /proc/<pid>/stat (proc(5): utime field 14, stime field 15)', () => {
  it('reads utime and stime after the command name, even one with spaces and parentheses', () => {
    const line =
      '4242 (node (serve) x) S 1 4242 4242 0 -1 4194304 2731 0 0 0 1234 567 0 0 20 0 11 0 9000 1 2 3';
    expect(parseProcStat(line)).toEqual({ user: 1234, system: 567 });
    expect(parseProcStat('7 (sipp) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1')).toEqual({
      user: 5,
      system: 6,
    });
  });

  it('rejects text that is not a stat line', () => {
    expect(() => parseProcStat('no parentheses here')).toThrow(/not a \/proc/);
    expect(() => parseProcStat('1 (x) S 1')).toThrow(/no utime\/stime/);
  });

  it('reads this process, and the figure grows with work done', () => {
    if (process.platform !== 'linux') {
      console.log('skipped: /proc/<pid>/stat exists on Linux only');
      return;
    }
    const before = cpuSecondsOf(process.pid);
    const until = performance.now() + 80;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    expect(cpuSecondsOf(process.pid)).toBeGreaterThan(before);
  });

  it('turns CPU seconds and completed units into seconds per thousand and units per core-second', () => {
    expect(cpuCost(1.5, 3000)).toEqual({ perThousand: 0.5, perCoreSecond: 2000 });
    // Nothing completed, or no tick seen: no figure rather than 0 or Infinity.
    expect(cpuCost(1, 0).perCoreSecond).toBeNaN();
    expect(cpuCost(0, 100).perThousand).toBeNaN();
  });
});

describe("SIPp's statistics file (-trace_stat)", () => {
  it('reads the cumulative counters of the last row of a real file', () => {
    expect(parseSippStats(fixture)).toEqual({
      created: 3000,
      successful: 3000,
      failed: 0,
      retransmissions: 0,
      unexpected: 0,
      elapsedSeconds: 6,
    });
  });

  it('counts failed calls and retransmissions, and reads millisecond durations', () => {
    const stats = parseSippStats(
      withCells({
        'SuccessfulCall(C)': '2990',
        'FailedCall(C)': '10',
        'Retransmissions(C)': '4',
        'FailedUnexpectedMessage(C)': '2',
        'ElapsedTime(C)': '00:01:02:500',
      }),
    );
    expect(stats).toMatchObject({
      successful: 2990,
      failed: 10,
      retransmissions: 4,
      unexpected: 2,
    });
    expect(stats?.elapsedSeconds).toBe(62.5);
    expect(sippDuration('01:00:00')).toBe(3600);
    expect(sippDuration('garbage')).toBeNaN();
  });

  it('has no statistics without a data row', () => {
    expect(parseSippStats(fixture.split('\n')[0] as string)).toBeUndefined();
    expect(parseSippStats('')).toBeUndefined();
  });

  it('adds up processes that ran side by side; elapsed is the longest', () => {
    const a = parseSippStats(fixture);
    const b = parseSippStats(withCells({ 'ElapsedTime(C)': '00:00:09', 'FailedCall(C)': '1' }));
    if (!a || !b) throw new Error('fixture did not parse');
    expect(sumStats([a, b])).toMatchObject({
      created: 6000,
      successful: 6000,
      failed: 1,
      elapsedSeconds: 9,
    });
  });

  it('splits rate and count over the SIPp processes, and describes the command line', () => {
    const load = { scenario: ['-sn', 'uac'], calls: 3000, rate: 600, processes: 2 } as const;
    const args = sippArgs(load, '127.0.0.1:5060', 40000, '/tmp/s.csv');
    expect(args.slice(0, 3)).toEqual(['-sn', 'uac', '127.0.0.1:5060']);
    expect(args[args.indexOf('-r') + 1]).toBe('300');
    expect(args[args.indexOf('-m') + 1]).toBe('1500');
    expect(args[args.indexOf('-stf') + 1]).toBe('/tmp/s.csv');
    expect(describeSipp(load)).toBe('2 x sipp -sn uac 127.0.0.1:PORT -t u1 -r 300 -m 1500');
  });
});

describe('summaries of interleaved load rounds', () => {
  const stats = (successful: number, failed = 0) => ({
    created: successful + failed,
    successful,
    failed,
    retransmissions: 0,
    unexpected: 0,
    elapsedSeconds: successful / 500,
  });
  const target = (name: string) => ({
    name,
    command: name,
    start: () => {
      throw new Error('not started');
    },
  });
  const results: LoadResult[] = [
    {
      target: target('a'),
      rss: 100,
      rounds: [
        { stats: stats(1000), cpuSeconds: 0.5 },
        { stats: stats(1000), cpuSeconds: 0.25 },
        { stats: stats(1000, 2), cpuSeconds: 0.4 },
      ],
    },
    {
      target: target('ref'),
      rss: 50,
      rounds: [
        { stats: stats(1000), cpuSeconds: 1 },
        { stats: stats(1000), cpuSeconds: 1 },
        { stats: stats(1000), cpuSeconds: 0.5 },
      ],
    },
  ];

  it('takes medians over rounds, totals over rounds, and ratios within each round', () => {
    const [a, ref] = summarize(results, 'ref');
    expect(a?.completed).toBe(3000);
    expect(a?.failed).toBe(2);
    expect(a?.perCoreSecond).toBe(2500); // of 2000, 4000, 2500
    expect(a?.cpuPerThousand).toBe(0.4); // of 0.5, 0.25, 0.4
    // Per round: 2x, 4x, 1.25x; the median is 2x, not the ratio of the medians (2500 / 1000).
    expect(a?.ratioToReference).toBe(2);
    expect(ref?.ratioToReference).toBe(1);
    expect(a?.achievedRate).toBe(500);
  });
});

import type { Clock, TimerHandle } from '../clock.ts';

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to: `advance(ms)` runs every timer due, in order
 * of time then of creation. Makes every transaction timer testable without sleeping.
 */
export class VirtualClock implements Clock {
  private t = 0;
  private seq = 0;
  private queue: Entry[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const e: Entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    // Keep the queue sorted (binary insertion).
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.queue[mid] as Entry;
      if (m.at < e.at || (m.at === e.at && m.seq < e.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, e);
    return e;
  }

  clearTimeout(handle: TimerHandle): void {
    const e = handle as Entry;
    if (!e || e.cancelled) return;
    e.cancelled = true;
    const i = this.queue.indexOf(e);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.queue.length;
  }

  /** When the next timer is due, or undefined. */
  get next(): number | undefined {
    return this.queue[0]?.at;
  }

  /** Move time forward by `ms`, running every timer that falls due (at most `limit`). */
  advance(ms: number, limit = 1_000_000): number {
    const end = this.t + ms;
    let ran = 0;
    while (this.queue.length > 0 && (this.queue[0] as Entry).at <= end && ran < limit) {
      const e = this.queue.shift() as Entry;
      this.t = e.at;
      ran++;
      e.fn();
    }
    this.t = end;
    return ran;
  }

  /** Run timers until none is left or `maxMs` of virtual time has passed. */
  runAll(maxMs = 3_600_000, limit = 1_000_000): number {
    const end = this.t + maxMs;
    let ran = 0;
    while (this.queue.length > 0 && (this.queue[0] as Entry).at <= end && ran < limit) {
      const e = this.queue.shift() as Entry;
      this.t = e.at;
      ran++;
      e.fn();
    }
    return ran;
  }
}

/** A timer handle, as returned by a `Clock`. */
export type TimerHandle = unknown;

/**
 * Where the stack gets time from. Every timer of the transaction layer goes through
 * one, so tests can drive time with `VirtualClock` (from `@sipworks/stack/testing`).
 */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `performance.now()` and the host's timers, unref'd so they never keep a process alive. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms) as unknown as { unref?: () => void };
    t.unref?.();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

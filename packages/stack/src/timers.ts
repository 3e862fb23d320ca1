/**
 * Timer values of RFC 3261 §17 (Table 4) and RFC 6026, derived from T1, T2 and T4 of
 * one stack instance.
 */
export interface TimerConfig {
  /** RTT estimate (default 500 ms). */
  t1: number;
  /** Maximum retransmission interval for non-INVITE requests and INVITE responses (default 4 s). */
  t2: number;
  /** Maximum time a message remains in the network (default 5 s). */
  t4: number;
  /** How long an INVITE server transaction waits for the TU before sending 100 Trying (§17.2.1; default 200 ms). */
  trying: number;
}

export const DEFAULT_TIMERS: Readonly<TimerConfig> = Object.freeze({
  t1: 500,
  t2: 4000,
  t4: 5000,
  trying: 200,
});

/** Timer B, F, H, J, L, M: 64*T1. */
export function timeout64(t: TimerConfig): number {
  return 64 * t.t1;
}

/** Timer D: at least 32 s for unreliable transports, 0 for reliable ones. */
export function timerD(t: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : Math.max(32000, 64 * t.t1);
}

/** Timer I and K: T4 for unreliable transports, 0 for reliable ones. */
export function timerT4(t: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : t.t4;
}

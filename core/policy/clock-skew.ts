/**
 * Clock skew between a worker and its database: what comparing the two clocks tells, and what the
 * worker does about it. A lease is written by one worker and judged expired by another, each on
 * its own clock, so two clocks 30 s apart would let one worker take another's live lease, or leave
 * a dead worker's task 30 s longer than its lease. A worker therefore keeps the database's time:
 * its own clock plus the measured offset, once that offset is clearly more than noise. The
 * database is the one clock every worker can read.
 */

/** One reading of the database's clock, between two readings of the worker's own (epoch ms). */
export interface ClockSample {
  sentMs: number;
  serverMs: number;
  receivedMs: number;
}

/** The database's clock minus the worker's, and how far that estimate may be off. */
export interface ClockOffset {
  offsetMs: number;
  /** Half the round trip of the sample it comes from: the server read its clock somewhere inside it. */
  uncertaintyMs: number;
}

/** A worker warns once when its clock and the database's differ by more than this (DECISIONS.md). */
export const SKEW_WARN_MS = 5_000;
/**
 * A worker keeps the database's time when the clocks differ by more than this. Below it the
 * correction is left at zero: leases last many seconds, and a worker on the database's own
 * machine (or on SQLite) would otherwise move its clock by milliseconds of round-trip noise.
 */
export const SKEW_CORRECT_MS = 1_000;
/** How often a worker compares the clocks again: clocks drift, and NTP may step them. */
export const SKEW_CHECK_EVERY_MS = 60_000;
/** Samples per comparison; the one with the shortest round trip counts. */
export const SKEW_SAMPLES = 3;
/** A new measurement replaces the correction in use only when it differs by more than this (round-trip jitter). */
const RECORRECT_MS = 100;

/** The offset from the sample with the shortest round trip; null when no sample is usable. */
export function estimateOffset(samples: readonly ClockSample[]): ClockOffset | null {
  let best: { s: ClockSample; rtt: number } | null = null;
  for (const s of samples) {
    const rtt = s.receivedMs - s.sentMs;
    // A negative round trip: the worker's clock was stepped during the sample.
    if (!Number.isFinite(rtt) || !Number.isFinite(s.serverMs) || rtt < 0) continue;
    if (!best || rtt < best.rtt) best = { s, rtt };
  }
  if (!best) return null;
  return { offsetMs: best.s.serverMs - (best.s.sentMs + best.s.receivedMs) / 2, uncertaintyMs: best.rtt / 2 };
}

/**
 * The offset (ms) the worker adds to its clock after measuring `m`, when `currentMs` is in use.
 * A measurement that agrees with the correction in use, within jitter or within its own
 * uncertainty, keeps it: a slow round trip (a busy pool) tells nothing new, and must not switch
 * a needed correction off. Without a correction, one is taken only when the clocks surely differ
 * by more than SKEW_CORRECT_MS; a correction in use is dropped only when the clocks surely differ
 * by less than half that (two thresholds, so an offset near one second does not flip it on and
 * off), and otherwise follows the measurement.
 */
export function correctionFor(m: ClockOffset, currentMs: number): number {
  if (Math.abs(m.offsetMs - currentMs) <= Math.max(RECORRECT_MS, m.uncertaintyMs)) return currentMs;
  if (currentMs === 0) return Math.abs(m.offsetMs) > SKEW_CORRECT_MS + m.uncertaintyMs ? Math.round(m.offsetMs) : 0;
  if (Math.abs(m.offsetMs) + m.uncertaintyMs < SKEW_CORRECT_MS / 2) return 0;
  return Math.round(m.offsetMs);
}

/** Whether the clocks surely differ by more than SKEW_WARN_MS. */
export function skewWorthWarning(m: ClockOffset): boolean {
  return Math.abs(m.offsetMs) - m.uncertaintyMs > SKEW_WARN_MS;
}

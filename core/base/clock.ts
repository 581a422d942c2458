/**
 * One injectable clock serves every time comparison (DECISIONS.md). Times are epoch milliseconds,
 * which are UTC whatever the process or server time zone.
 */
import { processWide } from './global.js';

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /**
   * True for a clock whose time a test or a simulation sets (ManualClock). A worker never
   * corrects such a clock to the database's time: it stands for no machine's clock.
   */
  readonly simulated?: boolean;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests and simulations. */
export class ManualClock implements Clock {
  readonly simulated = true;
  constructor(private ms: number = Date.UTC(2030, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  set(ms: number | Date): void {
    this.ms = typeof ms === 'number' ? ms : ms.getTime();
  }
  /** Moves the clock forward by `seconds` (fractions allowed). */
  advance(seconds: number): void {
    this.ms += Math.round(seconds * 1000);
  }
}

/**
 * A clock kept on another's time: `base` plus `offsetMs`. A worker keeps its clock on the
 * database's time this way (worker/clock-sync.ts), so that leases written and judged by workers
 * on different machines compare times read from one clock.
 */
export class OffsetClock implements Clock {
  offsetMs = 0;
  constructor(readonly base: Clock) {}
  now(): number {
    return this.base.now() + this.offsetMs;
  }
  get simulated(): boolean {
    return this.base.simulated === true;
  }
}

// The process-wide clock that enqueue and workers use unless given their own.
const state = processWide('clock', () => ({ clock: systemClock as Clock }));

export function currentClock(): Clock {
  return state.clock;
}

/** Replaces the process-wide clock (tests and simulations); `resetClock()` restores the real one. */
export function setClock(clock: Clock): void {
  state.clock = clock;
}

export function resetClock(): void {
  state.clock = systemClock;
}

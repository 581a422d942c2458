/**
 * One injectable clock serves every time comparison (DECISIONS.md). Times are epoch milliseconds,
 * which are UTC whatever the process or server time zone.
 */
import { processWide } from './global.js';

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests and simulations. */
export class ManualClock implements Clock {
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

/**
 * One injectable clock serves every time comparison (DECISIONS.md). Times are epoch milliseconds,
 * which are UTC whatever the process or server time zone.
 */
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

/** The process-wide clock that enqueue and workers use unless given their own. */
import { systemClock, type Clock } from './clock.js';
import { processWide } from './global.js';

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

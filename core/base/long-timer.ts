/**
 * setTimeout for any delay. Node fires a timer of more than 2^31-1 ms (24.8 days) after 1 ms, with
 * a warning: a `--duration` of a month would stop the worker at once, and an idle worker with a
 * long `--sleep` would poll in a busy loop. A longer delay is waited as a chain of shorter timers.
 */

/** The longest delay one Node timer waits. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimer {
  /** Cancels the timer; `fn` will not run. */
  clear(): void;
  /** Lets the process exit while only this timer is pending (like Timeout.unref()). */
  unref(): LongTimer;
}

/**
 * Runs `fn` once after `ms` milliseconds; `Infinity` never fires. `chunkMs` is the longest single
 * timer (tests pass a short one to see the chain work).
 */
export function setLongTimeout(fn: () => void, ms: number, chunkMs = MAX_TIMER_MS): LongTimer {
  let left = Number.isNaN(ms) ? 0 : Math.max(0, ms);
  let timer: NodeJS.Timeout | null = null;
  let unrefd = false;
  let cleared = false;
  const arm = () => {
    const step = Math.min(left, chunkMs);
    left -= step;
    timer = setTimeout(() => {
      if (cleared) return;
      if (left > 0) arm();
      else fn();
    }, step);
    if (unrefd) timer.unref();
  };
  arm();
  const handle: LongTimer = {
    clear() {
      cleared = true;
      if (timer) clearTimeout(timer);
    },
    unref() {
      unrefd = true;
      timer?.unref();
      return handle;
    },
  };
  return handle;
}

/**
 * Periodic full garbage collection for the worker process (`--gc-interval`, default 2 s).
 *
 * A busy worker allocates quickly, and V8 lets the heap (and with it the resident set) grow to a
 * multiple of the live data before it collects the old generation. A collection every couple of
 * seconds while tasks run keeps the resident set at its start-up size (a 10-20 ms pause, well
 * under 1 % of the time). Only the CLI does this: an application that embeds a worker keeps its
 * own heap policy.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Starts collecting every `seconds` while `busy()` reports work since the last collection. */
export function startPeriodicGc(seconds: number, busy: () => number): () => void {
  if (!(seconds > 0)) return () => {};
  // Exposing gc at run time is the documented way for a program to call it without a flag on
  // the node command line (which a `bgtasks` binary cannot choose).
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  if (typeof gc !== 'function') return () => {};
  let lastCount = busy();
  const timer = setInterval(() => {
    const now = busy();
    if (now === lastCount) return; // idle: nothing new to collect
    lastCount = now;
    gc();
  }, seconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}

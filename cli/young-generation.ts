/**
 * The worker process's young generation (V8's two semi-spaces, where short-lived objects live).
 *
 * V8 doubles the young generation of a process that keeps objects alive across scavenges, up to
 * 32 MiB. A busy worker always does (claimed batches, results waiting to be written), so its RSS
 * climbs by some 16 MiB over its first seconds of work for no gain: measured with this project's
 * bench, a worker held at 16 MiB runs 100,000 no-op tasks as fast as one at 32 MiB. Below 16 MiB
 * throughput drops (about 12 % at 2 MiB), so V8 keeps growing it up to that size.
 *
 * The only run-time control V8 offers is its growth factor (`--max-semi-space-size` is read once,
 * when the process starts, and a `bgtasks` binary cannot choose node's command line). Two things
 * undo a setting, both measured: starting a worker thread (tsx's loader, or one started by task
 * code) resets V8's flags, and V8 shrinks the young generation of an idle process. So the keeper
 * decides again after every collection: hold at or above the size, grow below it.
 *
 * No forced collections: measured, a forced full collection every 2 s left more garbage in the
 * old generation, not less (each one promotes everything alive in the young generation then).
 *
 * Only the CLI does this: an application that embeds a worker keeps its own heap policy, and a
 * user who sets a semi-space flag in NODE_OPTIONS or on node's command line keeps theirs.
 */
import v8 from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import { whileThreadsStart } from '../core/base/threads.js';

/** Total young-generation size (both semi-spaces) held once reached. */
export const HOLD_YOUNG_BYTES = 16 * 1024 * 1024;
/** V8's default growth factor of the young generation. */
const V8_DEFAULT_GROWTH = 2;

/** The growth factor to set for a young generation of `youngBytes`. */
export function youngGrowthFactor(youngBytes: number, holdBytes = HOLD_YOUNG_BYTES): number {
  return youngBytes >= holdBytes ? 1 : V8_DEFAULT_GROWTH;
}

/** Node flags that size the young generation (--max-heap-size does too). */
const YOUNG_SIZING = /--(?:(?:max|min)[-_])?semi[-_]space[-_]|--max[-_]heap[-_]size/;

/** Node flags that size V8's heap: the --dev supervisor passes them on to its worker. */
export function isHeapSizeFlag(arg: string): boolean {
  return YOUNG_SIZING.test(arg) || /^--max[-_]old[-_]space[-_]size/.test(arg);
}

/** Whether node was started with a semi-space setting of the user's own (which then wins). */
export function userSizesYoungGeneration(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return execArgv.some((a) => YOUNG_SIZING.test(a)) || YOUNG_SIZING.test(nodeOptions ?? '');
}

export function youngBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** Starts holding the young generation at `holdBytes`; returns the function that stops it. */
export function holdYoungGeneration(holdBytes = HOLD_YOUNG_BYTES): () => void {
  if (userSizesYoungGeneration(process.execArgv, process.env.NODE_OPTIONS)) return () => {};
  const apply = () => v8.setFlagsFromString(`--semi-space-growth-factor=${youngGrowthFactor(youngBytes(), holdBytes)}`);
  apply();
  // V8 resizes the young generation only in a collection: decide again after each one, before
  // the next (a polling timer measured too slow: a process keeping much alive went 4 → 32 MiB
  // between two ticks 100 ms apart).
  const observer = new PerformanceObserver(apply);
  observer.observe({ entryTypes: ['gc'] });
  // And on every turn of the event loop while a thread of the worker (its liveness beat) comes
  // up: making its isolate sets the factor back to 2, and a collection before the observer above
  // could set it again grew the young generation to 32 MiB in 2 of 7 PostgreSQL runs (RSS +16
  // MiB), and still in 1 of 6 when it was set again at the thread's `online` event.
  const offThreads = whileThreadsStart(apply);
  return () => {
    offThreads();
    observer.disconnect();
    v8.setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH}`);
  };
}

/**
 * Times every Store.claim call of the process (the claim is not public, and timing it where the
 * worker calls it is the only way to separate its cost from the rest of a task's cycle).
 */
// Internal on purpose: see above.
import { createWorker, silentLogger } from '../../core/index.js';
import { Store } from '../../core/store/store.js';
import { enqueueDue } from './api.js';
import type { BenchTables } from './databases.js';
import { median } from './stats.js';

type ClaimFn = (...args: unknown[]) => Promise<unknown[]>;

/** Wraps Store.prototype.claim to time every call; `restore()` puts the original back. */
export function timeClaims(who: string): { durations: number[]; restore: () => void } {
  const proto = Store.prototype as unknown as { claim: ClaimFn };
  const original = proto.claim;
  if (typeof original !== 'function') throw new Error(`${who}: Store.prototype.claim is gone — update bench/lib/claim-timer.ts`);
  const durations: number[] = [];
  proto.claim = async function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    try {
      return await original.apply(this, args);
    } finally {
      durations.push(performance.now() - t0);
    }
  };
  return { durations, restore: () => (proto.claim = original) };
}

/** Median claim time (ms) of a worker (concurrency 1, no prefetch) running `m` due tasks, one claim each. */
export async function medianClaimMs(who: string, t: BenchTables, m: number): Promise<number> {
  await enqueueDue(m);
  const timer = timeClaims(who);
  try {
    const worker = createWorker({ concurrency: 1, prefetch: 0, maxTasks: m, sleep: 0.01, logger: silentLogger });
    await worker.start();
    const summary = await worker.done;
    if (summary.succeeded !== m) throw new Error(`${who}: the worker ran ${summary.succeeded} of ${m} tasks`);
  } finally {
    timer.restore();
  }
  await t.knex(t.completed).truncate();
  if (timer.durations.length === 0) throw new Error(`${who}: no claim was timed`);
  return median(timer.durations);
}

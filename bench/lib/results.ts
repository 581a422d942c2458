/** Reading what the workers wrote: the completed rows are the ground truth of every run. */
import type { BenchTables } from './databases.js';

export interface RunWindow {
  completed: number;
  failed: number;
  pending: number;
  /** Epoch ms of the first claim (min started_at) and the last completion (max finished_at). */
  firstClaimMs: number;
  lastFinishMs: number;
}

/** The run's window from the completed rows' timestamps, and what is left pending. */
export async function runWindow(t: BenchTables): Promise<RunWindow> {
  const [row] = (await t
    .knex(t.completed)
    .min({ first: 'started_at' })
    .max({ last: 'finished_at' })
    .count({ n: '*' })) as Array<{ first: unknown; last: unknown; n: unknown }>;
  const failed = await t.count(t.completed, (q) => q.whereNotNull('failed_at'));
  return {
    completed: Number(row?.n ?? 0),
    failed,
    pending: await t.count(t.tasks),
    firstClaimMs: Number(row?.first),
    lastFinishMs: Number(row?.last),
  };
}

/** Throws unless exactly `n` tasks succeeded and none is left: a fast wrong run is no result. */
export function expectAllDone(w: RunWindow, n: number, what: string): void {
  if (w.completed !== n || w.failed !== 0 || w.pending !== 0) {
    throw new Error(`${what}: expected ${n} succeeded and 0 pending, found ${w.completed} completed (${w.failed} failed) and ${w.pending} pending`);
  }
}

/**
 * `runNow(id | ids)`: a READY task whose run time is still ahead (scheduled for later, or waiting
 * out a retry's backoff) becomes due now; one already due is left as it is. The one
 * implementation is store/run-now.ts, shared with `bgtasks run-now` and the dashboard.
 */
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import type { RunNowOutcome, RunNowResult } from '../store/run-now.js';
import type { TaskRef } from '../types.js';
import { checkConnectionOptions, openBackend } from './backend.js';
import { checkTaskId } from './handle.js';

export type { RunNowOutcome, RunNowResult };

type IdLike = string | number | Pick<TaskRef, 'id'>;

const idOf = (v: IdLike): string => checkTaskId(typeof v === 'object' && v !== null ? v.id : v);

/**
 * Makes READY tasks due now. Returns what became of each (`movedToNow`, `alreadyDue`,
 * `notReady` with the task's status, or `changedMeanwhile` when it was claimed or changed between
 * the read and the guarded write). An id that no task has is a TaskNotFoundError, and when a
 * list holds one, nothing is changed.
 */
export async function runNow(target: IdLike, options?: { connection?: string }): Promise<RunNowResult>;
export async function runNow(target: readonly IdLike[], options?: { connection?: string }): Promise<RunNowResult[]>;
export async function runNow(target: IdLike | readonly IdLike[], options: { connection?: string } = {}): Promise<RunNowResult | RunNowResult[]> {
  const list = Array.isArray(target);
  const ids = (list ? (target as readonly IdLike[]) : [target as IdLike]).map(idOf);
  checkConnectionOptions(options, 'runNow() options');
  const backend = await openBackend(await getSettings(), options.connection);
  for (const id of ids) {
    if (!(await backend.find(id))) throw backend.notFound(id);
  }
  const out: RunNowResult[] = [];
  for (const id of ids) out.push(await backend.runNow(id, currentClock().now()));
  return list ? out : out[0]!;
}

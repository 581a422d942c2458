/**
 * "Run now": a READY task whose run time is still ahead (a scheduled task, or one waiting out a
 * retry's backoff) becomes due now. The one implementation behind `runNow()`, `bgtasks run-now`
 * and the dashboard. The write is one statement guarded by the state that was read (id, run
 * time, READY by the lease rule), so a task claimed, moved or finished in between is reported,
 * never changed.
 */
import { pendingStatus } from '../policy/status.js';
import type { Status } from '../types.js';
import { whereReady } from './status-sql.js';
import type { Store } from './store.js';

/**
 * `movedToNow`: its run time is now; `alreadyDue`: it was due already (nothing written);
 * `notReady`: RUNNING, SUCCESSFUL or FAILED (see `status`); `notFound`; `changedMeanwhile`: it
 * changed between the read and the guarded write (nothing written).
 */
export type RunNowOutcome = 'movedToNow' | 'alreadyDue' | 'notReady' | 'notFound' | 'changedMeanwhile';

export interface RunNowResult {
  id: string;
  /** Null when no task has this id. */
  name: string | null;
  outcome: RunNowOutcome;
  /** The status it was read in (null: not found). */
  status: Status | null;
  /** Its run time afterwards (epoch ms), for a pending task. */
  runAt: number | null;
}

export async function runTaskNow(store: Store, id: string, nowMs: number): Promise<RunNowResult> {
  const task = await store.retrying(() => store.findPending(id));
  if (!task) {
    const done = await store.retrying(() => store.findCompleted(id));
    if (!done) return { id, name: null, outcome: 'notFound', status: null, runAt: null };
    return { id, name: done.name, outcome: 'notReady', status: done.failedAt === null ? 'SUCCESSFUL' : 'FAILED', runAt: null };
  }
  const status = pendingStatus(task, nowMs);
  if (status !== 'READY') return { id, name: task.name, outcome: 'notReady', status, runAt: task.runAt };
  if (task.runAt <= nowMs) return { id, name: task.name, outcome: 'alreadyDue', status, runAt: task.runAt };
  const n = await store.retrying(() =>
    whereReady(store.knex(store.tables.tasks).where('id', id).where('run_at', task.runAt), nowMs).update({ run_at: nowMs }),
  );
  if (n === 1) return { id, name: task.name, outcome: 'movedToNow', status, runAt: nowMs };
  return { id, name: task.name, outcome: 'changedMeanwhile', status, runAt: task.runAt };
}

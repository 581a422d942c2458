/**
 * Cancellation. A READY task (also one whose worker's lease has expired) becomes FAILED with a
 * CancelledError at once. A RUNNING task gets a cancel request: its worker sees it at the next
 * heartbeat, aborts the task's signal, and records it FAILED (cancelled) when it stops.
 * Cancelling also ends a repeat chain.
 */
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import { CancelledError, errorRecord, ValidationError, TaskNotFoundError } from '../errors.js';
import { events } from '../base/events.js';
import { checkTaskId } from './results.js';
import type { Store } from '../store/store.js';
import { storeFor } from '../store/open.js';
import type { TaskRef, TaskRow } from '../types.js';

export interface CancelOutcome {
  id: string;
  /** FAILED: cancelled now. RUNNING: the cancel request reaches its worker at its next heartbeat. */
  status: 'FAILED' | 'RUNNING';
}

/** Announces a task cancelled and recorded FAILED just now (the writing statement has committed). */
function failedNow(task: TaskRow, error: CancelledError): CancelOutcome {
  const info = { id: task.id, name: task.name, queue: task.queue, priority: task.priority, attempt: task.attempts, runAt: task.runAt, workerId: task.lockedBy };
  events.emit('task:failed', { ...info, error });
  return { id: task.id, status: 'FAILED' };
}

export async function cancelTask(store: Store, id: string): Promise<CancelOutcome> {
  // A task can be claimed between our read and our write; each write is guarded, so try again.
  for (let i = 0; i < 10; i++) {
    const now = currentClock().now();
    const task = await store.findPending(id);
    if (!task) {
      const done = await store.findCompleted(id);
      if (done) {
        throw new ValidationError(`Task ${done.name} #${id} has already finished (${done.failedAt === null ? 'SUCCESSFUL' : 'FAILED'}); nothing to cancel`);
      }
      throw new TaskNotFoundError(`No task with id ${id} (pending or completed) in ${store.conn.spec.display}`);
    }
    if (task.lockedBy === null) {
      const error = new CancelledError(`Task ${task.name} #${id} was cancelled before it ran`);
      if (await store.failReady(task, now, errorRecord(error, task.attempts, now, null))) return failedNow(task, error);
    } else if (task.lockedUntil !== null && task.lockedUntil <= now) {
      // Its worker's lease has expired (the worker is dead or stalled): there is nobody to hear a
      // request, and the task counts as READY. Fail it now, fenced on that same expired lease.
      const error = new CancelledError(`Task ${task.name} #${id} was cancelled after its worker ${task.lockedBy} lost its lease`);
      const record = errorRecord(error, task.attempts, now, task.lockedBy);
      if (await store.fail(task, { nowMs: now, record, successorAt: null, uncount: false, expiredLeaseBefore: now + 1 })) return failedNow(task, error);
    } else if (await store.requestCancel(task)) {
      return { id, status: 'RUNNING' };
    }
  }
  throw new Error(`Task #${id} changed state ten times while being cancelled; try again`);
}

/** Cancels a task by id (or TaskRef). */
export async function cancel(idOrRef: string | number | Pick<TaskRef, 'id'>, options: { connection?: string } = {}): Promise<CancelOutcome> {
  const id = checkTaskId(typeof idOrRef === 'object' && idOrRef !== null ? idOrRef.id : idOrRef);
  return cancelTask(await storeFor(await getSettings(), options.connection), id);
}

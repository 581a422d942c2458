/**
 * Cancelling one task, the one implementation behind `cancel()`, `bgtasks cancel` and the
 * dashboard. A READY task (also one whose worker's lease has expired) is failed at once with a
 * CancelledError; a RUNNING one gets a cancel request that its worker sees at its next heartbeat.
 * Each write is guarded; a task claimed between the read and the write is read again.
 */
import { currentClock } from '../base/clock.js';
import { events } from '../base/events.js';
import { errorRecord, TaskNotFoundError, ValidationError } from '../errors.js';
import { attemptsRecorded, decideCancelledWhileReady, type FailDecision } from '../policy/transitions.js';
import { hasLiveLease } from '../policy/status.js';
import type { TaskRow } from '../types.js';
import type { Store } from './store.js';

export interface CancelOutcome {
  id: string;
  /** FAILED: cancelled now. RUNNING: the cancel request reaches its worker at its next heartbeat. */
  status: 'FAILED' | 'RUNNING';
}

/** Announces a task cancelled and recorded FAILED just now (the writing statement has committed). */
function failedNow(task: TaskRow, d: FailDecision): CancelOutcome {
  const info = { id: task.id, name: task.name, queue: task.queue, priority: task.priority, attempt: task.attempts, runAt: task.runAt, workerId: task.lockedBy };
  events.emit('task:failed', { ...info, error: d.error });
  return { id: task.id, status: 'FAILED' };
}

export async function cancelTask(store: Store, id: string): Promise<CancelOutcome> {
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
    if (hasLiveLease(task, now)) {
      if (await store.requestCancel(task)) return { id, status: 'RUNNING' };
      continue;
    }
    const d = decideCancelledWhileReady(task);
    const record = errorRecord(d.error, attemptsRecorded(d, task.attempts), now, task.lockedBy);
    if (task.lockedBy === null) {
      if (await store.failReady(task, now, record)) return failedNow(task, d);
    } else {
      // Its worker's lease has expired (the worker is dead or stalled): fail it now, fenced on
      // that same expired lease.
      const ok = await store.fail(task, { nowMs: now, record, successorAt: null, attempts: attemptsRecorded(d, task.attempts), expiredLeaseBefore: now + 1 });
      if (ok) return failedNow(task, d);
    }
  }
  throw new Error(`Task #${id} changed state ten times while being cancelled; try again`);
}

/**
 * State transitions as a pure function: given a claimed task and how its attempt ended, what the
 * settle must write. The store carries the decision out as one guarded transaction.
 */
import { CancelledError, TooManySnoozesError } from '../errors.js';
import { backoffSeconds } from './backoff.js';
import { isRecurring, nextSlot, type Recurrence } from './recurrence.js';

/** How one attempt ended (the executor's verdict). */
export type Execution =
  | { kind: 'success'; returnJson: string | null }
  /** The task threw (or returned something that is not JSON: then `permanent`). */
  | { kind: 'error'; error: unknown; permanent: boolean }
  /** maxRunTime passed; counts as a failed attempt. */
  | { kind: 'timeout'; error: unknown }
  /** cancel() was called while it ran. */
  | { kind: 'cancelled'; error: unknown }
  /** The worker stopped it: released with the attempt given back (graceful stop). */
  | { kind: 'released' }
  /** The task asked to run again later (ctx.snooze or a returned Snooze). */
  | { kind: 'snoozed'; seconds: number }
  /** Not run: its `expiresAfter` had passed when it was claimed. */
  | { kind: 'expired'; error: unknown }
  /** The worker lost the lease; another worker owns the task now, so nothing may be written. */
  | { kind: 'lease-lost' };

export type Decision =
  | { type: 'complete'; successorAt: number | null }
  | { type: 'retry'; runAt: number; error: unknown }
  /** `uncount`: the attempt counted at claim never ran, so the record gives it back. */
  | { type: 'fail'; error: unknown; successorAt: number | null; uncount: boolean }
  | { type: 'release' }
  /** Back to READY at `runAt`, the attempt given back, one more snooze counted. */
  | { type: 'snooze'; runAt: number }
  | { type: 'none' };

/** A failure for good, as every `fail` decision is. */
export type FailDecision = Extract<Decision, { type: 'fail' }>;

export interface TaskState {
  attempts: number;
  /** Times it snoozed so far (absent: none). */
  snoozes?: number;
  scheduledAt: number;
  recurrence: Recurrence;
  repeatOnFailure: boolean;
}

export interface DecideContext {
  nowMs: number;
  /** The effective limit: call site > definition > settings. */
  maxAttempts: number;
  /** Snoozes a task may take (the `maxSnoozes` setting); absent: no limit. */
  maxSnoozes?: number;
}

export function decide(task: TaskState, execution: Execution, ctx: DecideContext): Decision {
  const successor = (): number | null =>
    isRecurring(task.recurrence) ? nextSlot(task.recurrence, task.scheduledAt, ctx.nowMs) : null;
  switch (execution.kind) {
    case 'success':
      return { type: 'complete', successorAt: successor() };
    case 'released':
      return { type: 'release' };
    case 'snoozed': {
      if ((task.snoozes ?? 0) >= (ctx.maxSnoozes ?? Infinity)) {
        const error = new TooManySnoozesError(`the task snoozed ${task.snoozes} times, the most the maxSnoozes setting allows`);
        return { type: 'fail', error, successorAt: task.repeatOnFailure ? successor() : null, uncount: true };
      }
      return { type: 'snooze', runAt: ctx.nowMs + Math.round(execution.seconds * 1000) };
    }
    case 'lease-lost':
      return { type: 'none' };
    case 'cancelled':
      // Cancelling is an operator's decision to stop this task, and with it its repeat chain.
      return { type: 'fail', error: execution.error, successorAt: null, uncount: false };
    case 'expired':
      return { type: 'fail', error: execution.error, successorAt: task.repeatOnFailure ? successor() : null, uncount: true };
    case 'error':
    case 'timeout': {
      const permanent = execution.kind === 'error' && execution.permanent;
      const next = successor();
      const failForGood = (): Decision => ({
        type: 'fail',
        error: execution.error,
        successorAt: task.repeatOnFailure ? next : null,
        uncount: false,
      });
      if (permanent || task.attempts >= ctx.maxAttempts) return failForGood();
      const runAt = ctx.nowMs + backoffSeconds(task.attempts) * 1000;
      // A recurring task retries only until its next slot is due; then that slot takes over.
      if (next !== null && runAt >= next) return failForGood();
      return { type: 'retry', runAt, error: execution.error };
    }
  }
}

/**
 * A task whose lease expired (its worker died or stalled): the lost run keeps its attempt, and the
 * task is ready at once (no backoff: the failure was the worker's), or failed for good when its
 * attempts are used up, so a task that kills its worker every time cannot loop for ever.
 */
export function decideExpiredLease(task: TaskState & { cancelRequested?: boolean }, ctx: DecideContext, error: Error): Decision {
  // A cancellation requested of a task whose worker then died is honoured here.
  if (task.cancelRequested) return { type: 'fail', error: new CancelledError(`the task was cancelled; ${error.message}`), successorAt: null, uncount: false };
  if (task.attempts >= ctx.maxAttempts) {
    const next = isRecurring(task.recurrence) && task.repeatOnFailure ? nextSlot(task.recurrence, task.scheduledAt, ctx.nowMs) : null;
    return { type: 'fail', error, successorAt: next, uncount: false };
  }
  return { type: 'retry', runAt: ctx.nowMs, error };
}

/**
 * The attempt count a failure records: the attempt counted at claim is given back (`uncount`)
 * when the attempt never ran (expired before it started, cancelled while prefetched).
 */
export function attemptsRecorded(d: FailDecision, attempts: number): number {
  return d.uncount ? Math.max(0, attempts - 1) : attempts;
}

/**
 * A failed attempt whose retry found a cancel request: the cancellation wins over the retry, and
 * the task fails for good (ending a repeat chain, as every cancellation does).
 */
export function decideCancelWinsOverRetry(attempts: number, attemptError: unknown): FailDecision {
  const why = String((attemptError as Error)?.message ?? attemptError);
  const error = new CancelledError(`the task was cancelled (its attempt ${attempts} had failed: ${why})`);
  return { type: 'fail', error, successorAt: null, uncount: false };
}

/** A claimed task cancelled before it started (prefetched by a worker): its attempt never ran. */
export function decideCancelledBeforeStart(task: { id: string; name: string }): FailDecision {
  return { type: 'fail', error: new CancelledError(`Task ${task.name} #${task.id} was cancelled before it started`), successorAt: null, uncount: true };
}

/**
 * A READY task cancelled by an operator: never claimed, or claimed by a worker whose lease has
 * expired (nobody would hear a request). It fails at once; its attempts stay as they are.
 */
export function decideCancelledWhileReady(task: { id: string; name: string; lockedBy: string | null }): FailDecision {
  const error =
    task.lockedBy === null
      ? new CancelledError(`Task ${task.name} #${task.id} was cancelled before it ran`)
      : new CancelledError(`Task ${task.name} #${task.id} was cancelled after its worker ${task.lockedBy} lost its lease`);
  return { type: 'fail', error, successorAt: null, uncount: false };
}

/**
 * An attempt whose result or error record the database refused to store (too large for it, or a
 * value it cannot hold): the task fails for good with the refusal as its error, since another run
 * would end the same way. A repeating task goes on as after any failure for good: only with
 * `repeatOnFailure`. A decision that was already a failure keeps its successor and attempt count.
 */
export function decideRecordRefused(task: TaskState, d: Decision, error: unknown, ctx: { nowMs: number }): FailDecision {
  if (d.type === 'fail') return { type: 'fail', error, successorAt: d.successorAt, uncount: d.uncount };
  if (!task.repeatOnFailure) return { type: 'fail', error, successorAt: null, uncount: false };
  const successorAt = d.type === 'complete' ? d.successorAt : isRecurring(task.recurrence) ? nextSlot(task.recurrence, task.scheduledAt, ctx.nowMs) : null;
  return { type: 'fail', error, successorAt, uncount: false };
}

/**
 * A task as the API shows it (DEP 0014's TaskResult, with the reference's fields), built from its
 * row in the pending or the completed table, or from a test mode's memory record.
 */
import { TaskFailedError, TaskNotFinishedError } from '../errors.js';
import { pendingStatus } from '../policy/status.js';
import type { CompletedRow, Creator, ErrorRecord, Json, TaskRow } from '../types.js';
import type { TaskError, TaskResult } from './handle.js';

function toTaskError(e: ErrorRecord): TaskError {
  return { exceptionClass: e.class, message: e.message, traceback: e.stack, attempt: e.attempt, at: new Date(e.at), workerId: e.workerId };
}

function creatorOf(type: string | null, id: string | null): Creator | null {
  return type === null ? null : { type, id: id ?? '' };
}

class Result<R> implements TaskResult<R> {
  readonly isFinished: boolean;
  constructor(
    private readonly data: Omit<TaskResult<R>, 'returnValue' | 'refresh' | 'isFinished'> & { returnJson: string | null },
    private readonly reload: () => Promise<TaskResult<R>>,
  ) {
    this.isFinished = data.status === 'SUCCESSFUL' || data.status === 'FAILED';
  }
  get id() { return this.data.id; }
  get name() { return this.data.name; }
  get status() { return this.data.status; }
  get args() { return this.data.args; }
  get queue() { return this.data.queue; }
  get priority() { return this.data.priority; }
  get attempts() { return this.data.attempts; }
  get enqueuedAt() { return this.data.enqueuedAt; }
  get runAt() { return this.data.runAt; }
  get scheduledAt() { return this.data.scheduledAt; }
  get startedAt() { return this.data.startedAt; }
  get finishedAt() { return this.data.finishedAt; }
  get workerId() { return this.data.workerId; }
  get errors() { return this.data.errors; }
  get hasError() { return this.data.hasError; }
  get verboseName() { return this.data.verboseName; }
  get creator() { return this.data.creator; }
  get returnValue(): R {
    if (this.data.status === 'FAILED') {
      const last = this.data.errors.at(-1);
      const why = last ? ` (last error: ${last.exceptionClass}: ${String(last.message ?? '').split('\n')[0]!.slice(0, 200)})` : '';
      throw new TaskFailedError(`Task ${this.data.name} #${this.data.id}: task failed${why} — see its errors`);
    }
    if (this.data.status !== 'SUCCESSFUL') throw new TaskNotFinishedError(`Task ${this.data.name} #${this.data.id}: task has not finished yet (status ${this.data.status})`);
    return (this.data.returnJson === null ? undefined : JSON.parse(this.data.returnJson)) as R;
  }
  refresh(): Promise<TaskResult<R>> {
    return this.reload();
  }
  toJSON() {
    const { returnJson, ...rest } = this.data;
    return { ...rest, isFinished: this.isFinished, returnValue: returnJson === null ? null : (JSON.parse(returnJson) as Json) };
  }
}

export function resultOfPending<R>(t: TaskRow, nowMs: number, reload: () => Promise<TaskResult<R>>): TaskResult<R> {
  const status = pendingStatus(t, nowMs);
  return new Result<R>(
    {
      id: t.id,
      name: t.name,
      status,
      args: JSON.parse(t.args) as Json[],
      queue: t.queue,
      priority: t.priority,
      attempts: t.attempts,
      enqueuedAt: new Date(t.enqueuedAt),
      runAt: new Date(t.runAt),
      scheduledAt: new Date(t.scheduledAt),
      startedAt: status === 'RUNNING' && t.lockedAt !== null ? new Date(t.lockedAt) : null,
      finishedAt: null,
      workerId: status === 'RUNNING' ? t.lockedBy : null,
      errors: t.errors.map(toTaskError),
      hasError: t.lastError !== null,
      verboseName: t.verboseName,
      creator: creatorOf(t.creatorType, t.creatorId),
      returnJson: null,
    },
    reload,
  );
}

export function resultOfCompleted<R>(c: CompletedRow, reload: () => Promise<TaskResult<R>>): TaskResult<R> {
  return new Result<R>(
    {
      id: c.taskId,
      name: c.name,
      status: c.failedAt === null ? 'SUCCESSFUL' : 'FAILED',
      args: JSON.parse(c.args) as Json[],
      queue: c.queue,
      priority: c.priority,
      attempts: c.attempts,
      enqueuedAt: new Date(c.enqueuedAt),
      runAt: new Date(c.runAt),
      scheduledAt: new Date(c.scheduledAt),
      startedAt: c.startedAt === null ? null : new Date(c.startedAt),
      finishedAt: new Date(c.finishedAt),
      workerId: c.workerId,
      errors: c.errors.map(toTaskError),
      hasError: c.lastError !== null,
      verboseName: c.verboseName,
      creator: creatorOf(c.creatorType, c.creatorId),
      returnJson: c.returnValue,
    },
    reload,
  );
}

/** The result of a task found by id: pending, or finished. */
export function resultOf<R>(found: { pending: TaskRow | null; completed: CompletedRow | null }, nowMs: number, reload: () => Promise<TaskResult<R>>): TaskResult<R> {
  return found.pending ? resultOfPending<R>(found.pending, nowMs, reload) : resultOfCompleted<R>(found.completed!, reload);
}

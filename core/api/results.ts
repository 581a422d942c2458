/**
 * Results: what a task is and did, found by its id in the pending table or, once it finished, in
 * the completed table (DEP 0014's TaskResult, with the reference's fields).
 */
import { currentClock } from '../base/clock.js';
import { getSettings } from '../config/settings.js';
import { TaskFailedError, TaskNotFinishedError, TaskNotFoundError, ValidationError, WaitTimeoutError } from '../errors.js';
import type { Store } from '../store/store.js';
import { storeFor } from '../store/open.js';
import type { CompletedRow, Creator, ErrorRecord, Json, Status, TaskRef, TaskRow } from '../types.js';
import type { TaskHandle } from './enqueue.js';

/** A TaskHandle's connection name (a symbol, so it stays out of the ref's fields and JSON). */
export const HANDLE_CONNECTION = Symbol.for('bgtasks.handleConnection');

/** One failed attempt as a result shows it. */
export interface TaskError {
  /** The error's class name. */
  exceptionClass: string;
  message: string;
  /** The stack and its `cause` chain. */
  traceback: string;
  attempt: number;
  at: Date;
  workerId: string | null;
}

export interface TaskResult<R = unknown> {
  readonly id: string;
  readonly name: string;
  readonly status: Status;
  readonly args: Json[];
  readonly queue: string | null;
  readonly priority: number;
  readonly attempts: number;
  readonly enqueuedAt: Date;
  /** When it runs (or ran) next: retries move it. */
  readonly runAt: Date;
  /** The slot it was scheduled for (a recurrence's successor is computed from it). */
  readonly scheduledAt: Date;
  /** When the current (or last) attempt started. */
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  /** The worker running it (RUNNING), or the one that finished it. */
  readonly workerId: string | null;
  /** The kept failed attempts, oldest first. */
  readonly errors: TaskError[];
  /** True when some attempt failed, even if a later one succeeded (the reference's has_error). */
  readonly hasError: boolean;
  readonly verboseName: string | null;
  readonly creator: Creator | null;
  readonly isFinished: boolean;
  /** The return value; throws TaskNotFinishedError before the end and TaskFailedError after a failure. */
  readonly returnValue: R;
  /** The same task, read again from the database. */
  refresh(): Promise<TaskResult<R>>;
}

/** Task ids are positive integers (as strings); anything else cannot exist. */
export function checkTaskId(id: unknown): string {
  const s = typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : id;
  if (typeof s !== 'string' || !/^[1-9][0-9]{0,18}$/.test(s)) {
    throw new TaskNotFoundError(`Invalid task id ${JSON.stringify(id)} — expected a positive integer id such as "42"`);
  }
  return s;
}

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

/** The status of a pending row: RUNNING only under a live lease. */
export function pendingStatus(t: TaskRow, nowMs: number): Status {
  return t.lockedBy !== null && t.lockedUntil !== null && t.lockedUntil > nowMs ? 'RUNNING' : 'READY';
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

/** Reads a task from a store: pending first, then completed. */
export async function readResult<R = unknown>(store: Store, id: string): Promise<TaskResult<R>> {
  const reload = () => readResult<R>(store, id);
  // The completed row is written in the same transaction that deletes the pending one, so
  // reading pending first can miss a task only if it finished in between: read completed then.
  const pending = await store.findPending(id);
  if (pending) return resultOfPending<R>(pending, currentClock().now(), reload);
  const done = await store.findCompleted(id);
  if (done) return resultOfCompleted<R>(done, reload);
  throw new TaskNotFoundError(`No task with id ${id} (pending or completed) in ${store.conn.spec.display}`);
}

/** The result of the task with this id (a TaskRef or its id). */
export async function getResult<R = unknown>(
  idOrRef: TaskHandle<R> | string | number | Pick<TaskRef, 'id'>,
  options: { connection?: string } = {},
): Promise<TaskResult<R>> {
  const id = checkTaskId(typeof idOrRef === 'object' && idOrRef !== null ? idOrRef.id : idOrRef);
  // A handle knows the connection that holds its task.
  const connection = options.connection ?? (idOrRef as { [HANDLE_CONNECTION]?: string } | null)?.[HANDLE_CONNECTION];
  options = { ...options, connection };
  const settings = await getSettings();
  if (settings.mode !== 'normal') {
    const { findMemoryResult } = await import('./test-modes.js');
    const found = findMemoryResult(id);
    if (found) return found as TaskResult<R>;
    throw new TaskNotFoundError(`No task with id ${id} was recorded in ${settings.mode} mode`);
  }
  return readResult<R>(await storeFor(settings, options.connection), id);
}

/**
 * Polls until the task has finished (SUCCESSFUL or FAILED); for scripts and tests. `timeout` and
 * `interval` are seconds (DECISIONS.md: user-facing durations are seconds); `timeoutMs` and
 * `intervalMs` are accepted too.
 */
export async function waitFor<R = unknown>(
  idOrRef: TaskHandle<R> | string | number | Pick<TaskRef, 'id'>,
  options: { timeout?: number; interval?: number; timeoutMs?: number; intervalMs?: number; connection?: string } = {},
): Promise<TaskResult<R>> {
  const timeoutMs = options.timeoutMs ?? (options.timeout ?? 30) * 1000;
  const intervalMs = options.intervalMs ?? (options.interval ?? 0.1) * 1000;
  if (!(timeoutMs > 0) || !(intervalMs > 0) || !Number.isFinite(timeoutMs) || !Number.isFinite(intervalMs)) {
    throw new ValidationError('waitFor: timeout and interval must be finite numbers of seconds > 0');
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await getResult<R>(idOrRef, options);
    if (r.isFinished) return r;
    if (Date.now() + intervalMs > deadline) {
      throw new WaitTimeoutError(`Task ${r.name} #${r.id} had not finished after ${timeoutMs / 1000} s (status ${r.status})`);
    }
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}

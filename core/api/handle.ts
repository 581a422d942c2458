/**
 * The client side's shared types, a leaf that imports nothing of the api room: what an enqueue
 * returns (TaskHandle), what reading a task gives (TaskResult), and the id check. Enqueue,
 * results, queries and the test modes all use them, so none of those needs another.
 */
import { isTaskIdText, MAX_TASK_ID } from '../base/task-id.js';
import { TaskNotFoundError } from '../errors.js';
import type { Creator, Json, Status, TaskError, TaskRef, UnreadableFields } from '../types.js';

export type { TaskError, UnreadableFields, UnreadableText } from '../types.js';

/** A TaskHandle's connection name (a symbol, so it stays out of the ref's fields and JSON). */
export const HANDLE_CONNECTION = Symbol.for('bgtasks.handleConnection');

export interface TaskResult<R = unknown> {
  readonly id: string;
  readonly name: string;
  readonly status: Status;
  /** The arguments; throws CorruptDataError when the stored text cannot be read (see `unreadable`). */
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
  /** The kept failed attempts, oldest first; throws CorruptDataError when the stored history cannot be read. */
  readonly errors: TaskError[];
  /** True when some attempt failed, even if a later one succeeded (the reference's has_error). */
  readonly hasError: boolean;
  readonly verboseName: string | null;
  readonly creator: Creator | null;
  readonly isFinished: boolean;
  /**
   * The return value; throws TaskNotFinishedError before the end, TaskFailedError after a failure,
   * and CorruptDataError when the stored text cannot be read.
   */
  readonly returnValue: R;
  /**
   * The fields whose stored text cannot be read back (another program or a hand edit stored it),
   * each with its text and why; null for a task whose fields all read. Never throws.
   */
  readonly unreadable: UnreadableFields | null;
  /** The same task, read again from the database. */
  refresh(): Promise<TaskResult<R>>;
}

/** Task ids are positive integers (as strings) in the databases' id range; anything else cannot exist. */
export function checkTaskId(id: unknown): string {
  const s = typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : id;
  if (typeof s !== 'string' || !isTaskIdText(s)) {
    throw new TaskNotFoundError(`Invalid task id ${JSON.stringify(id)} — expected a positive integer id such as "42" (at most ${MAX_TASK_ID})`);
  }
  return s;
}

/** A TaskRef that can also read its result back (`refresh()`). */
export interface TaskHandle<R = unknown> extends TaskRef {
  refresh(): Promise<TaskResult<R>>;
}

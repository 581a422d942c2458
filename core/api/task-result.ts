/**
 * A task as the API shows it (DEP 0014's TaskResult, with the reference's fields), built from its
 * row in the pending or the completed table, or from a test mode's memory record.
 *
 * A stored text that cannot be read back (arguments, return value or error history written by
 * another program or by hand) never breaks building a result, so one such row cannot break a
 * listing: reading that field throws CorruptDataError, `unreadable` says which fields without
 * throwing, and toJSON() gives the field as null next to `unreadable`.
 */
import { CorruptDataError, TaskFailedError, TaskNotFinishedError, taskErrorOf } from '../errors.js';
import { pendingStatus } from '../policy/status.js';
import { readArgs, readReturnValue } from '../store/rows.js';
import type { CompletedRow, Creator, Json, Status, StoredTask, TaskError, TaskRow, UnreadableFields, UnreadableText } from '../types.js';
import type { TaskResult } from './handle.js';

function creatorOf(type: string | null, id: string | null): Creator | null {
  return type === null ? null : { type, id: id ?? '' };
}

/** What a result holds: the row's fields, with the JSON texts still as stored. */
interface ResultData {
  id: string;
  name: string;
  status: Status;
  queue: string | null;
  priority: number;
  attempts: number;
  enqueuedAt: Date;
  runAt: Date;
  scheduledAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  workerId: string | null;
  hasError: boolean;
  verboseName: string | null;
  creator: Creator | null;
  argsText: string;
  errors: TaskError[];
  errorsUnreadable: UnreadableText | null;
  returnJson: string | null;
}

const FIELD_WORDS: Record<keyof UnreadableFields, string> = {
  args: 'arguments are',
  returnValue: 'return value is',
  errors: 'error history is',
};

const unreadableText = (r: { value: unknown } | UnreadableText): UnreadableText | null => ('value' in r ? null : r);

class Result<R> implements TaskResult<R> {
  readonly isFinished: boolean;
  private readonly argsRead: { value: Json[] } | UnreadableText;
  /** Parsed on first use: a listing need not parse every return value. */
  private returnRead: { value: Json | undefined } | UnreadableText | undefined;

  constructor(
    private readonly data: ResultData,
    private readonly reload: () => Promise<TaskResult<R>>,
  ) {
    this.isFinished = data.status === 'SUCCESSFUL' || data.status === 'FAILED';
    this.argsRead = readArgs(data.argsText);
  }
  get id() { return this.data.id; }
  get name() { return this.data.name; }
  get status() { return this.data.status; }
  get args(): Json[] {
    if ('value' in this.argsRead) return this.argsRead.value;
    throw this.corrupt('args', this.argsRead);
  }
  get queue() { return this.data.queue; }
  get priority() { return this.data.priority; }
  get attempts() { return this.data.attempts; }
  get enqueuedAt() { return this.data.enqueuedAt; }
  get runAt() { return this.data.runAt; }
  get scheduledAt() { return this.data.scheduledAt; }
  get startedAt() { return this.data.startedAt; }
  get finishedAt() { return this.data.finishedAt; }
  get workerId() { return this.data.workerId; }
  get errors(): TaskError[] {
    if (this.data.errorsUnreadable) throw this.corrupt('errors', this.data.errorsUnreadable);
    return this.data.errors;
  }
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
    const read = this.readReturn();
    if ('value' in read) return read.value as R;
    throw this.corrupt('returnValue', read);
  }
  get unreadable(): UnreadableFields | null {
    const args = unreadableText(this.argsRead);
    const returnValue = unreadableText(this.readReturn());
    const errors = this.data.errorsUnreadable;
    if (!args && !returnValue && !errors) return null;
    return { ...(args ? { args } : {}), ...(returnValue ? { returnValue } : {}), ...(errors ? { errors } : {}) };
  }
  refresh(): Promise<TaskResult<R>> {
    return this.reload();
  }
  toJSON() {
    const d = this.data;
    const read = this.readReturn();
    return {
      id: d.id,
      name: d.name,
      status: d.status,
      args: 'value' in this.argsRead ? this.argsRead.value : null,
      queue: d.queue,
      priority: d.priority,
      attempts: d.attempts,
      enqueuedAt: d.enqueuedAt,
      runAt: d.runAt,
      scheduledAt: d.scheduledAt,
      startedAt: d.startedAt,
      finishedAt: d.finishedAt,
      workerId: d.workerId,
      errors: d.errorsUnreadable ? null : d.errors,
      hasError: d.hasError,
      verboseName: d.verboseName,
      creator: d.creator,
      isFinished: this.isFinished,
      returnValue: 'value' in read ? (read.value ?? null) : null,
      unreadable: this.unreadable,
    };
  }

  private readReturn(): { value: Json | undefined } | UnreadableText {
    return (this.returnRead ??= readReturnValue(this.data.returnJson));
  }

  private corrupt(field: keyof UnreadableFields, u: UnreadableText): CorruptDataError {
    const detail = u.parseError ? ` (${u.parseError})` : '';
    return new CorruptDataError(
      `Task ${this.data.name} #${this.data.id}: its stored ${FIELD_WORDS[field]} ${u.reason}${detail}; the text as stored is in unreadable.${field}.text`,
    );
  }
}

/** The fields both tables share, as a result holds them. */
function storedData(t: StoredTask) {
  return {
    name: t.name,
    queue: t.queue,
    priority: t.priority,
    attempts: t.attempts,
    enqueuedAt: new Date(t.enqueuedAt),
    runAt: new Date(t.runAt),
    scheduledAt: new Date(t.scheduledAt),
    hasError: t.lastError !== null,
    verboseName: t.verboseName,
    creator: creatorOf(t.creatorType, t.creatorId),
    argsText: t.args,
    errors: t.errors.map(taskErrorOf),
    errorsUnreadable: t.errorsUnreadable ?? null,
  };
}

export function resultOfPending<R>(t: TaskRow, nowMs: number, reload: () => Promise<TaskResult<R>>): TaskResult<R> {
  const status = pendingStatus(t, nowMs);
  return new Result<R>(
    {
      ...storedData(t),
      id: t.id,
      status,
      startedAt: status === 'RUNNING' && t.lockedAt !== null ? new Date(t.lockedAt) : null,
      finishedAt: null,
      workerId: status === 'RUNNING' ? t.lockedBy : null,
      returnJson: null,
    },
    reload,
  );
}

export function resultOfCompleted<R>(c: CompletedRow, reload: () => Promise<TaskResult<R>>): TaskResult<R> {
  return new Result<R>(
    {
      ...storedData(c),
      id: c.taskId,
      status: c.failedAt === null ? 'SUCCESSFUL' : 'FAILED',
      startedAt: c.startedAt === null ? null : new Date(c.startedAt),
      finishedAt: new Date(c.finishedAt),
      workerId: c.workerId,
      returnJson: c.returnValue,
    },
    reload,
  );
}

/** The result of a task found by id: pending, or finished. */
export function resultOf<R>(found: { pending: TaskRow | null; completed: CompletedRow | null }, nowMs: number, reload: () => Promise<TaskResult<R>>): TaskResult<R> {
  return found.pending ? resultOfPending<R>(found.pending, nowMs, reload) : resultOfCompleted<R>(found.completed!, reload);
}

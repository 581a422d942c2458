/**
 * One task's full record, as `bgtasks show` prints it: everything the pending or the completed
 * table holds about it, with times as Dates and JSON texts parsed. A text that cannot be read back
 * (stored by another program or by hand) is null, with the text and why in `unreadable`.
 */
import { notFound } from './admin.js';
import { taskErrorOf } from '../errors.js';
import { pendingStatus } from '../policy/status.js';
import { readArgs, readReturnValue } from './rows.js';
import type { Store } from './store.js';
import type { CompletedRow, Creator, ErrorRecord, Json, Status, StoredTask, TaskError, TaskRow, UnreadableFields, UnreadableText } from '../types.js';

/**
 * One failed attempt: the TaskError of the API, plus the names `show --json` gave before
 * (`class`, `stack`), kept for one release as deprecated copies.
 */
export interface TaskErrorDetail extends TaskError {
  /** @deprecated Use `exceptionClass` (the same text); removed in the next minor release. */
  class: string;
  /** @deprecated Use `traceback` (the same text); removed in the next minor release. */
  stack: string;
}

/** Everything stored about one task (the `bgtasks show` record). */
export interface TaskDetail {
  id: string;
  name: string;
  status: Status;
  verboseName: string | null;
  queue: string | null;
  priority: number;
  /** null when the stored text cannot be read (see `unreadable`). */
  args: Json[] | null;
  hash: string;
  creator: Creator | null;
  attempts: number;
  /** The task's own limit; null: the definition's or the setting's. Not kept after the end. */
  maxAttempts: number | null;
  enqueuedAt: Date;
  scheduledAt: Date;
  runAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  failedAt: Date | null;
  expiresAt: Date | null;
  /** The worker running it (RUNNING), or the one that finished it. */
  workerId: string | null;
  /** When a running task's lease runs out unless renewed. */
  leaseUntil: Date | null;
  cancelRequested: boolean;
  repeat: { everySeconds: number | null; cron: string | null; timezone: string | null; until: Date | null } | null;
  lastError: string | null;
  /** Oldest first; null when the stored history cannot be read (see `unreadable`). */
  errors: TaskErrorDetail[] | null;
  /** The return value of a SUCCESSFUL task (null when it returned nothing, or cannot be read). */
  returnValue: Json | null;
  /** The fields whose stored text cannot be read back, with the text and why; null when all read. */
  unreadable: UnreadableFields | null;
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

function errorsOf(list: ErrorRecord[]): TaskErrorDetail[] {
  return list.map((e) => ({ ...taskErrorOf(e), class: e.class, stack: e.stack }));
}

/** Arguments, error history and return value: parsed, or null and named in `unreadable`. */
function jsonFields(t: StoredTask, returnText: string | null, successful: boolean): Pick<TaskDetail, 'args' | 'errors' | 'returnValue' | 'unreadable'> {
  const unreadable: UnreadableFields = {};
  const args = readArgs(t.args);
  if (!('value' in args)) unreadable.args = args;
  const ret = readReturnValue(returnText);
  if (!('value' in ret)) unreadable.returnValue = ret;
  const errorsBad: UnreadableText | null = t.errorsUnreadable ?? null;
  if (errorsBad) unreadable.errors = errorsBad;
  return {
    args: 'value' in args ? args.value : null,
    errors: errorsBad ? null : errorsOf(t.errors),
    returnValue: successful && 'value' in ret ? (ret.value ?? null) : null,
    unreadable: Object.keys(unreadable).length ? unreadable : null,
  };
}

function repeatOf(everySeconds: number, cron: string | null, timezone: string | null, until: number | null): TaskDetail['repeat'] {
  if (everySeconds <= 0 && cron === null) return null;
  return { everySeconds: everySeconds > 0 ? everySeconds : null, cron, timezone, until: date(until) };
}

const creatorOf = (type: string | null, id: string | null): Creator | null => (type === null ? null : { type, id: id ?? '' });

function detailOfPending(t: TaskRow, nowMs: number): TaskDetail {
  const status = pendingStatus(t, nowMs);
  const j = jsonFields(t, null, false);
  return {
    id: t.id,
    name: t.name,
    status,
    verboseName: t.verboseName,
    queue: t.queue,
    priority: t.priority,
    args: j.args,
    hash: t.hash,
    creator: creatorOf(t.creatorType, t.creatorId),
    attempts: t.attempts,
    maxAttempts: t.maxAttempts,
    enqueuedAt: new Date(t.enqueuedAt),
    scheduledAt: new Date(t.scheduledAt),
    runAt: new Date(t.runAt),
    startedAt: status === 'RUNNING' ? date(t.lockedAt) : null,
    finishedAt: null,
    failedAt: null,
    expiresAt: date(t.expiresAt),
    workerId: status === 'RUNNING' ? t.lockedBy : null,
    leaseUntil: status === 'RUNNING' ? date(t.lockedUntil) : null,
    cancelRequested: t.cancelRequested,
    repeat: repeatOf(t.repeatEvery, t.repeatCron, t.timezone, t.repeatUntil),
    lastError: t.lastError,
    errors: j.errors,
    returnValue: j.returnValue,
    unreadable: j.unreadable,
  };
}

function detailOfCompleted(c: CompletedRow): TaskDetail {
  const j = jsonFields(c, c.returnValue, c.failedAt === null);
  return {
    id: c.taskId,
    name: c.name,
    status: c.failedAt === null ? 'SUCCESSFUL' : 'FAILED',
    verboseName: c.verboseName,
    queue: c.queue,
    priority: c.priority,
    args: j.args,
    hash: c.hash,
    creator: creatorOf(c.creatorType, c.creatorId),
    attempts: c.attempts,
    maxAttempts: null,
    enqueuedAt: new Date(c.enqueuedAt),
    scheduledAt: new Date(c.scheduledAt),
    runAt: new Date(c.runAt),
    startedAt: date(c.startedAt),
    finishedAt: new Date(c.finishedAt),
    failedAt: date(c.failedAt),
    expiresAt: null,
    workerId: c.workerId,
    leaseUntil: null,
    cancelRequested: false,
    repeat: repeatOf(c.repeatEvery, c.repeatCron, c.timezone, c.repeatUntil),
    lastError: c.lastError,
    errors: j.errors,
    returnValue: j.returnValue,
    unreadable: j.unreadable,
  };
}

/** The full record of one task, pending or finished. */
export async function taskDetail(store: Store, id: string, nowMs: number): Promise<TaskDetail> {
  // Pending first: a task that finishes in between is then found in the completed table.
  const pending = await store.retrying(() => store.findPending(id));
  if (pending) return detailOfPending(pending, nowMs);
  const done = await store.retrying(() => store.findCompleted(id));
  if (done) return detailOfCompleted(done);
  throw notFound(store, id);
}

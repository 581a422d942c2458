/**
 * The error hierarchy: one base class, named subclasses with a fixed message shape, causes chained
 * with `{ cause }`.
 *
 * Checks use `Symbol.for` brands instead of `instanceof`: a task file loaded by tsx (or a second
 * copy of the package) has its own copies of these classes, and a `PermanentTaskError` thrown from
 * there must still be recognised by the worker.
 */
import type { ErrorRecord, TaskError } from './types.js';

const KIND = Symbol.for('bgtasks.errorKind');

export class BgtasksError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    Object.defineProperty(this, KIND, { value: new.target.name, enumerable: false });
  }
}

/** An invalid setting: names the setting, the value and what is allowed. */
export class ConfigError extends BgtasksError {}

/** Bad input at enqueue or in an API call (arguments, options, ids). */
export class ValidationError extends BgtasksError {}

const PERMANENT = Symbol.for('bgtasks.permanent');

/** Thrown by a task to fail for good, without retries. Subclasses are permanent too. */
export class PermanentTaskError extends BgtasksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    Object.defineProperty(this, PERMANENT, { value: true, enumerable: false });
  }
}
/** The reference's name for PermanentTaskError. */
export const InvalidTaskError = PermanentTaskError;

/** An attempt ran longer than its `maxRunTime`. */
export class TaskTimeoutError extends BgtasksError {}

/** The task was cancelled with `cancel(id)` or `bgtasks cancel`. */
export class CancelledError extends BgtasksError {}

/** The task was not started within `expiresAfter` seconds of its run time. */
export class ExpiredError extends BgtasksError {}

/** Enqueue into a queue that holds `maxQueueSize` pending tasks already. */
export class QueueFullError extends BgtasksError {}

/** No task or result has this id. */
export class TaskNotFoundError extends BgtasksError {}

/** A task name that no loaded task file registered. */
export class UnknownTaskError extends BgtasksError {}

/** The database schema is missing or older/newer than this version of bgtasks. */
export class NotMigratedError extends BgtasksError {}

/** The worker's lease on a task was lost (another worker claimed it, or it was deleted). */
export class LeaseLostError extends BgtasksError {}

/** A task's worker stopped renewing its lease (it died, or stalled past lockTimeout). */
export class WorkerLostError extends BgtasksError {}

/**
 * The database refused to store an attempt's result or error record (too large for it, or a
 * value it cannot hold): recorded instead, and the task fails for good.
 */
export class RecordRefusedError extends BgtasksError {}

/** The worker stopped (graceful shutdown or the --duration limit) while the task ran. */
export class WorkerStoppedError extends BgtasksError {}

/** A task file could not be found, imported, or registered nothing. */
export class TaskLoadError extends BgtasksError {}

/** The database could not be reached. */
export class DatabaseUnavailableError extends BgtasksError {}

/** `returnValue` was read before the task finished. */
export class TaskNotFinishedError extends BgtasksError {}

/** `returnValue` was read on a task that failed. */
export class TaskFailedError extends BgtasksError {}

/** `waitFor` ran out of time. */
export class WaitTimeoutError extends BgtasksError {}

/**
 * A task's stored arguments, return value or error history cannot be read back (not valid JSON,
 * or not the shape bgtasks writes: another program or a hand edit stored it). Thrown only when
 * that field is read; `TaskResult.unreadable` says which fields are affected without throwing.
 */
export class CorruptDataError extends BgtasksError {}

/** True when `err` is (a copy of) the bgtasks error class called `kind`. */
export function isErrorKind(err: unknown, kind: string): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[KIND] === kind;
}

/** True for errors that end a task without retries (PermanentTaskError and its subclasses). */
export function isPermanent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[PERMANENT] === true;
}

/** The class name of any thrown value. */
export function errorClassName(err: unknown): string {
  if (err instanceof Error) return err.name && err.name !== 'Error' ? err.name : err.constructor?.name || 'Error';
  if (err === null) return 'null';
  return typeof err;
}

const MAX_STACK_CHARS = 16_000;
const MAX_CAUSE_DEPTH = 8;

/** The stack of `err` followed by its `cause` chain, as one text. */
export function formatError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && cur !== undefined; depth++) {
    const text =
      cur instanceof Error ? cur.stack || `${errorClassName(cur)}: ${cur.message}` : `${errorClassName(cur)}: ${safeString(cur)}`;
    parts.push(depth === 0 ? text : `Caused by: ${text}`);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  const all = parts.join('\n');
  return all.length > MAX_STACK_CHARS ? `${all.slice(0, MAX_STACK_CHARS)}\n… (truncated)` : all;
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** The stored record of one failed attempt. */
export function errorRecord(err: unknown, attempt: number, at: number, workerId: string | null): ErrorRecord {
  return {
    class: errorClassName(err),
    message: err instanceof Error ? err.message : safeString(err),
    stack: formatError(err),
    attempt,
    at,
    workerId,
  };
}

/** A stored error record as readers see it (TaskResult.errors, `bgtasks show --json`). */
export function taskErrorOf(e: ErrorRecord): TaskError {
  return { exceptionClass: e.class, message: e.message, traceback: e.stack, attempt: e.attempt, at: new Date(e.at), workerId: e.workerId };
}

/** A task that put itself back more than `maxSnoozes` times fails with this (not retried). */
export class TooManySnoozesError extends BgtasksError {}

const SNOOZE = Symbol.for('bgtasks.snooze');

/**
 * "Run me again in `seconds`": returned or thrown by a task (`return snooze(60)`, or
 * `ctx.snooze(60)`, which throws it). The task goes back to READY at now + seconds; no attempt is
 * counted and no error recorded. Not an error: an ordinary catch should rethrow it (isSnooze).
 */
export class Snooze {
  constructor(readonly seconds: number) {
    Object.defineProperty(this, SNOOZE, { value: true, enumerable: false });
  }
}

/** Whether a value is a Snooze (also one made by another copy of bgtasks, e.g. a task file's). */
export function isSnooze(v: unknown): v is Snooze {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[SNOOZE] === true;
}

/** The longest snooze: a year. */
export const MAX_SNOOZE_SECONDS = 31_536_000;

/** A Snooze of `seconds` (fractions allowed, > 0, at most a year); return it or throw it. */
export function snooze(seconds: number): Snooze {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_SNOOZE_SECONDS) {
    // A string is quoted: `Invalid snooze: 5` read as if 5 were fine.
    const shown = typeof seconds === 'string' ? JSON.stringify(seconds) : String(seconds);
    throw new ValidationError(`Invalid snooze: ${shown} — expected seconds > 0 and at most ${MAX_SNOOZE_SECONDS} (a year)`);
  }
  return new Snooze(seconds);
}

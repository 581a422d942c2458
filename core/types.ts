/**
 * Glossary. These words mean exactly this everywhere: in code, columns, CLI output, events and docs.
 *
 * - task definition: what `background()` makes: a name, a function and its defaults.
 * - task: one stored call of a task definition. Its status is READY, RUNNING, SUCCESSFUL or FAILED.
 * - attempt: one execution of a task. Counted when the task is claimed, so a first-time success
 *   ends with attempts 1.
 * - lease: a running task's time-limited lock (`locked_by`, `claim_token`, `locked_until`),
 *   renewed by its worker's heartbeats. A lease that is not renewed expires and the task is
 *   recovered by any other worker.
 * - schedule: the call-site options made by `schedule(when, options?)`.
 * - recurrence: a repeat interval (seconds) or a cron rule; the successor of a recurring task is
 *   computed from its scheduled slot (`scheduled_at`), never from a retry-shifted run time.
 * - worker: one process (or embedded object) that claims, executes and settles tasks.
 * - queue: a name that partitions tasks; `null` is "no queue".
 * - result: what a finished task leaves behind in the completed table: status, return value,
 *   errors, timestamps. Found by the task's own id.
 * - settle: the one guarded write that ends an attempt (complete, retry, fail or release).
 */

/** The four statuses, the same in the API, the CLI and the docs (DEP 0014 names). */
export type Status = 'READY' | 'RUNNING' | 'SUCCESSFUL' | 'FAILED';
export const STATUSES: readonly Status[] = ['READY', 'RUNNING', 'SUCCESSFUL', 'FAILED'];

/** A JSON value as it is stored: what arguments and return values must be. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** The first and last priority and other numeric limits shared by validation and docs. */
export const PRIORITY_MIN = -2147483648;
export const PRIORITY_MAX = 2147483647;

/** A reference to whoever scheduled a task (the reference's generic foreign key). */
export interface Creator {
  type: string;
  id: string | number;
}

/** A relative duration; every field is optional and they add up. */
export interface DurationObject {
  seconds?: number;
  minutes?: number;
  hours?: number;
  days?: number;
  weeks?: number;
}

/** When a task should run: seconds from now (0 = now), an absolute Date, or a duration from now. */
export type When = number | Date | DurationObject;

/**
 * What happens when a twin exists: a pending task with the same hash (name + canonical args) that
 * is READY, or RUNNING with a recurrence that goes on (its chain is already there).
 * - `schedule`: always insert.
 * - `rescheduleExisting`: move the READY twins to the new run time and priority instead (a
 *   running twin cannot be moved: outcome `existing`).
 * - `checkExisting`: insert nothing when a twin exists.
 * - `replaceExisting`: delete READY twins and end running twins' chains, then insert.
 * The full rule: docs/getting-started.md, "Duplicates: the dedupe action".
 */
export type DedupeAction = 'schedule' | 'rescheduleExisting' | 'checkExisting' | 'replaceExisting';
export const DEDUPE_ACTIONS: readonly DedupeAction[] = [
  'schedule',
  'rescheduleExisting',
  'checkExisting',
  'replaceExisting',
];

/** What an enqueue did, following its dedupe action. */
export type EnqueueOutcome = 'created' | 'rescheduled' | 'existing' | 'replaced';

/** Returned by every enqueue. `id` is the existing task's id when nothing was inserted. */
export interface TaskRef {
  id: string;
  name: string;
  queue: string | null;
  runAt: Date;
  outcome: EnqueueOutcome;
}

/** Options that a task definition, `.using()` and a call-site schedule share. */
export interface CommonTaskOptions {
  /** Queue name; `null` means no queue. Default: no queue. */
  queue?: string | null;
  /** Higher runs first (or lower, with `priorityOrdering: 'ASC'`). Default 0. */
  priority?: number;
  /** Attempts before the task is failed for good. Default: the `maxAttempts` setting (25). */
  maxAttempts?: number;
  /** Seconds an attempt may run before its signal aborts and it counts as failed. Default: the `maxRunTime` setting (3600). */
  maxRunTime?: number;
  /** `true` is action `replaceExisting` (the reference's `remove_existing_tasks`). */
  removeExisting?: boolean;
  /** Dedupe action; see DedupeAction. Default `schedule`. */
  action?: DedupeAction;
  /** A task not started within this many seconds after its run time is failed with ExpiredError. */
  expiresAfter?: number | null;
  /**
   * Repeat after each run: seconds (see `Repeat`), or a cron expression.
   * Default: never.
   */
  repeat?: number | string | null;
  /** No successor is scheduled at or after this time. */
  repeatUntil?: Date | null;
  /** IANA time zone for a cron `repeat`. Default: the `timezone` setting (UTC). */
  timezone?: string | null;
  /** A repeating task that fails for good still schedules its next repetition. Default true. */
  repeatOnFailure?: boolean;
}

/** Options only the call site (or `.using()`) can set. */
export interface CallOptions extends CommonTaskOptions {
  verboseName?: string | null;
  creator?: Creator | null;
  /**
   * The task's concurrency key (docs/flow-control.md): tasks with one key share the definition's
   * `concurrencyLimit` (default 1) and take turns with other keys. `null`: none.
   */
  concurrencyKey?: string | null;
}

/** Repeat intervals in seconds (the reference's constants). */
export const Repeat = Object.freeze({
  HOURLY: 3600,
  DAILY: 86400,
  WEEKLY: 604800,
  EVERY_2_WEEKS: 1209600,
  EVERY_4_WEEKS: 2419200,
  NEVER: 0,
});

/**
 * One failed attempt, as stored in the `errors` column (a JSON array of these). The stored keys
 * stay `class` and `stack`: rows written by released versions hold them, and a worker of the
 * previous version may read rows this one writes. Readers get TaskError instead (TaskResult.errors,
 * `bgtasks show --json`); errors.ts `taskErrorOf` maps one to the other.
 */
export interface ErrorRecord {
  /** The error's class name (`err.name`, or its constructor's name). */
  class: string;
  message: string;
  /** The stack, followed by each `cause` in turn. */
  stack: string;
  /** The attempt number that failed. */
  attempt: number;
  /** Epoch milliseconds. */
  at: number;
  workerId: string | null;
}

/**
 * One failed attempt as every reader sees it: `TaskResult.errors`, `bgtasks show --json` and the
 * docs. The names are DEP 0014's TaskError (`exception_class`, `traceback`) in camelCase.
 */
export interface TaskError {
  /** The error's class name. */
  exceptionClass: string;
  message: string;
  /** The stack, followed by each `cause` in turn (`Caused by: …`). */
  traceback: string;
  /** The attempt number that failed. */
  attempt: number;
  at: Date;
  workerId: string | null;
}

/**
 * A stored JSON text that cannot be read back (written by another program or by hand): the text
 * as it is, and why. `reason` is `not valid JSON` (then `parseError` is the parser's message),
 * `not a JSON array` (arguments) or `not a JSON array of error records` (error history).
 */
export interface UnreadableText {
  text: string;
  reason: string;
  parseError: string | null;
}

/** The fields of a task whose stored text cannot be read back; only those are present. */
export interface UnreadableFields {
  args?: UnreadableText;
  returnValue?: UnreadableText;
  errors?: UnreadableText;
}

/** What the pending and the completed table both say of a task (camelCase of their columns). */
export interface StoredTask {
  name: string;
  args: string;
  hash: string;
  queue: string | null;
  priority: number;
  verboseName: string | null;
  creatorType: string | null;
  creatorId: string | null;
  /** Epoch ms: earliest execution time; retries move it. */
  runAt: number;
  /** Epoch ms: the slot this task was scheduled for; recurrences are computed from it. */
  scheduledAt: number;
  enqueuedAt: number;
  attempts: number;
  /** Seconds between repetitions (0: none). */
  repeatEvery: number;
  repeatCron: string | null;
  timezone: string | null;
  repeatUntil: number | null;
  recurringKey: string | null;
  /** Tasks with one key share its concurrency limit and take turns with other keys (docs/flow-control.md). */
  concurrencyKey: string | null;
  /** Times the task put itself back with ctx.snooze(). */
  snoozes: number;
  lastError: string | null;
  /** Empty when the stored history cannot be read (then `errorsUnreadable` says why). */
  errors: ErrorRecord[];
  /** Set when the `errors` column holds text that is not an error history. */
  errorsUnreadable?: UnreadableText | null;
  /**
   * The W3C trace context of the enqueue that created it, as JSON (`{"traceparent":…,
   * "tracestate":…}`): each attempt's span continues that trace. Null without OpenTelemetry.
   */
  traceContext: string | null;
  /**
   * The key the enqueue was given (`schedule(when, { idempotencyKey })`): while the task is pending
   * or its result kept, an enqueue with the same key returns this task instead of storing a twin.
   */
  idempotencyKey: string | null;
}

/** A pending or running task, as the store hands it to the worker. */
export interface TaskRow extends StoredTask {
  id: string;
  maxAttempts: number | null;
  maxRunTime: number | null;
  expiresAt: number | null;
  repeatOnFailure: boolean;
  lockedBy: string | null;
  claimToken: string | null;
  lockedAt: number | null;
  lockedUntil: number | null;
  cancelRequested: boolean;
}

/** A finished task as stored in the completed table. */
export interface CompletedRow extends StoredTask {
  taskId: string;
  startedAt: number | null;
  finishedAt: number;
  /** Set when the task failed for good; null when it succeeded. */
  failedAt: number | null;
  /** The JSON text of the return value; null when the function returned undefined or failed. */
  returnValue: string | null;
  workerId: string | null;
}

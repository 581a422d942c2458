/**
 * The dashboard's contract with storage: everything the web layer reads and every action it takes
 * goes through a `DashboardSource`. Types only. The storage room implements it with real SQL on
 * SQLite, MySQL/MariaDB and PostgreSQL; unit tests of the web layer implement it with arrays.
 *
 * Words are the glossary's (core/types.ts): task, attempt, lease, queue, worker, result; statuses
 * READY, RUNNING, SUCCESSFUL, FAILED, where RUNNING means "under a live lease" and a task whose
 * lease expired counts as READY (as `bgtasks stats` and `show` count it).
 *
 * Errors: a method rejects with `ValidationError` (core/errors.ts) for input it cannot use (a
 * cursor it did not make, a filter it cannot run); the dashboard shows that message to the user,
 * so it must name the value and never hold a secret. Any other rejection is logged and shown as a
 * generic failure. Times are `Date`s (UTC instants); ids are opaque strings.
 */
import type { Creator, Status } from '../types.js';

// ---------------------------------------------------------------------------------------------
// Reading: the overview

/** Tasks per status. */
export type StatusCounts = Record<Status, number>;

/** Tasks of one queue per status; `queue` null is "no queue". */
export interface QueueCounts extends StatusCounts {
  queue: string | null;
}

/** Tasks that finished in one minute. */
export interface ThroughputMinute {
  /** The start of the minute (UTC, whole minute). */
  minute: Date;
  /** Tasks that finished SUCCESSFUL in it. */
  succeeded: number;
  /** Tasks that finished FAILED (for good) in it; retried attempts are not counted. */
  failed: number;
}

/** The READY task that has been due the longest (as `bgtasks stats` reports it). */
export interface OldestDue {
  id: string;
  name: string;
  queue: string | null;
  /** Its run time, or when its lease expired for a task whose worker stopped renewing it. */
  dueSince: Date;
  waitSeconds: number;
}

export interface Overview {
  /** The source's "now" for every figure below (the database clock where it has one). */
  at: Date;
  /** One entry per queue that holds any task, pending or finished. */
  queues: QueueCounts[];
  totals: StatusCounts;
  oldestDue: OldestDue | null;
  /** Tasks that failed for good in the hour before `at`. */
  failuresLastHour: number;
  /** The 60 minutes up to `at`, oldest first; the last entry is the current, partial minute. */
  throughput: ThroughputMinute[];
  /** Workers whose registry heartbeat is live. */
  workersAlive: number;
}

// ---------------------------------------------------------------------------------------------
// Reading: tasks

/** A time of a task that a range or a sort can use. */
export type TaskTimeField = 'enqueuedAt' | 'runAt' | 'finishedAt';

/**
 * Which tasks. Every field narrows; an absent or empty field does not. The dashboard validates
 * values before they get here (statuses, lengths, from <= to).
 */
export interface TaskFilter {
  /** Any of these statuses. */
  statuses?: Status[];
  /** Any of these queues; `null` in the list selects tasks without a queue. */
  queues?: (string | null)[];
  /** Any of these task names (exact). */
  names?: string[];
  /** A substring of the stored arguments' JSON text, matched case-sensitively as stored. */
  argsContain?: string;
  /** The class of the task's last error record (exact), e.g. `TypeError`, `CancelledError`. */
  errorClass?: string;
  /** A time range on one field: `from` inclusive, `to` exclusive. Tasks whose field is null never match. */
  range?: { field: TaskTimeField; from?: Date; to?: Date };
}

export type TaskSortKey = TaskTimeField | 'priority';

/**
 * The order of a task list. Ties are broken by id in the same direction (a stable order the
 * source chooses), so keyset pagination never skips or repeats a row. Null values (the
 * `finishedAt` of a pending task) come last in both directions.
 */
export interface TaskSort {
  key: TaskSortKey;
  direction: 'asc' | 'desc';
}

export interface TaskPageRequest {
  filter: TaskFilter;
  sort: TaskSort;
  /** Rows per page, 1 to 500. */
  limit: number;
  /**
   * Null: the first page. Otherwise a `next` or `prev` string from an earlier page of the same
   * filter and sort, which the source made and can read back (keyset: it encodes the sort values
   * and id of the row to continue from, and the direction; never an offset). A cursor that the
   * source cannot read, or made for another sort, is a ValidationError.
   */
  cursor: string | null;
}

/** One row of a task list. */
export interface TaskSummary {
  id: string;
  name: string;
  verboseName: string | null;
  status: Status;
  queue: string | null;
  priority: number;
  attempts: number;
  /** The start of the stored arguments' JSON text; the source may cut it (see argsTruncated). */
  argsPreview: string;
  argsTruncated: boolean;
  enqueuedAt: Date;
  runAt: Date;
  /** When the current (RUNNING) or last attempt started. */
  startedAt: Date | null;
  finishedAt: Date | null;
  /** The worker running it, or the one that finished it. */
  workerId: string | null;
  /** The last error record's class and message, if any. */
  lastError: { class: string; message: string } | null;
  cancelRequested: boolean;
}

export interface TaskPage {
  /** In the requested order, whichever way the cursor moved. */
  rows: TaskSummary[];
  /** Continues after the last row; null when there is nothing after it. */
  next: string | null;
  /** Continues before the first row; null on the first page. */
  prev: string | null;
}

/** One failed attempt, as the error history keeps it. */
export interface TaskError {
  class: string;
  message: string;
  /** The stack, followed by each `cause` in turn. */
  stack: string;
  attempt: number;
  at: Date;
  workerId: string | null;
}

/**
 * How an attempt ended: `running` (now), `succeeded`, `failed` (an error record, retried or not),
 * `lost` (its worker stopped renewing the lease; the attempt is kept), `released` (a graceful stop
 * gave it back; the attempt is not counted again).
 */
export type AttemptOutcome = 'running' | 'succeeded' | 'failed' | 'lost' | 'released';

export interface AttemptRecord {
  attempt: number;
  workerId: string | null;
  startedAt: Date | null;
  endedAt: Date | null;
  outcome: AttemptOutcome;
}

/** A running task's lease. */
export interface Lease {
  workerId: string;
  lockedAt: Date | null;
  /** When it runs out unless its worker renews it. */
  until: Date;
}

/** Everything stored about one task (the `bgtasks show` record, plus its chain and attempts). */
export interface TaskDetail {
  id: string;
  name: string;
  verboseName: string | null;
  status: Status;
  queue: string | null;
  priority: number;
  /** The stored arguments, JSON text, whole. */
  args: string;
  /** The dedupe hash (name + canonical arguments). */
  hash: string;
  creator: Creator | null;
  attempts: number;
  /** The task's own limit; null: the definition's or the setting's. */
  maxAttempts: number | null;
  enqueuedAt: Date;
  scheduledAt: Date;
  runAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  failedAt: Date | null;
  expiresAt: Date | null;
  workerId: string | null;
  lease: Lease | null;
  cancelRequested: boolean;
  repeat: { everySeconds: number | null; cron: string | null; timezone: string | null; until: Date | null } | null;
  /** The cron schedule (task name and key) that enqueued it, if one did. */
  recurringKey: string | null;
  /** The task of the same repeat or cron chain that came before this one, and the one after. */
  predecessorId: string | null;
  successorId: string | null;
  /** The return value's JSON text (a SUCCESSFUL task that returned something), else null. */
  result: string | null;
  /** Oldest first. */
  errors: TaskError[];
  /** Oldest first; may be shorter than `attempts` where the store kept no trace of an attempt. */
  attemptHistory: AttemptRecord[];
}

// ---------------------------------------------------------------------------------------------
// Reading: failures, schedules, workers, filter choices

/** FAILED tasks of one task name whose last error has one class. */
export interface FailureGroup {
  name: string;
  /** The class of the last error record; '' for a failed task without any (none should exist). */
  errorClass: string;
  count: number;
  lastFailedAt: Date;
  /** The message of the latest failure in the group, and that task's id. */
  sampleMessage: string;
  sampleTaskId: string;
}

export interface FailureGroupQuery {
  /** Only tasks that failed at or after this time; null: all kept results. */
  since: Date | null;
  /** At most this many groups, the largest first. */
  limit: number;
}

/** A cron schedule declared in task files and registered by a worker (as `bgtasks schedules` lists it). */
export interface CronSchedule {
  name: string;
  key: string;
  cron: string;
  timezone: string;
  /** Its tasks' arguments, JSON text. */
  args: string;
  /** `skip`, `once`, or a number of slots. */
  catchUp: string;
  lastSlot: Date | null;
  nextSlot: Date | null;
  /** Its next pending task (the earliest by run time), if any. */
  pendingTask: { id: string; status: Status; runAt: Date } | null;
  /** All its tasks in the pending table (READY or RUNNING). */
  pendingCount: number;
  lastSeenAt: Date | null;
  lastSeenBy: string | null;
  /** No worker has declared it for 10 minutes. */
  stale: boolean;
}

/** A task a worker is running now. */
export interface RunningTask {
  id: string;
  name: string;
  queue: string | null;
  startedAt: Date;
}

/** One row of the worker registry. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number | null;
  /** The bgtasks version it runs. */
  version: string | null;
  /** The queues it claims from; null: every queue. */
  queues: string[] | null;
  concurrency: number;
  startedAt: Date;
  lastHeartbeatAt: Date;
  /**
   * `alive`: heartbeat live; `blocked`: its heartbeat stopped but its liveness beat lands (its
   * event loop is blocked); `stopped`: it said goodbye; `lost`: both beats stopped.
   */
  state: 'alive' | 'blocked' | 'stopped' | 'lost';
  /** When it stopped or was found lost; null while alive or blocked. */
  goneAt: Date | null;
  /** Empty unless alive or blocked. */
  running: RunningTask[];
}

export interface WorkerList {
  alive: WorkerInfo[];
  /** Workers gone recently (the source chooses how far back: the registry's retention). */
  gone: WorkerInfo[];
}

/** Values for the filter form's suggestions. */
export interface FilterChoices {
  taskNames: string[];
  queues: (string | null)[];
}

/** What the dashboard may show about where it reads from. */
export interface SourceInfo {
  /** The database, for display, with any password already masked. */
  database: string;
  /** The bgtasks version, if known. */
  version?: string;
}

// ---------------------------------------------------------------------------------------------
// Acting

/**
 * The operator actions, each with one implementation in the store (shared with the API and CLI):
 * - `retry`: a FAILED task gets a new READY copy (same call, 0 attempts, due now, no recurrence),
 *   as `bgtasks retry`; the failed result stays. Other statuses are refused.
 * - `cancel`: a READY task becomes FAILED with a CancelledError; a RUNNING task gets a cancel
 *   request (its worker aborts it at its next heartbeat); both end a repeat chain. A finished task
 *   is refused.
 * - `delete`: a READY, SUCCESSFUL or FAILED task is deleted. A RUNNING task is refused (the
 *   dashboard never forces; cancel it).
 * - `runNow`: a READY task whose run time is in the future gets run time now (a retry's backoff or
 *   a scheduled task); one already due is unchanged. Other statuses are refused.
 */
export type TaskAction = 'retry' | 'cancel' | 'delete' | 'runNow';

/**
 * Which tasks an action is for: a list of ids, or every task matching a filter when the action
 * starts (later arrivals are not included). For a filter the dashboard has already narrowed the
 * statuses to those the action applies to; the source still guards every change by the state it
 * read, so a task that changed meanwhile is refused, not changed.
 */
export type ActionTarget = { ids: string[] } | { filter: TaskFilter };

/**
 * What became of one task: the first five are changes, `unchanged` is neither a change nor a
 * refusal (runNow of a task already due, cancel of one whose cancel was already requested), the
 * last three are refusals.
 */
export type ActionOutcome =
  | 'retried'
  | 'cancelled'
  | 'cancelRequested'
  | 'deleted'
  | 'movedToNow'
  | 'unchanged'
  | 'notFound'
  | 'wrongStatus'
  | 'changedMeanwhile';

export interface ActionItem {
  id: string;
  /** Null when no task has this id. */
  name: string | null;
  outcome: ActionOutcome;
  /** Its status when the action looked at it (null: not found). */
  before: Status | null;
  /** Its status afterwards (null: deleted or not found). */
  after: Status | null;
  /** `retried`: the id of the new copy. */
  newId: string | null;
}

export interface ActionResult {
  action: TaskAction;
  changed: number;
  unchanged: number;
  refused: number;
  /** Per task, in id order for an id list; a source may keep only the first items of a large filter action. */
  items: ActionItem[];
  /** How many items were left out of `items` (0 when all are there). */
  itemsOmitted: number;
}

// ---------------------------------------------------------------------------------------------
// The interface

export interface DashboardSource {
  /** Where it reads from, for the page footer. Cheap and synchronous: no I/O. */
  describe(): SourceInfo;

  overview(): Promise<Overview>;
  listTasks(request: TaskPageRequest): Promise<TaskPage>;
  /** How many tasks match (the confirmation step of an action on a filter). */
  countTasks(filter: TaskFilter): Promise<number>;
  /** Null when no task or result has this id. */
  getTask(id: string): Promise<TaskDetail | null>;
  failureGroups(query: FailureGroupQuery): Promise<FailureGroup[]>;
  schedules(): Promise<CronSchedule[]>;
  workers(): Promise<WorkerList>;
  filterChoices(): Promise<FilterChoices>;

  /**
   * Optional: the queue-depth gauges in the Prometheus text format, for `GET /metrics` (404
   * without it). The database source answers from one statement cached for at least 5 s, so
   * scrapes never load the database; a rejection is answered 503.
   */
  metrics?(): Promise<string>;

  retry(target: ActionTarget): Promise<ActionResult>;
  cancel(target: ActionTarget): Promise<ActionResult>;
  delete(target: ActionTarget): Promise<ActionResult>;
  runNow(target: ActionTarget): Promise<ActionResult>;
}

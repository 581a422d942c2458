/**
 * The completed-table row of a finished task, as SQL that copies it from the pending row on the
 * server: the task's own columns are not sent back over the wire, only its id, claim token,
 * finish time, return value and worker. Each dialect feeds those five values in its own way
 * (arrays, json_each, JSON_TABLE).
 */

/** One success to record. */
export interface CompleteItem {
  id: string;
  token: string;
  finishedAt: number;
  returnValue: string | null;
  /** The worker whose claim this is: recorded when a lease recovery has cleared `locked_by`. */
  workerId: string | null;
}

/** Columns copied unchanged from the pending row. */
const COPIED = [
  'name',
  'args',
  'hash',
  'queue',
  'priority',
  'verbose_name',
  'creator_type',
  'creator_id',
  'run_at',
  'scheduled_at',
  'enqueued_at',
  'attempts',
  'repeat_every_ms',
  'repeat_cron',
  'timezone',
  'repeat_until',
  'recurring_key',
  'concurrency_key',
  'snoozes',
  'last_error',
  'last_error_class',
  'errors',
  'trace_context',
  'idempotency_key',
] as const;

/** `INSERT INTO <completed> (…) SELECT …` with the task row as `t` and the inputs as expressions. */
export function completedInsertSelect(completed: string, q: (id: string) => string, src: { finishedAt: string; returnValue: string; workerId: string }): string {
  const cols = ['task_id', ...COPIED, 'started_at', 'finished_at', 'failed_at', 'return_value', 'worker_id'];
  // A lease recovery clears locked_by but keeps the claim token, and the worker that held the claim
  // may still record its result (see recoverLease): the row names that worker, not nobody.
  const values = ['t.id', ...COPIED.map((c) => `t.${q(c)}`), 't.locked_at', src.finishedAt, 'NULL', src.returnValue, `COALESCE(t.locked_by, ${src.workerId})`];
  return `INSERT INTO ${q(completed)} (${cols.map(q).join(', ')}) SELECT ${values.join(', ')}`;
}

/** The five inputs as one JSON document: `[[id, token, finishedAt, returnValue, workerId], …]`. */
export function itemsJson(items: readonly CompleteItem[]): string {
  return JSON.stringify(items.map((i) => [Number(i.id), i.token, i.finishedAt, i.returnValue, i.workerId]));
}
